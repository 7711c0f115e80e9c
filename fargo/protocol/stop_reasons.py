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
SPOT_INTERRUPTION = "SpotInterruption"
SERVICE_SCHEDULER_INITIATED = "ServiceSchedulerInitiated"

STOPPED_BY_USER = "Task stopped by user"
SPOT_INTERRUPTED = "Your Spot Task was interrupted."
ESSENTIAL_EXITED = "Essential container in task exited"
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"
# The service scheduler's stops (stopCode SERVICE_SCHEDULER_INITIATED); the health text is UNVERIFIED.
HEALTH_CHECKS_FAILED = "Task failed container health checks"


def scaling_activity(deployment_id: str) -> str:
    return f"Scaling activity initiated by (deployment {deployment_id})"


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


# --- EFS volumes (the Fargate supervisor runs efs-utils' mount.efs; its stderr and exit code are quoted) ---

EFS_NFS_MOUNT_FAILED = 32  # mount.nfs4 failed
EFS_UTILS_FAILED = 1  # efs-utils itself gave up (the name did not resolve)
EFS_MOUNT_ATTEMPTS = 3


def efs_mount_failed(stderr: str, code: int) -> str:
    return ("ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes: "
            f"stderr: {stderr} : unsuccessful EFS utils command execution; code: {code}")


def efs_dns_name(file_system_id: str, region: str) -> str:
    return f"{file_system_id}.efs.{region}.amazonaws.com"


def efs_unresolvable(file_system_id: str, region: str) -> str:
    """No such file system, or no mount target of it in the task's Availability Zone: its name does not resolve."""
    return efs_mount_failed(
        f'Failed to resolve "{efs_dns_name(file_system_id, region)}" - check that your file system ID is correct, '
        "and ensure that the VPC has an EFS mount target for this file system ID. See "
        "https://docs.aws.amazon.com/console/efs/mount-dns-name for more detail. Attempting to lookup mount target "
        "ip address using botocore. Failed to import necessary dependency botocore, please install botocore first.",
        EFS_UTILS_FAILED)


def efs_mount_timed_out(attempt_seconds: float) -> str:
    """The security groups do not let NFS (TCP 2049) from the task to the mount target: every attempt times out."""
    secs = f"{attempt_seconds:g}"
    attempts = " ".join(f"Mount attempt {n}/{EFS_MOUNT_ATTEMPTS} failed due to timeout after {secs} sec, wait 0 sec "
                        "before next attempt." for n in range(1, EFS_MOUNT_ATTEMPTS))
    return efs_mount_failed(f"{attempts} b'mount.nfs4: Connection timed out'", EFS_NFS_MOUNT_FAILED)


def efs_mount_source(file_system_id: str, region: str, path: str, tls: bool) -> str:
    """What mount.nfs4 names: with TLS, the local stunnel (127.0.0.1); else the file system's DNS name."""
    return f"127.0.0.1:{path}" if tls else f"{efs_dns_name(file_system_id, region)}:{path}"


def efs_no_such_directory(source: str) -> str:
    """rootDirectory (or an access point's path without CreationInfo) does not exist in the file system."""
    return efs_mount_failed(f"b'mount.nfs4: mounting {source} failed, reason given by server: No such file or "
                            "directory'", EFS_NFS_MOUNT_FAILED)


def efs_access_denied(source: str) -> str:
    """The server refuses the mount (an access point that does not exist, or no longer does). Fargo's choice
    of the observed texts: efs-utils' report of a refused NFS mount."""
    return efs_mount_failed(f"b'mount.nfs4: access denied by server while mounting {source}'", EFS_NFS_MOUNT_FAILED)


# --- execution resources: secrets and registry auth (shared/reference/secrets-and-pulls.md section 2) ---
# Fargate 1.4.0 fetches them all before it pulls, each step named by what it was retrieving.

INVALID_SECRET_ARN = ("an invalid ARN format for the AWS Secrets Manager secret was specified. "
                      "Specify a valid ARN and try again.")
ASM_SECRET = "unable to retrieve secret from asm"
SSM_SECRETS = "unable to retrieve secrets from ssm"
ECR_AUTH = "unable to retrieve ecr registry auth"
ASM_REGISTRY_AUTH = "unable to get registry auth from asm"
_CHECK_NETWORK = ". Please check your task network configuration."


def asm_fetch_failed(secret_id: str, error: str) -> str:
    return f"failed to fetch secret {secret_id} from secrets manager: {error}"


def asm_missing_json_key(key: str) -> str:
    return f"retrieved secret from Secrets Manager did not contain json key {key}"


def ssm_invalid_parameters(names: list[str]) -> str:
    return f"invalid ssm parameters: {', '.join(names)}"


def asm_registry_auth_failed(secret_id: str, error: str) -> str:
    return f"asm fetching secret from the service for {secret_id}: {error}"


ASM_REGISTRY_AUTH_SCHEMA = "asm fetching authorization data: unable to unmarshal secret value, invalid schema"


def asm_registry_auth_empty(field: str) -> str:
    return f"asm fetching {field}: AuthorizationData is malformed, empty field"


def execution_resource_failed(platform: PlatformVersion, step: str, detail: str, attempts: int, *,
                              network: bool = False, region: str = "") -> str:
    """1.4.0's ResourceInitializationError; 1.3.0 (the ECS agent with Docker) words each store its own way."""
    if platform.resource_initialization_error:
        return ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                f"retrieval failed: {step}: service call has been retried {attempts} time(s): {detail}"
                + (_CHECK_NETWORK if network else ""))
    if step == SSM_SECRETS:
        return f"Fetching secret data from SSM Parameter Store in {region}: {detail}"
    if step == ASM_SECRET:
        return f"fetching secret data from AWS Secrets Manager in region {region}: {detail}"
    if step == ECR_AUTH:
        return f"CannotPullECRContainerError: {detail}"
    return f"CannotPullContainerError: {detail}"  # OWN: registry auth from asm on 1.3.0


# --- image pulls: 1.4.0 quotes containerd after the step and its retries; 1.3.0 quoted Docker's daemon ---

def pull_failed(platform: PlatformVersion, step: str, attempts: int, detail: str, *, kind: str = "",
                ref: str = "") -> str:
    if platform.resource_initialization_error:
        return f"CannotPullContainerError: {step} has been retried {attempts} time(s): {detail}"
    # Docker's daemon words (1.3.0 ran the ECS agent with Docker): a missing manifest, a refusal, the rest.
    if kind == "NotFound":
        return (f"CannotPullContainerError: Error response from daemon: manifest for {ref} not found: "
                "manifest unknown: manifest unknown")
    if kind == "AccessDenied":
        return (f"CannotPullContainerError: Error response from daemon: pull access denied for "
                f"{ref.rpartition(':')[0] if '@' not in ref else ref.partition('@')[0]}, repository does not exist "
                "or may require 'docker login': denied: requested access to the resource is denied")
    return f"CannotPullContainerError: Error response from daemon: {detail.removeprefix('failed to resolve ref ')}"
