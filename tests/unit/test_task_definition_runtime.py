"""What RunTask and the agent ask of a stored definition: sizes per platform, platform features, defaults."""
from __future__ import annotations

import pytest

from fargo.errors import (
    ClientException,
    PlatformTaskDefinitionIncompatibilityException,
)
from fargo.control.task_definitions.sizes import parse_task_cpu, parse_task_memory
from fargo.control.task_definitions.registration import (
    HealthCheckSettings,
    check_platform_supports,
    effective_container_settings,
    task_network_mode,
    task_size_supported,
)
from fargo.platform import PLATFORM_1_3_0, PLATFORM_1_4_0
from tests.unit.task_definition_requests import container, fargate_request, register


@pytest.mark.parametrize(("text", "units"), [("256", 256), ("0.25 vCPU", 256), ("1vcpu", 1024), (" 2 vCPU ", 2048),
                                             (1024, 1024)])
def test_task_cpu_forms(text: str | int, units: int) -> None:
    assert parse_task_cpu(text) == units


@pytest.mark.parametrize(("text", "mib"), [("512", 512), ("1 GB", 1024), ("1GB", 1024), ("0.5gb", 512), ("30 GB", 30720)])
def test_task_memory_forms(text: str, mib: int) -> None:
    assert parse_task_memory(text) == mib


@pytest.mark.parametrize("text", ["0", "0.1 vCPU", "1.5", "-256", "1 core"])
def test_malformed_task_cpu_is_refused(text: str) -> None:
    with pytest.raises(ClientException):
        parse_task_cpu(text)


def test_large_task_sizes_need_platform_1_4_0() -> None:
    assert task_size_supported(8192, 16384, PLATFORM_1_4_0)
    assert task_size_supported("16 vCPU", "120 GB", PLATFORM_1_4_0)
    assert not task_size_supported(8192, 16384, PLATFORM_1_3_0)
    assert task_size_supported("4096", "30720", PLATFORM_1_3_0)


def test_task_size_outside_the_table_is_supported_nowhere() -> None:
    assert not task_size_supported(256, 4096, PLATFORM_1_4_0)


def _refused_on_1_3_0(document: dict) -> None:
    check_platform_supports(document, PLATFORM_1_4_0)
    with pytest.raises(PlatformTaskDefinitionIncompatibilityException) as caught:
        check_platform_supports(document, PLATFORM_1_3_0)
    assert caught.value.message == "One or more of the requested capabilities are not supported."


def test_efs_volumes_need_platform_1_4_0() -> None:
    _refused_on_1_3_0(register(fargate_request(volumes=[{"name": "e", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}])))


def test_ephemeral_storage_needs_platform_1_4_0() -> None:
    _refused_on_1_3_0(register(fargate_request(ephemeralStorage={"sizeInGiB": 40})))


def test_pid_mode_task_needs_platform_1_4_0() -> None:
    _refused_on_1_3_0(register(fargate_request(pidMode="task")))


def test_eight_vcpu_needs_platform_1_4_0_also_through_a_run_task_override() -> None:
    _refused_on_1_3_0(register(fargate_request(cpu="8 vCPU", memory="16 GB")))
    plain = register(fargate_request())
    check_platform_supports(plain, PLATFORM_1_3_0)
    with pytest.raises(PlatformTaskDefinitionIncompatibilityException):
        check_platform_supports(plain, PLATFORM_1_3_0, cpu="8192")


def test_plain_definition_runs_on_both_platforms() -> None:
    document = register(fargate_request())
    check_platform_supports(document, PLATFORM_1_3_0)
    check_platform_supports(document, PLATFORM_1_4_0)


def test_effective_settings_apply_fargate_defaults() -> None:
    stored = register(fargate_request(container(healthCheck={"command": ["CMD", "true"]})))["containerDefinitions"][0]
    settings = effective_container_settings(stored)
    assert settings.stop_timeout == 30 and settings.start_timeout is None and settings.essential
    assert settings.health_check == HealthCheckSettings(command=("CMD", "true"), interval=30, timeout=5, retries=3,
                                                        start_period=0)
    assert settings.ulimits == {"nofile": (65535, 65535)}


def test_effective_settings_keep_what_the_definition_says() -> None:
    app = container(stopTimeout=90, essential=False, environment=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
                    dependsOn=[{"containerName": "main", "condition": "START"}],
                    ulimits=[{"name": "nofile", "softLimit": 10, "hardLimit": 20}],
                    linuxParameters={"initProcessEnabled": True})
    stored = register(fargate_request(container("main"), app))["containerDefinitions"][1]
    settings = effective_container_settings(stored)
    assert settings.stop_timeout == 90 and not settings.essential and settings.init_process_enabled
    assert settings.environment == {"A": "2"} and settings.depends_on == (("main", "START"),)
    assert settings.ulimits == {"nofile": (10, 20)}


def test_network_mode_defaults_to_bridge() -> None:
    assert task_network_mode({}) == "bridge"
    assert task_network_mode({"networkMode": "awsvpc"}) == "awsvpc"
