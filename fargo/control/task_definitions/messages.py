"""Every RegisterTaskDefinition error text, in one place.

Texts marked AWS were seen in real ECS responses (see shared/reference/ecs-api.md section 4);
texts marked OWN are Fargo's, written in the same style because AWS's wording is not public.
"""
from __future__ import annotations

_TROUBLESHOOTING = "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."

# --- task level -------------------------------------------------------------------------------
# AWS
FARGATE_NETWORK_MODE = "Fargate only supports network mode \u2018awsvpc\u2019."
FARGATE_TASK_CPU_REQUIRED = "Fargate requires that 'cpu' be defined at the task level."
FARGATE_TASK_MEMORY_REQUIRED = "Fargate requires that 'memory' be defined at the task level."
FARGATE_NO_CONFIGURATION = "No Fargate configuration exists for given values."
FARGATE_IPC_MODE = "Tasks using the Fargate launch type do not support ipcMode."
FARGATE_HOST_SOURCE_PATH = "host.sourcePath should not be set for volumes in Fargate."
FARGATE_PLACEMENT_CONSTRAINTS = "Fargate does not support task placement constraints."
FARGATE_AWSLOGS_EXECUTION_ROLE = (
    "Fargate requires task definition to have execution role ARN to support log driver awslogs."
)
FARGATE_ECR_EXECUTION_ROLE = "Fargate requires task definition to have execution role ARN to support ECR images."
INVALID_TASK_CPU = f"Invalid 'cpu' setting for task. {_TROUBLESHOOTING}"
# AWS (seen in moto only, not confirmed against AWS)
FARGATE_PID_MODE = (
    "Tasks using the Fargate launch type do not support pidMode '{mode}'. The supported value for pidMode is 'task'."
)
# OWN
INVALID_TASK_MEMORY = f"Invalid 'memory' setting for task. {_TROUBLESHOOTING}"
FARGATE_DOCKER_VOLUME = "dockerVolumeConfiguration should not be set for volumes in Fargate."
FARGATE_FSX_VOLUME = "fsxWindowsFileServerVolumeConfiguration should not be set for volumes in Fargate on Linux."
FARGATE_INFERENCE_ACCELERATORS = "Tasks using the Fargate launch type do not support inferenceAccelerators."
INVALID_FAMILY = (
    "Invalid family '{family}'. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
)
EPHEMERAL_STORAGE_RANGE = "Invalid 'ephemeralStorage' setting for task. The value of 'sizeInGiB' must be between 21 and 200."
NO_ESSENTIAL_CONTAINER = "Task definition must have at least one essential container."
# AWS (as remembered from real responses; not found in a citable source)
NO_CONTAINERS = "Container list cannot be empty."
CONTAINER_NAME_MISSING = "Container.name should not be null or empty."
CONTAINER_IMAGE_MISSING = "Container.image should not be null or empty."


# --- container level --------------------------------------------------------------------------
# AWS (shared/reference/secrets-and-pulls.md section 1)
SECRETS_NEED_EXECUTION_ROLE = (
    "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."
)
REPOSITORY_CREDENTIALS_NEED_EXECUTION_ROLE = (
    "Private repository authentication requires that the task definition specify a value for executionRoleArn."
)
def container_memory_missing(name: str) -> str:  # AWS
    return f"Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."


def container_memory_above_task(name: str) -> str:  # AWS (DG troubleshooting title; cfn linters quote it)
    return f"The 'memory' setting for container '{name}' is greater than for the task"


def container_memory_reservation_above_task(name: str) -> str:  # OWN
    return f"The 'memoryReservation' setting for container '{name}' is greater than for the task"


def awsvpc_port_mismatch(network_mode: str) -> str:  # AWS for awsvpc; host by analogy
    return f"When networkMode={network_mode}, the host ports and container ports in port mappings must match."


# OWN from here on.
def invalid_container_name(name: str) -> str:
    return (
        f"Invalid container name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, underscores, "
        "and hyphens are allowed."
    )


def duplicate_container_name(name: str) -> str:
    return f"Container names must be unique within a task definition. '{name}' is used more than once."


def container_memory_too_small(name: str) -> str:
    return f"Invalid 'memory' setting for container '{name}'. The minimum is 6 MiB."


def container_reservation_above_memory(name: str) -> str:
    return (
        f"Invalid 'memoryReservation' setting for container '{name}'. "
        "'memory' must be greater than or equal to 'memoryReservation'."
    )


def container_cpu_negative(name: str) -> str:
    return f"Invalid 'cpu' setting for container '{name}'. The value must not be negative."


def containers_cpu_above_task(total: int, task_cpu: int) -> str:
    return f"The sum of the 'cpu' settings of the containers ({total}) is greater than the task 'cpu' ({task_cpu})."


def containers_memory_above_task(total: int, task_memory: int) -> str:
    return (
        f"The memory reserved by the containers ({total} MiB) is greater than the task 'memory' ({task_memory} MiB)."
    )


def port_mapping_without_port(name: str) -> str:
    return f"Invalid port mapping for container '{name}'. Either 'containerPort' or 'containerPortRange' must be set."


def port_out_of_range(name: str, port: int) -> str:
    return f"Invalid port mapping for container '{name}'. {port} is not a valid port number."


def hostname_with_awsvpc(name: str) -> str:
    return f"Invalid setting for container '{name}'. 'hostname' is not supported when networkMode=awsvpc."


def unknown_capability(name: str, capability: str) -> str:
    return f"Invalid setting for container '{name}'. '{capability}' is not a valid Linux capability."


def depends_on_unknown(name: str, dependency: str) -> str:
    return f"Container '{name}' depends on container '{dependency}', which is not defined in the task definition."


def depends_on_itself(name: str) -> str:
    return f"Container '{name}' cannot depend on itself."


def depends_on_cycle(path: list[str]) -> str:
    return f"Container dependencies must not form a cycle: {' -> '.join(path)}."


def depends_on_essential(name: str, dependency: str, condition: str) -> str:
    return (
        f"Container '{name}' depends on container '{dependency}' with condition '{condition}', "
        f"which cannot be set on an essential container. Mark '{dependency}' as not essential."
    )


def depends_on_healthy_without_check(name: str, dependency: str) -> str:
    return (
        f"Container '{name}' depends on container '{dependency}' with condition 'HEALTHY', "
        f"but '{dependency}' has no healthCheck."
    )


def health_check_range(name: str, field: str, low: int, high: int) -> str:
    return (
        f"Invalid '{field}' setting for the health check of container '{name}'. "
        f"The value must be between {low} and {high} seconds."
        if field != "retries"
        else f"Invalid 'retries' setting for the health check of container '{name}'. "
        f"The value must be between {low} and {high}."
    )


def health_check_without_command(name: str) -> str:
    return f"Invalid health check for container '{name}'. 'command' must not be empty."


def ulimit_soft_above_hard(name: str, ulimit: str) -> str:
    return f"Invalid ulimit '{ulimit}' for container '{name}'. 'softLimit' must not be greater than 'hardLimit'."


def duplicate_ulimit(name: str, ulimit: str) -> str:
    return f"Invalid ulimits for container '{name}'. '{ulimit}' is set more than once."


def duplicate_volume(volume: str) -> str:
    return f"Volume names must be unique within a task definition. '{volume}' is used more than once."


def volume_name_missing() -> str:
    return "Volume.name should not be null or empty."


def unknown_source_volume(name: str, volume: str) -> str:
    return f"Invalid mount point for container '{name}'. The source volume '{volume}' is not defined in the task definition."


def unknown_source_container(name: str, source: str) -> str:
    return f"Invalid volumesFrom for container '{name}'. The source container '{source}' is not defined in the task definition."


# AWS [obs aws/aws-cdk#10683, inside CloudFormation's "Invalid request provided: Create TaskDefinition: ..."]
EFS_ROOT_DIRECTORY_WITH_ACCESS_POINT = (
    'When using an EFS access point, the root directory must either be set to "/" or be omitted.'
)
# AWS [obs cloudposse/terraform-aws-ecs-alb-service-task#185]
ONE_VOLUME_CONFIGURATION_TYPE = (
    "When the volume parameter is specified, only one volume configuration type should be used."
)


def efs_transit_encryption_required(volume: str) -> str:  # OWN (AWS refuses it; its text is not public)
    return (
        f"Invalid EFS configuration for volume '{volume}'. 'transitEncryption' must be ENABLED "
        "when IAM authorization or an access point is used."
    )


def efs_invalid_value(volume: str, field: str, value: object, allowed: str) -> str:  # OWN
    return f"Invalid EFS configuration for volume '{volume}'. '{field}' value '{value}' is invalid: use {allowed}."


def efs_file_system_id_missing(volume: str) -> str:  # OWN
    return f"Invalid EFS configuration for volume '{volume}'. 'fileSystemId' should not be null or empty."


# Fargate, container level (OWN).
FARGATE_SYS_PTRACE_ONLY = "Tasks launched on Fargate only support adding the 'SYS_PTRACE' kernel capability."


def fargate_unsupported(name: str, parameter: str) -> str:
    return f"Invalid setting for container '{name}'. Tasks using the Fargate launch type do not support '{parameter}'."


def fargate_log_driver(name: str, driver: str) -> str:
    return (
        f"Invalid setting for container '{name}'. Log driver '{driver}' is not supported on Fargate. "
        "The supported log drivers are awslogs, splunk, and awsfirelens."
    )


def fargate_timeout_range(name: str, field: str) -> str:
    return f"Invalid '{field}' setting for container '{name}'. On Fargate the value must be between 2 and 120 seconds."


def fargate_system_control(name: str, namespace: str) -> str:
    return (
        f"Invalid setting for container '{name}'. Tasks using the Fargate launch type only support namespaced "
        f"systemControls ('net.*' and IPC parameters); '{namespace}' is not supported."
    )


def fargate_nofile_limit(name: str) -> str:
    return f"Invalid ulimit 'nofile' for container '{name}'. On Fargate 'hardLimit' must not be greater than 1048576."


# --- references -------------------------------------------------------------------------------
def invalid_revision(revision: str) -> str:  # AWS (as remembered: users passing ':latest')
    return f"Invalid revision number. Number: {revision}"


def invalid_task_definition_reference(reference: str) -> str:  # OWN
    return f"Invalid task definition '{reference}'. Use a family, family:revision or a task definition ARN."
