"""RegisterTaskDefinition refuses what ECS refuses, with ECS's message (or Fargo's own where AWS's is unknown)."""
from __future__ import annotations

import pytest

from fargo.control.task_definitions.platform import check_platform_supports
from fargo.platform import PLATFORM_VERSIONS, PlatformVersion
from tests.unit.task_definition_requests import (
    EXECUTION_ROLE,
    container,
    ec2_request,
    fargate_request,
    refusal,
    register,
)

# --- Fargate: task level ------------------------------------------------------------------------


def test_fargate_requires_awsvpc_network_mode() -> None:
    assert refusal(fargate_request(networkMode="bridge")) == "Fargate only supports network mode ‘awsvpc’."


def test_fargate_requires_awsvpc_even_when_network_mode_is_omitted() -> None:
    assert refusal(fargate_request(networkMode=None)) == "Fargate only supports network mode ‘awsvpc’."


def test_fargate_requires_task_cpu() -> None:
    assert refusal(fargate_request(cpu=None)) == "Fargate requires that 'cpu' be defined at the task level."


def test_fargate_requires_task_memory() -> None:
    assert refusal(fargate_request(memory=None)) == "Fargate requires that 'memory' be defined at the task level."


@pytest.mark.parametrize(("cpu", "memory"), [("256", "4096"), ("512", "512"), ("1024", "1536"), ("300", "512"),
                                             ("8192", "18432"), ("16384", "36864")])
def test_fargate_refuses_cpu_memory_pairs_outside_its_table(cpu: str, memory: str) -> None:
    assert refusal(fargate_request(cpu=cpu, memory=memory)) == "No Fargate configuration exists for given values."


@pytest.mark.parametrize(("cpu", "memory"), [("256", "2048"), ("4096", "30720"), ("8192", "20480"),
                                             ("16384", "122880")])
def test_fargate_accepts_every_size_of_its_table_including_8_and_16_vcpu(cpu: str, memory: str) -> None:
    assert register(fargate_request(cpu=cpu, memory=memory))["cpu"] == cpu


def test_unparsable_task_cpu_is_refused() -> None:
    assert refusal(fargate_request(cpu="a lot")) == (
        "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the "
        "Amazon ECS Developer Guide."
    )


def test_unparsable_task_memory_is_refused() -> None:
    assert refusal(fargate_request(memory="512 MB")) == (
        "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the "
        "Amazon ECS Developer Guide."
    )


def test_fargate_refuses_ipc_mode() -> None:
    assert refusal(fargate_request(ipcMode="task")) == "Tasks using the Fargate launch type do not support ipcMode."


def test_fargate_refuses_pid_mode_host_but_accepts_task() -> None:
    assert refusal(fargate_request(pidMode="host")) == (
        "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."
    )
    assert register(fargate_request(pidMode="task"))["pidMode"] == "task"


def test_fargate_refuses_placement_constraints() -> None:
    request = fargate_request(placementConstraints=[{"type": "memberOf", "expression": "attribute:x == y"}])
    assert refusal(request) == "Fargate does not support task placement constraints."


def test_fargate_refuses_inference_accelerators() -> None:
    request = fargate_request(inferenceAccelerators=[{"deviceName": "d", "deviceType": "eia2.medium"}])
    assert refusal(request) == "Tasks using the Fargate launch type do not support inferenceAccelerators."


def test_fargate_refuses_host_source_path_volumes_but_accepts_task_scratch_volumes() -> None:
    assert refusal(fargate_request(volumes=[{"name": "v", "host": {"sourcePath": "/etc"}}])) == (
        "host.sourcePath should not be set for volumes in Fargate."
    )
    assert register(fargate_request(volumes=[{"name": "v", "host": {}}]))["volumes"] == [{"name": "v", "host": {}}]


def test_fargate_refuses_docker_volume_configuration() -> None:
    volume = {"name": "v", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}
    assert refusal(fargate_request(volumes=[volume])) == (
        "dockerVolumeConfiguration should not be set for volumes in Fargate."
    )


def test_fargate_refuses_fsx_windows_volumes() -> None:
    volume = {"name": "v", "fsxWindowsFileServerVolumeConfiguration": {
        "fileSystemId": "fs-1", "rootDirectory": "\\", "authorizationConfig": {"credentialsParameter": "p", "domain": "d"}}}
    assert refusal(fargate_request(volumes=[volume])) == (
        "fsxWindowsFileServerVolumeConfiguration should not be set for volumes in Fargate on Linux."
    )


def test_ephemeral_storage_must_be_between_21_and_200_gib() -> None:
    message = "Invalid 'ephemeralStorage' setting for task. The value of 'sizeInGiB' must be between 21 and 200."
    assert refusal(fargate_request(ephemeralStorage={"sizeInGiB": 20})) == message
    assert refusal(fargate_request(ephemeralStorage={"sizeInGiB": 201})) == message
    assert register(fargate_request(ephemeralStorage={"sizeInGiB": 200}))["ephemeralStorage"] == {"sizeInGiB": 200}


# --- Fargate: container level ---------------------------------------------------------------------


def test_fargate_refuses_capabilities_other_than_sys_ptrace() -> None:
    app = container(linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}})
    assert refusal(fargate_request(app)) == "Tasks launched on Fargate only support adding the 'SYS_PTRACE' kernel capability."


def test_fargate_accepts_sys_ptrace_and_dropping_any_capability() -> None:
    app = container(linuxParameters={"capabilities": {"add": ["SYS_PTRACE"], "drop": ["NET_RAW", "ALL"]}})
    register(fargate_request(app))


@pytest.mark.parametrize("platform", PLATFORM_VERSIONS.values(), ids=lambda p: p.version)
def test_sys_ptrace_runs_on_every_platform_version(platform: PlatformVersion) -> None:
    # AWS enabled CAP_SYS_PTRACE "across all available Fargate platform versions" when 1.4.0 came out.
    app = container(linuxParameters={"capabilities": {"add": ["SYS_PTRACE"]}})
    check_platform_supports(register(fargate_request(app)), platform)


def test_unknown_capability_names_are_refused_for_every_launch_type() -> None:
    app = container(memory=128, linuxParameters={"capabilities": {"drop": ["NET_WIZARDRY"]}})
    message = "Invalid setting for container 'app'. 'NET_WIZARDRY' is not a valid Linux capability."
    assert refusal(ec2_request(app)) == message
    assert refusal(fargate_request(app)) == message


@pytest.mark.parametrize(("setting", "value"), [
    ("privileged", True),
    ("links", ["db"]),
    ("disableNetworking", True),
    ("dnsServers", ["10.0.0.2"]),
    ("dnsSearchDomains", ["example.internal"]),
    ("extraHosts", [{"hostname": "db", "ipAddress": "10.0.0.9"}]),
    ("dockerSecurityOptions", ["no-new-privileges"]),
])
def test_fargate_refuses_container_settings_it_does_not_support(setting: str, value: object) -> None:
    assert refusal(fargate_request(container(**{setting: value}))) == (
        f"Invalid setting for container 'app'. Tasks using the Fargate launch type do not support '{setting}'."
    )


def test_fargate_accepts_unsupported_settings_in_their_off_state() -> None:
    app = container(privileged=False, links=[], dnsServers=[], systemControls=[], disableNetworking=False)
    register(fargate_request(app))


@pytest.mark.parametrize(("parameter", "value"), [
    ("devices", [{"hostPath": "/dev/fuse"}]),
    ("sharedMemorySize", 64),
    ("tmpfs", [{"containerPath": "/run", "size": 64}]),
    ("maxSwap", 1024),
    ("swappiness", 10),
])
def test_fargate_refuses_linux_parameters_it_does_not_support(parameter: str, value: object) -> None:
    app = container(linuxParameters={parameter: value})
    assert refusal(fargate_request(app)) == (
        f"Invalid setting for container 'app'. Tasks using the Fargate launch type do not support "
        f"'linuxParameters.{parameter}'."
    )


def test_fargate_refuses_gpu_resource_requirements() -> None:
    app = container(resourceRequirements=[{"type": "GPU", "value": "1"}])
    assert refusal(fargate_request(app)) == (
        "Invalid setting for container 'app'. Tasks using the Fargate launch type do not support "
        "'resourceRequirements type GPU'."
    )


def test_fargate_refuses_system_controls_outside_the_task_namespaces() -> None:
    app = container(systemControls=[{"namespace": "vm.swappiness", "value": "10"}])
    assert refusal(fargate_request(app)) == (
        "Invalid setting for container 'app'. Tasks using the Fargate launch type only support namespaced "
        "systemControls ('net.*' and IPC parameters); 'vm.swappiness' is not supported."
    )


def test_fargate_accepts_network_namespace_system_controls() -> None:
    register(fargate_request(container(systemControls=[{"namespace": "net.ipv4.tcp_keepalive_time", "value": "60"}])))


def test_fargate_refuses_log_drivers_other_than_awslogs_splunk_and_firelens() -> None:
    app = container(logConfiguration={"logDriver": "json-file"})
    assert refusal(fargate_request(app)) == (
        "Invalid setting for container 'app'. Log driver 'json-file' is not supported on Fargate. "
        "The supported log drivers are awslogs, splunk, and awsfirelens."
    )


def test_fargate_awslogs_needs_an_execution_role() -> None:
    app = container(logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g"}})
    assert refusal(fargate_request(app)) == (
        "Fargate requires task definition to have execution role ARN to support log driver awslogs."
    )
    register(fargate_request(app, executionRoleArn=EXECUTION_ROLE))


def test_fargate_private_ecr_images_need_an_execution_role() -> None:
    app = container(image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1")
    assert refusal(fargate_request(app)) == (
        "Fargate requires task definition to have execution role ARN to support ECR images."
    )


@pytest.mark.parametrize("field", ["stopTimeout", "startTimeout"])
@pytest.mark.parametrize("seconds", [1, 121])
def test_fargate_timeouts_must_be_between_2_and_120_seconds(field: str, seconds: int) -> None:
    assert refusal(fargate_request(container(**{field: seconds}))) == (
        f"Invalid '{field}' setting for container 'app'. On Fargate the value must be between 2 and 120 seconds."
    )


def test_ec2_timeouts_are_not_limited_to_120_seconds() -> None:
    register(ec2_request(container(memory=128, stopTimeout=600)))


def test_fargate_nofile_hard_limit_is_at_most_1048576() -> None:
    app = container(ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 2_000_000}])
    assert refusal(fargate_request(app)) == (
        "Invalid ulimit 'nofile' for container 'app'. On Fargate 'hardLimit' must not be greater than 1048576."
    )


def test_fargate_accepts_other_ulimits() -> None:
    register(fargate_request(container(ulimits=[{"name": "nproc", "softLimit": 100, "hardLimit": 200}])))


# --- every launch type: ports, names, essentials ----------------------------------------------


def test_awsvpc_host_port_must_match_container_port() -> None:
    app = container(portMappings=[{"containerPort": 80, "hostPort": 8080}])
    message = "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
    assert refusal(fargate_request(app)) == message
    assert refusal(ec2_request(container(memory=128, **app), networkMode="awsvpc")) == message


def test_bridge_mode_may_map_any_host_port() -> None:
    register(ec2_request(container(memory=128, portMappings=[{"containerPort": 80, "hostPort": 8080}])))


def test_port_mapping_needs_a_container_port() -> None:
    assert refusal(fargate_request(container(portMappings=[{"protocol": "tcp"}]))) == (
        "Invalid port mapping for container 'app'. Either 'containerPort' or 'containerPortRange' must be set."
    )


def test_port_numbers_must_be_valid() -> None:
    assert refusal(fargate_request(container(portMappings=[{"containerPort": 70000}]))) == (
        "Invalid port mapping for container 'app'. 70000 is not a valid port number."
    )


def test_hostname_is_refused_with_awsvpc() -> None:
    assert refusal(fargate_request(container(hostname="web"))) == (
        "Invalid setting for container 'app'. 'hostname' is not supported when networkMode=awsvpc."
    )


def test_family_must_be_255_letters_digits_underscores_or_hyphens() -> None:
    message = ("Invalid family 'web app'. Up to 255 letters (uppercase and lowercase), numbers, underscores, "
               "and hyphens are allowed.")
    assert refusal(fargate_request(family="web app")) == message
    assert refusal(fargate_request(family="x" * 256)).startswith("Invalid family 'xxx")


def test_container_names_must_be_255_letters_digits_underscores_or_hyphens() -> None:
    assert refusal(fargate_request(container("web.app"))) == (
        "Invalid container name 'web.app'. Up to 255 letters (uppercase and lowercase), numbers, underscores, "
        "and hyphens are allowed."
    )


def test_container_names_must_be_unique() -> None:
    assert refusal(fargate_request(container("app"), container("app"))) == (
        "Container names must be unique within a task definition. 'app' is used more than once."
    )


def test_container_needs_a_name_and_an_image() -> None:
    assert refusal(fargate_request({"image": "busybox"})) == "Container.name should not be null or empty."
    assert refusal(fargate_request({"name": "app"})) == "Container.image should not be null or empty."


def test_task_definition_needs_containers() -> None:
    assert refusal(fargate_request(containerDefinitions=[])) == "Container list cannot be empty."


def test_task_definition_needs_an_essential_container() -> None:
    request = fargate_request(container("a", essential=False), container("b", essential=False))
    assert refusal(request) == "Task definition must have at least one essential container."


# --- every launch type: cpu and memory -----------------------------------------------------------


def test_ec2_container_needs_memory_without_task_memory() -> None:
    assert refusal(ec2_request(container())) == (
        "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."
    )


def test_container_memory_is_at_least_6_mib() -> None:
    assert refusal(fargate_request(container(memory=5))) == (
        "Invalid 'memory' setting for container 'app'. The minimum is 6 MiB."
    )


def test_container_memory_reservation_is_at_most_its_memory() -> None:
    assert refusal(fargate_request(container(memory=128, memoryReservation=256))) == (
        "Invalid 'memoryReservation' setting for container 'app'. "
        "'memory' must be greater than or equal to 'memoryReservation'."
    )


def test_container_memory_is_at_most_task_memory() -> None:
    assert refusal(fargate_request(container(memory=1024))) == (
        "The 'memory' setting for container 'app' is greater than for the task"
    )


def test_container_memory_reservation_is_at_most_task_memory() -> None:
    assert refusal(fargate_request(container(memoryReservation=1024))) == (
        "The 'memoryReservation' setting for container 'app' is greater than for the task"
    )


def test_containers_together_reserve_at_most_task_memory() -> None:
    request = fargate_request(container("a", memoryReservation=300), container("b", memory=300))
    assert refusal(request) == (
        "The memory reserved by the containers (600 MiB) is greater than the task 'memory' (512 MiB)."
    )


def test_containers_together_use_at_most_task_cpu() -> None:
    request = fargate_request(container("a", cpu=200), container("b", cpu=100))
    assert refusal(request) == "The sum of the 'cpu' settings of the containers (300) is greater than the task 'cpu' (256)."


def test_container_cpu_is_not_negative() -> None:
    assert refusal(fargate_request(container(cpu=-1))) == (
        "Invalid 'cpu' setting for container 'app'. The value must not be negative."
    )


# --- dependsOn ----------------------------------------------------------------------------------


def test_depends_on_must_name_a_defined_container() -> None:
    app = container(dependsOn=[{"containerName": "db", "condition": "START"}])
    assert refusal(fargate_request(app)) == (
        "Container 'app' depends on container 'db', which is not defined in the task definition."
    )


def test_container_cannot_depend_on_itself() -> None:
    app = container(dependsOn=[{"containerName": "app", "condition": "START"}])
    assert refusal(fargate_request(app)) == "Container 'app' cannot depend on itself."


def test_dependencies_must_not_form_a_cycle() -> None:
    request = fargate_request(
        container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
        container("b", dependsOn=[{"containerName": "c", "condition": "START"}]),
        container("c", dependsOn=[{"containerName": "a", "condition": "START"}]),
    )
    assert refusal(request) == "Container dependencies must not form a cycle: a -> b -> c -> a."


@pytest.mark.parametrize("condition", ["COMPLETE", "SUCCESS"])
def test_exit_conditions_cannot_target_an_essential_container(condition: str) -> None:
    request = fargate_request(container("app", dependsOn=[{"containerName": "init", "condition": condition}]),
                              container("init"))
    assert refusal(request) == (
        f"Container 'app' depends on container 'init' with condition '{condition}', which cannot be set on an "
        "essential container. Mark 'init' as not essential."
    )


@pytest.mark.parametrize("condition", ["COMPLETE", "SUCCESS"])
def test_exit_conditions_on_a_non_essential_container_are_accepted(condition: str) -> None:
    register(fargate_request(container("app", dependsOn=[{"containerName": "init", "condition": condition}]),
                             container("init", essential=False)))


def test_healthy_condition_needs_a_health_check_on_the_dependency() -> None:
    request = fargate_request(container("app", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
                              container("db"))
    assert refusal(request) == (
        "Container 'app' depends on container 'db' with condition 'HEALTHY', but 'db' has no healthCheck."
    )


# --- health checks, ulimits ---------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "low", "high"), [
    ("interval", 4, 5, 300), ("interval", 301, 5, 300),
    ("timeout", 1, 2, 60), ("timeout", 61, 2, 60),
    ("startPeriod", -1, 0, 300), ("startPeriod", 301, 0, 300),
])
def test_health_check_times_must_be_in_range(field: str, value: int, low: int, high: int) -> None:
    app = container(healthCheck={"command": ["CMD", "true"], field: value})
    assert refusal(fargate_request(app)) == (
        f"Invalid '{field}' setting for the health check of container 'app'. "
        f"The value must be between {low} and {high} seconds."
    )


@pytest.mark.parametrize("retries", [0, 11])
def test_health_check_retries_must_be_between_1_and_10(retries: int) -> None:
    app = container(healthCheck={"command": ["CMD", "true"], "retries": retries})
    assert refusal(fargate_request(app)) == (
        "Invalid 'retries' setting for the health check of container 'app'. The value must be between 1 and 10."
    )


def test_health_check_needs_a_command() -> None:
    assert refusal(fargate_request(container(healthCheck={"command": []}))) == (
        "Invalid health check for container 'app'. 'command' must not be empty."
    )


def test_ulimit_soft_limit_is_at_most_its_hard_limit() -> None:
    app = container(ulimits=[{"name": "nproc", "softLimit": 300, "hardLimit": 200}])
    assert refusal(fargate_request(app)) == (
        "Invalid ulimit 'nproc' for container 'app'. 'softLimit' must not be greater than 'hardLimit'."
    )


def test_ulimit_is_set_once_per_container() -> None:
    limit = {"name": "nproc", "softLimit": 1, "hardLimit": 2}
    assert refusal(fargate_request(container(ulimits=[limit, limit]))) == (
        "Invalid ulimits for container 'app'. 'nproc' is set more than once."
    )


# --- volumes ------------------------------------------------------------------------------------


def test_volume_names_must_be_unique() -> None:
    assert refusal(fargate_request(volumes=[{"name": "v", "host": {}}, {"name": "v"}])) == (
        "Volume names must be unique within a task definition. 'v' is used more than once."
    )


def test_mount_points_must_name_a_declared_volume() -> None:
    app = container(mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}])
    assert refusal(fargate_request(app)) == (
        "Invalid mount point for container 'app'. The source volume 'data' is not defined in the task definition."
    )


def test_volumes_from_must_name_a_defined_container() -> None:
    app = container(volumesFrom=[{"sourceContainer": "sidecar"}])
    assert refusal(fargate_request(app)) == (
        "Invalid volumesFrom for container 'app'. The source container 'sidecar' is not defined in the task definition."
    )


def test_efs_root_directory_must_be_root_with_an_access_point() -> None:
    volume = {"name": "efs", "efsVolumeConfiguration": {
        "fileSystemId": "fs-1", "rootDirectory": "/data", "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": "fsap-1"}}}
    assert refusal(fargate_request(volumes=[volume])) == (
        'When using an EFS access point, the root directory must either be set to "/" or be omitted.'
    )


@pytest.mark.parametrize("authorization", [{"accessPointId": "fsap-1"}, {"iam": "ENABLED"}])
def test_efs_needs_transit_encryption_with_iam_or_an_access_point(authorization: dict[str, str]) -> None:
    volume = {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": authorization}}
    assert refusal(fargate_request(volumes=[volume])) == (
        "Invalid EFS configuration for volume 'efs'. 'transitEncryption' must be ENABLED when IAM authorization "
        "or an access point is used."
    )


def test_efs_volume_with_access_point_and_encryption_registers_on_fargate() -> None:
    volume = {"name": "efs", "efsVolumeConfiguration": {
        "fileSystemId": "fs-1", "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}}
    app = container(mountPoints=[{"sourceVolume": "efs", "containerPath": "/mnt"}])
    described = {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/",
                                                           **volume["efsVolumeConfiguration"]}}
    assert register(fargate_request(app, volumes=[volume]))["volumes"] == [described]


# --- the rules stay apart from launch types that do not need them ----------------------------------


def test_ec2_definitions_may_use_what_fargate_refuses() -> None:
    app = container(memory=128, privileged=True, links=["db"],
                    linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}, "sharedMemorySize": 64},
                    logConfiguration={"logDriver": "json-file"})
    document = register(ec2_request(app, container("db", memory=64), ipcMode="host", pidMode="host",
                                    volumes=[{"name": "v", "host": {"sourcePath": "/etc"}}]))
    assert document["compatibilities"] == ["EC2"]
