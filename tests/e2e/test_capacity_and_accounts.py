"""Cluster settings, Fargate's capacity providers, strategies in RunTask, account settings and `fargo spot
interrupt`, through boto3 and the AWS CLI against a real `fargo up`."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from fargo.control import account_messages, capacity_messages as msg
from tests.e2e.conftest import FARGO, REPO, FargoProcess, wait_for_task
from tests.e2e.test_tasks import NETWORK, register

ACCOUNT = "000000000000"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
PROVIDER_ARN = f"arn:aws:ecs:us-east-1:{ACCOUNT}:capacity-provider/{{}}"
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def error_of(call, **kwargs) -> tuple[str, str]:  # noqa: ANN001
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def invalid(message: str) -> tuple[str, str]:
    return "InvalidParameterException", message


# --- cluster settings, configuration, Service Connect default ------------------------------------------

def test_cluster_settings_round_trip_and_show_only_when_included(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    created = ecs.create_cluster(clusterName="insights", settings=[{"name": "containerInsights", "value": "enhanced"}])
    assert created["cluster"]["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    plain = ecs.describe_clusters(clusters=["insights"])["clusters"][0]
    assert "settings" not in plain and "configuration" not in plain
    assert plain["capacityProviders"] == [] and plain["defaultCapacityProviderStrategy"] == []

    updated = ecs.update_cluster_settings(cluster="insights",
                                          settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]
    assert updated["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    described = ecs.describe_clusters(clusters=["insights"], include=["SETTINGS"])["clusters"][0]
    assert described["settings"] == [{"name": "containerInsights", "value": "enabled"}]

    exec_config = {"logging": "OVERRIDE", "kmsKeyId": "alias/exec",
                   "logConfiguration": {"cloudWatchLogGroupName": "/exec", "cloudWatchEncryptionEnabled": True}}
    out = ecs.update_cluster(cluster="insights", configuration={"executeCommandConfiguration": exec_config},
                             serviceConnectDefaults={"namespace": "shop"})["cluster"]
    assert out["configuration"] == {"executeCommandConfiguration": exec_config}
    namespace = out["serviceConnectDefaults"]["namespace"]
    assert namespace.startswith(f"arn:aws:servicediscovery:us-east-1:{ACCOUNT}:namespace/ns-")
    out = ecs.update_cluster(cluster="insights",
                             configuration={"managedStorageConfiguration": {"kmsKeyId": "alias/storage"}})["cluster"]
    assert out["configuration"] == {"executeCommandConfiguration": exec_config,
                                    "managedStorageConfiguration": {"kmsKeyId": "alias/storage"}}
    assert out["serviceConnectDefaults"]["namespace"] == namespace  # the same name, the same namespace
    with_config = ecs.describe_clusters(clusters=["insights"], include=["CONFIGURATIONS"])["clusters"][0]
    assert with_config["configuration"]["managedStorageConfiguration"] == {"kmsKeyId": "alias/storage"}
    assert "settings" not in with_config
    cleared = ecs.update_cluster(cluster="insights", serviceConnectDefaults={"namespace": ""})["cluster"]
    assert "serviceConnectDefaults" not in cleared

    # the AWS CLI's shorthand says the same
    cli = fargo.aws_json("ecs", "update-cluster-settings", "--cluster", "insights",
                         "--settings", "name=containerInsights,value=disabled")
    assert cli["cluster"]["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    cli = fargo.aws_json("ecs", "describe-clusters", "--clusters", "insights", "--include", "SETTINGS")
    assert cli["clusters"][0]["settings"] == [{"name": "containerInsights", "value": "disabled"}]


def test_cluster_setting_errors_are_aws_shaped(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    ecs.create_cluster(clusterName="strict")
    assert error_of(ecs.update_cluster_settings, cluster="strict",
                    settings=[{"name": "containerInsights", "value": "maybe"}]) == invalid(
        msg.CONTAINER_INSIGHTS_VALUE.format(value="maybe"))
    assert error_of(ecs.update_cluster_settings, cluster="nowhere",
                    settings=[{"name": "containerInsights", "value": "enabled"}]) == (
        "ClusterNotFoundException", "Cluster not found.")
    assert error_of(ecs.update_cluster, cluster="strict") == invalid(msg.UPDATE_NEEDS_SOMETHING)
    assert error_of(ecs.update_cluster_settings, cluster="strict", settings=[]) == invalid(msg.SETTINGS_EMPTY)
    code, message = error_of(ecs.update_cluster_settings, cluster="strict",
                             settings=[{"name": "colour", "value": "enabled"}])
    assert code == "ValidationException" and "containerInsights" in message


# --- capacity providers ----------------------------------------------------------------------------------

def test_describe_capacity_providers_shows_fargates_two(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    out = ecs.describe_capacity_providers()
    assert out["capacityProviders"] == [
        {"capacityProviderArn": PROVIDER_ARN.format(name), "name": name, "status": "ACTIVE", "type": name, "tags": []}
        for name in ("FARGATE", "FARGATE_SPOT")]
    assert out["failures"] == []
    out = ecs.describe_capacity_providers(capacityProviders=["FARGATE_SPOT", "MyProvider"], include=["TAGS"])
    assert [p["name"] for p in out["capacityProviders"]] == ["FARGATE_SPOT"]
    assert out["failures"] == [{"arn": PROVIDER_ARN.format("MyProvider"), "reason": "MISSING"}]
    page = ecs.describe_capacity_providers(maxResults=1)
    assert [p["name"] for p in page["capacityProviders"]] == ["FARGATE"] and page["nextToken"]
    rest = ecs.describe_capacity_providers(maxResults=1, nextToken=page["nextToken"])
    assert [p["name"] for p in rest["capacityProviders"]] == ["FARGATE_SPOT"] and "nextToken" not in rest
    cli = fargo.aws_json("ecs", "describe-capacity-providers", "--capacity-providers",
                         PROVIDER_ARN.format("FARGATE"))
    assert cli["capacityProviders"][0]["name"] == "FARGATE"


def test_put_cluster_capacity_providers_sets_the_default_strategy(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    ecs.create_cluster(clusterName="providers")
    out = ecs.put_cluster_capacity_providers(
        cluster="providers", capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                         {"capacityProvider": "FARGATE_SPOT", "weight": 4}])["cluster"]
    assert out["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert out["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                                                      {"capacityProvider": "FARGATE_SPOT", "weight": 4, "base": 0}]
    described = ecs.describe_clusters(clusters=["providers"])["clusters"][0]
    assert described["defaultCapacityProviderStrategy"] == out["defaultCapacityProviderStrategy"]
    only = ecs.describe_capacity_providers(cluster="providers", capacityProviders=["FARGATE"])
    assert [p["name"] for p in only["capacityProviders"]] == ["FARGATE"]

    cli = fargo.aws_json("ecs", "put-cluster-capacity-providers", "--cluster", "providers",
                         "--capacity-providers", "FARGATE_SPOT",
                         "--default-capacity-provider-strategy", "capacityProvider=FARGATE_SPOT,weight=1")
    assert cli["cluster"]["capacityProviders"] == ["FARGATE_SPOT"]
    assert cli["cluster"]["defaultCapacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    gone = ecs.describe_capacity_providers(cluster="providers", capacityProviders=["FARGATE"])
    assert gone["failures"] == [{"arn": PROVIDER_ARN.format("FARGATE"), "reason": "MISSING"}]
    cleared = ecs.put_cluster_capacity_providers(cluster="providers", capacityProviders=[],
                                                 defaultCapacityProviderStrategy=[])["cluster"]
    assert cleared["capacityProviders"] == [] and cleared["defaultCapacityProviderStrategy"] == []


def test_create_cluster_takes_capacity_providers_and_refuses_a_different_repeat(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 0}]
    out = ecs.create_cluster(clusterName="born-with", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                             defaultCapacityProviderStrategy=strategy)["cluster"]
    assert out["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert out["defaultCapacityProviderStrategy"] == strategy
    again = ecs.create_cluster(clusterName="born-with", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                               defaultCapacityProviderStrategy=strategy)["cluster"]
    assert again["clusterArn"] == out["clusterArn"]
    assert error_of(ecs.create_cluster, clusterName="born-with", capacityProviders=["FARGATE"]) == invalid(
        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")


def test_capacity_provider_errors_are_aws_shaped(fargo: FargoProcess) -> None:
    ecs = fargo.client("ecs")
    ecs.create_cluster(clusterName="cp-errors")

    def put(providers: list[str], strategy: list[dict]) -> tuple[str, str]:
        return error_of(ecs.put_cluster_capacity_providers, cluster="cp-errors", capacityProviders=providers,
                        defaultCapacityProviderStrategy=strategy)

    assert put(["MyProvider"], []) == invalid(msg.PROVIDER_NOT_FOUND)
    assert put(["FARGATE"], SPOT) == invalid(msg.NOT_ASSOCIATED)
    assert put(["FARGATE", "FARGATE_SPOT"], [{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                             {"capacityProvider": "FARGATE_SPOT", "base": 2}]) == invalid(
        msg.BASE_ON_MANY)
    assert put(["FARGATE"], [{"capacityProvider": "FARGATE", "weight": 1}] * 2) == invalid(msg.DUPLICATE_PROVIDER)
    assert put(["FARGATE"], [{"capacityProvider": "FARGATE", "weight": 1001}]) == invalid(msg.WEIGHT_RANGE)
    assert error_of(ecs.put_cluster_capacity_providers, cluster="nowhere", capacityProviders=[],
                    defaultCapacityProviderStrategy=[]) == ("ClusterNotFoundException", "Cluster not found.")
    assert error_of(ecs.create_cluster, clusterName="cp-bad", capacityProviders=["MyProvider"]) == invalid(
        msg.PROVIDER_NOT_FOUND)


# --- RunTask with a strategy, Spot interruptions ----------------------------------------------------------

@pytest.fixture
def spot_cluster(runner_fargo: FargoProcess) -> Iterator[str]:
    """A cluster with both Fargate providers and no default strategy; its tasks are stopped afterwards."""
    ecs = runner_fargo.client("ecs")
    ecs.create_cluster(clusterName="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    ecs.put_cluster_capacity_providers(cluster="spot", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                       defaultCapacityProviderStrategy=[])
    yield "spot"
    for arn in ecs.list_tasks(cluster="spot")["taskArns"]:
        ecs.stop_task(cluster="spot", task=arn)


def test_run_task_with_a_spot_strategy_names_the_provider(runner_fargo: FargoProcess, spot_cluster: str) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "spot-sleeper", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    out = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK,
                       capacityProviderStrategy=SPOT, count=2)
    assert out["failures"] == []
    for task in out["tasks"]:
        assert task["capacityProviderName"] == "FARGATE_SPOT" and task["launchType"] == "FARGATE"
    mixed = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK, count=3,
                         capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1},
                                                   {"capacityProvider": "FARGATE_SPOT", "weight": 1}])["tasks"]
    assert sorted(t["capacityProviderName"] for t in mixed) == ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT"]
    plain = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK,
                         launchType="FARGATE")["tasks"][0]
    assert "capacityProviderName" not in plain and plain["launchType"] == "FARGATE"
    described = ecs.describe_tasks(cluster=spot_cluster, tasks=[out["tasks"][0]["taskArn"]])["tasks"][0]
    assert described["capacityProviderName"] == "FARGATE_SPOT"

    # with neither a launch type nor a strategy, the cluster's default strategy decides
    ecs.put_cluster_capacity_providers(cluster=spot_cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                       defaultCapacityProviderStrategy=SPOT)
    by_default = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK)["tasks"][0]
    assert by_default["capacityProviderName"] == "FARGATE_SPOT"
    cli = runner_fargo.aws_json("ecs", "run-task", "--cluster", spot_cluster, "--task-definition", td,
                                "--capacity-provider-strategy", "capacityProvider=FARGATE,weight=1",
                                "--network-configuration",
                                "awsvpcConfiguration={subnets=[subnet-fargo-default-1a]}")
    assert cli["tasks"][0]["capacityProviderName"] == "FARGATE"

    # a provider with live tasks cannot leave the cluster
    assert error_of(ecs.put_cluster_capacity_providers, cluster=spot_cluster, capacityProviders=["FARGATE"],
                    defaultCapacityProviderStrategy=[]) == ("ResourceInUseException", msg.PROVIDER_IN_USE)


def test_run_task_strategy_errors_are_aws_shaped(runner_fargo: FargoProcess, spot_cluster: str) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "spot-errors", {"name": "app", "command": ["true"]})

    def run_error(**kwargs) -> tuple[str, str]:
        return error_of(ecs.run_task, taskDefinition=td, networkConfiguration=NETWORK, **kwargs)

    assert run_error(cluster=spot_cluster, launchType="FARGATE", capacityProviderStrategy=SPOT) == invalid(
        msg.LAUNCH_TYPE_AND_STRATEGY)
    assert run_error(capacityProviderStrategy=SPOT) == invalid(msg.NOT_ASSOCIATED)  # default has none
    assert run_error(cluster=spot_cluster, capacityProviderStrategy=[{"capacityProvider": "MyProvider",
                                                                      "weight": 1}]) == invalid(msg.NOT_ASSOCIATED)
    assert run_error(cluster=spot_cluster, capacityProviderStrategy=[{"capacityProvider": "FARGATE"},
                                                                     {"capacityProvider": "FARGATE_SPOT"}]) == (
        invalid(msg.STRATEGY_NO_WEIGHT))
    assert run_error(cluster=spot_cluster, capacityProviderStrategy=[
        {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
        {"capacityProvider": "FARGATE_SPOT", "base": 1, "weight": 1}]) == invalid(msg.BASE_ON_MANY)
    ecs.put_cluster_capacity_providers(cluster=spot_cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE"}])
    assert run_error(cluster=spot_cluster) == invalid(msg.DEFAULT_STRATEGY_NO_WEIGHT)
    ecs.put_cluster_capacity_providers(cluster=spot_cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                       defaultCapacityProviderStrategy=[])


def spot_interrupt(f: FargoProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(FARGO + ["spot", "interrupt", "--endpoint", f.endpoint, *args], capture_output=True,
                          text=True, cwd=REPO, check=check)


def test_fargo_spot_interrupt_stops_spot_tasks_as_aws_does(runner_fargo: FargoProcess, spot_cluster: str) -> None:
    ecs = runner_fargo.client("ecs")
    # a container that exits 0 on SIGTERM shows that SIGTERM came first (SIGKILL would make it 137)
    td = register(ecs, "spot-graceful", {"name": "app", "stopTimeout": 10,
                                         "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]})
    on_demand = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK,
                             capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])["tasks"][0]
    spot = ecs.run_task(cluster=spot_cluster, taskDefinition=td, networkConfiguration=NETWORK,
                        capacityProviderStrategy=SPOT)["tasks"][0]
    for task in (on_demand, spot):
        assert wait_for_task(ecs, task["taskArn"], "RUNNING", cluster=spot_cluster)["lastStatus"] == "RUNNING"

    none = spot_interrupt(runner_fargo, "--cluster", spot_cluster, "--service", "nothing-here")
    assert "No running FARGATE_SPOT task" in none.stdout
    out = spot_interrupt(runner_fargo, "--cluster", spot_cluster, "--count", "5")
    spot_id = spot["taskArn"].rsplit("/", 1)[-1]
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["TASK", "DEFINITION", "GROUP"]
    assert len(lines) == 2 and lines[1].startswith(spot_id) and "SpotInterruption" in lines[1]
    stopped = wait_for_task(ecs, spot["taskArn"], "STOPPED", 30, cluster=spot_cluster)
    assert stopped["stopCode"] == "SpotInterruption"
    assert stopped["stoppedReason"] == "Your Spot Task was interrupted."
    assert stopped["containers"][0]["exitCode"] == 0
    still = ecs.describe_tasks(cluster=spot_cluster, tasks=[on_demand["taskArn"]])["tasks"][0]
    assert still["desiredStatus"] == "RUNNING"

    bad = spot_interrupt(runner_fargo, "--cluster", spot_cluster, "--fraction", "2", check=False)
    assert bad.returncode == 1 and "fraction" in bad.stderr
    missing = spot_interrupt(runner_fargo, "--cluster", "nowhere", check=False)
    assert missing.returncode == 1 and "Cluster not found." in missing.stderr


# --- account settings --------------------------------------------------------------------------------------

DEFAULTS = {"awsvpcTrunking": "disabled", "containerInsights": "disabled",
            "containerInstanceLongArnFormat": "enabled", "defaultLogDriverMode": "non-blocking",
            "fargateEventWindows": "disabled", "fargateFIPSMode": "disabled", "fargateTaskRetirementWaitPeriod": "7",
            "guardDutyActivate": "off", "serviceLongArnFormat": "enabled", "tagResourceAuthorization": "on",
            "taskLongArnFormat": "enabled"}


@pytest.fixture
def accounts(fargo: FargoProcess) -> Iterator:
    """The ECS client; the settings a test sets are deleted afterwards (the shared Fargo outlives it)."""
    ecs = fargo.client("ecs")
    yield ecs
    for name in DEFAULTS:
        if name != "guardDutyActivate":
            ecs.delete_account_setting(name=name)
            ecs.delete_account_setting(name=name, principalArn=f"arn:aws:iam::{ACCOUNT}:user/alice")


def test_effective_account_settings_are_awss_defaults_in_pages_of_ten(accounts) -> None:  # noqa: ANN001
    first = accounts.list_account_settings(effectiveSettings=True)
    assert len(first["settings"]) == 10 and first["nextToken"]
    rest = accounts.list_account_settings(effectiveSettings=True, nextToken=first["nextToken"])
    settings = first["settings"] + rest["settings"]
    assert {s["name"]: s["value"] for s in settings} == DEFAULTS
    assert all(s["principalArn"] == ROOT for s in settings)
    assert {s["name"]: s["type"] for s in settings}["guardDutyActivate"] == "aws_managed"
    paged = [s for page in accounts.get_paginator("list_account_settings").paginate(
        effectiveSettings=True, PaginationConfig={"PageSize": 3}) for s in page["settings"]]
    assert paged == settings
    assert accounts.list_account_settings()["settings"] == []  # nothing set explicitly


def test_put_default_put_delete_and_list_filters(accounts, fargo: FargoProcess) -> None:  # noqa: ANN001
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    out = accounts.put_account_setting_default(name="containerInsights", value="enhanced")["setting"]
    assert out == {"name": "containerInsights", "value": "enhanced", "principalArn": ROOT, "type": "user"}
    assert accounts.create_cluster(clusterName="by-account-default")["cluster"]["settings"] == [
        {"name": "containerInsights", "value": "enhanced"}]
    put = accounts.put_account_setting(name="containerInsights", value="enabled", principalArn=alice)["setting"]
    assert put == {"name": "containerInsights", "value": "enabled", "principalArn": alice, "type": "user"}
    assert accounts.list_account_settings(principalArn=alice)["settings"] == [put]
    effective = accounts.list_account_settings(principalArn=alice, effectiveSettings=True, name="containerInsights")
    assert [s["value"] for s in effective["settings"]] == ["enabled"]
    trunking = accounts.list_account_settings(principalArn=alice, effectiveSettings=True, name="awsvpcTrunking")
    assert [(s["value"], s["principalArn"]) for s in trunking["settings"]] == [("disabled", alice)]
    by_value = accounts.list_account_settings(effectiveSettings=True, name="containerInsights", value="enhanced")
    assert [s["principalArn"] for s in by_value["settings"]] == [ROOT]
    assert accounts.list_account_settings(effectiveSettings=True, name="containerInsights",
                                          value="disabled")["settings"] == []

    deleted = accounts.delete_account_setting(name="containerInsights", principalArn=alice)["setting"]
    assert deleted["value"] == "enabled" and deleted["principalArn"] == alice
    effective = accounts.list_account_settings(principalArn=alice, effectiveSettings=True, name="containerInsights")
    assert [s["value"] for s in effective["settings"]] == ["enhanced"]  # back to the account default
    accounts.put_account_setting(name="fargateTaskRetirementWaitPeriod", value="14")

    cli = fargo.aws_json("ecs", "list-account-settings", "--effective-settings", "--name",
                         "fargateTaskRetirementWaitPeriod")
    assert cli["settings"] == [{"name": "fargateTaskRetirementWaitPeriod", "value": "14", "principalArn": ROOT,
                                "type": "user"}]
    cli = fargo.aws_json("ecs", "put-account-setting", "--name", "tagResourceAuthorization", "--value", "off")
    assert cli["setting"]["value"] == "off"
    cli = fargo.aws_json("ecs", "delete-account-setting", "--name", "tagResourceAuthorization")
    assert cli["setting"]["value"] == "off"
    assert accounts.list_account_settings(effectiveSettings=True, name="tagResourceAuthorization")["settings"][0][
        "value"] == "on"


def test_account_setting_errors(accounts) -> None:  # noqa: ANN001
    m = account_messages
    assert error_of(accounts.put_account_setting, name="containerInsights", value="sometimes") == invalid(
        m.INVALID_VALUE.format(value="sometimes", name="containerInsights", valid="enhanced, enabled, disabled"))
    assert error_of(accounts.put_account_setting_default, name="guardDutyActivate", value="on") == invalid(
        m.READ_ONLY.format(name="guardDutyActivate"))
    assert error_of(accounts.put_account_setting, name="taskLongArnFormat", value="disabled") == invalid(
        m.LONG_ARN_OPT_OUT.format(name="taskLongArnFormat"))
    assert error_of(accounts.put_account_setting, name="fargateTaskRetirementWaitPeriod", value="0",
                    principalArn=f"arn:aws:iam::{ACCOUNT}:role/deployer") == invalid(
        m.ROOT_ONLY.format(name="fargateTaskRetirementWaitPeriod"))
    assert error_of(accounts.put_account_setting, name="awsvpcTrunking", value="enabled",
                    principalArn="arn:aws:iam::111122223333:user/bob") == invalid(
        m.INVALID_PRINCIPAL.format(arn="arn:aws:iam::111122223333:user/bob", account=ACCOUNT))
    assert error_of(accounts.list_account_settings, value="enabled") == invalid(m.VALUE_NEEDS_NAME)
    code, message = error_of(accounts.put_account_setting, name="dualStackIPv7", value="enabled")
    assert code == "ValidationException" and "serviceLongArnFormat" in message
    code, _ = error_of(accounts.list_account_settings, maxResults=11)
    assert code == "InvalidParameterException"
