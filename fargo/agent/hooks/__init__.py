"""Every feature around a task is a hook (`base.TaskHook`); this module names them, and builds the list a
platform version asks for (`PlatformVersion.task_hooks`, in order: the runner stops them in reverse)."""
from __future__ import annotations

from fargo.agent.hooks.base import HostFacilities, TaskHook
from fargo.agent.hooks.container_logs import ContainerLogsHook
from fargo.agent.hooks.efs_volumes import EfsVolumesHook
from fargo.agent.hooks.ephemeral_storage import EphemeralStorageHook
from fargo.agent.hooks.health_checks import HealthChecksHook
from fargo.agent.hooks.image import ImageHook
from fargo.agent.hooks.metadata_env import MetadataEnvHook
from fargo.agent.hooks.secrets import SecretsHook
from fargo.agent.hooks.task_cgroup import TaskCgroupHook
from fargo.agent.hooks.task_eni import TaskEniHook
from fargo.agent.hooks.task_files import TaskFilesHook
from fargo.agent.hooks.task_metadata import TaskMetadataHook
from fargo.platform import PlatformVersion

HOOK_TYPES: dict[str, type[TaskHook]] = {h.name: h for h in (
    TaskEniHook, TaskCgroupHook, EphemeralStorageHook, TaskFilesHook, ContainerLogsHook, SecretsHook, ImageHook,
    EfsVolumesHook, MetadataEnvHook, TaskMetadataHook, HealthChecksHook)}


def build_hooks(platform: PlatformVersion, host: HostFacilities) -> list[TaskHook]:
    """One instance of each hook the platform names, shared by all tasks of that platform on this host."""
    return [HOOK_TYPES[name](host) for name in platform.task_hooks]
