"""The task's EFS volumes (stub: filled in by the EFS work)."""
from __future__ import annotations

from fargo.agent.hooks.base import HookPhase, TaskHook


class EfsVolumesHook(TaskHook):
    name = "efs-volumes"
    phase = HookPhase.PENDING
