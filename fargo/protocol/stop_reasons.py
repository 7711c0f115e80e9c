"""Every stop code and every Fargate reason text a task or container can end with, in one place (both
sides use them: StopTask's on the control plane, the rest where the agent finds the cause).

Texts are AWS's as Fargate 1.4.0 shows them (ECS "Stopped tasks error messages"); each reason starts
with the error's name, and no host path ever appears in one (`fargo.runtime.errors.scrub_host_paths`).
"""
from __future__ import annotations

from fargo.platform import PlatformVersion

# stopCode values (botocore's TaskStopCode enum).
USER_INITIATED = "UserInitiated"
TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"

STOPPED_BY_USER = "Task stopped by user"
ESSENTIAL_EXITED = "Essential container in task exited"
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"


def image_not_found(ref: str) -> str:
    return (f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref "
            f"{ref}: {ref}: not found")


def cannot_pull(detail: str) -> str:
    return f"CannotPullContainerError: {detail}"


def cannot_create(detail: str) -> str:
    return f"CannotCreateContainerError: {detail}"


def cannot_start(detail: str) -> str:
    return f"CannotStartContainerError: {detail}"


def cannot_inspect(detail: str) -> str:
    return f"CannotInspectContainerError: {detail}"


def dependency_never(container: str, why: str) -> str:
    return cannot_start(f"container {container} cannot start: {why}")


def dependencies_timed_out(containers: str, timeout: float) -> str:
    return cannot_start(f"dependencies of {containers} were not met within startTimeout ({timeout}s)")


def runtime_timeout(platform: PlatformVersion, transition: str, waited: str) -> str:
    """1.4.0 (containerd) says ContainerRuntimeTimeoutError; 1.3.0 (Docker) said DockerTimeoutError."""
    return f"{platform.runtime_timeout_error}: Could not transition to {transition}; timed out after waiting {waited}"


def resource_initialization(platform: PlatformVersion, detail: str) -> str:
    """1.4.0 names a failed task resource ResourceInitializationError; 1.3.0 had no such name."""
    name = "ResourceInitializationError" if platform.resource_initialization_error else "CannotStartContainerError"
    return f"{name}: {detail}"
