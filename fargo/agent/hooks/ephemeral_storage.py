"""The task's ephemeral storage (stub: filled in by the storage work)."""
from __future__ import annotations

from fargo.agent.hooks.base import TaskHook


class EphemeralStorageHook(TaskHook):
    name = "ephemeral-storage"
