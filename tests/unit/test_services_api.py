"""The ECS service API of the control plane against a real SQLite store: shapes as AWS shows them,
deployment ids, clientToken idempotency, which updates start a deployment, delete, describe, list, and every
error text."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from fargo.config import Config
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.services.services import Services
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.control.tasks import Tasks
from fargo.control.vpcs.network import Network
from fargo.errors import AwsError
from fargo.store.database import Store

NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-fargo-default-1a", "subnet-fargo-default-1b"]}}
DEPLOYMENT_ID = re.compile(r"ecs-svc/\d{19}")


class ControlPlane:
    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
        self.store.migrate()
        self.ctx = ControlContext(Config(data_dir=tmp_path), self.store)
        network = Network(self.ctx)
        network.ensure_default()
        self.registry = TaskDefinitionRegistry(self.ctx)
        self.tasks = Tasks(self.ctx, Clusters(self.ctx), self.registry, network)
        self.services = Services(self.ctx, self.tasks, network)
        self.tasks.services = self.services
        self.woken = 0
        self.services.on_change = self._woken
        self._handlers = {**self.services.handlers(), **self.tasks.handlers()}
        Clusters(self.ctx).create(None, None, None, {"capacityProviders": ["FARGATE", "FARGATE_SPOT"]})
        for _ in range(2):
            self.registry.register({"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
                                    "cpu": "256", "memory": "512",
                                    "containerDefinitions": [{"name": "app", "image": "busybox"}]})

    def _woken(self) -> None:
        self.woken += 1

    def __call__(self, operation: str, **params: Any) -> dict:
        return asyncio.run(self._handlers[operation](params))

    def error(self, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as e:
            self(operation, **params)
        return e.value

    def create(self, name: str = "web", **params: Any) -> dict:
        params = {"taskDefinition": "web:1", "desiredCount": 2, "launchType": "FARGATE",
                  "networkConfiguration": NETWORK, **params}
        return self("CreateService", serviceName=name, **params)["service"]


@pytest.fixture
def cp(tmp_path: Path) -> ControlPlane:
    return ControlPlane(tmp_path)


def test_create_service_returns_the_fargate_shape_with_one_primary_deployment(cp: ControlPlane) -> None:
    s = cp.create(tags=[{"key": "team", "value": "a"}])
    assert s["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/default/web"
    assert s["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 2 and s["runningCount"] == 0 and s["pendingCount"] == 0
    assert s["launchType"] == "FARGATE" and "capacityProviderStrategy" not in s
    assert s["platformVersion"] == "LATEST" and s["platformFamily"] == "Linux"
    assert s["taskDefinition"].endswith(":task-definition/web:1")
    assert s["deploymentConfiguration"] == {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                                            "maximumPercent": 200, "minimumHealthyPercent": 100}
    assert s["schedulingStrategy"] == "REPLICA" and s["deploymentController"] == {"type": "ECS"}
    assert s["roleArn"] == "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    assert s["propagateTags"] == "NONE" and s["enableECSManagedTags"] is False and s["enableExecuteCommand"] is False
    assert s["healthCheckGracePeriodSeconds"] == 0 and s["events"] == []
    for key in ("loadBalancers", "serviceRegistries", "placementConstraints", "placementStrategy"):
        assert s[key] == []
    assert s["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-fargo-default-1a", "subnet-fargo-default-1b"], "securityGroups": ["sg-fargo-default"],
        "assignPublicIp": "DISABLED"}}
    assert "_scheduler" not in s and "tags" not in s
    [d] = s["deployments"]
    assert DEPLOYMENT_ID.fullmatch(d["id"])
    assert d["status"] == "PRIMARY" and d["desiredCount"] == 2 and d["failedTasks"] == 0
    assert d["platformVersion"] == "1.4.0" and d["launchType"] == "FARGATE"
    assert d["rolloutState"] == "IN_PROGRESS" and d["rolloutStateReason"] == f"ECS deployment {d['id']} in progress."
    assert d["networkConfiguration"] == s["networkConfiguration"] and d["createdAt"] == d["updatedAt"]
    assert cp.woken == 1


def test_a_retry_with_the_same_client_token_returns_the_service_and_anything_else_is_not_idempotent(
        cp: ControlPlane) -> None:
    first = cp.create(clientToken="tok-1")
    assert cp.create(clientToken="tok-1") == first
    for retry in ({"clientToken": "tok-1", "desiredCount": 3}, {"clientToken": "tok-2"}, {}):
        e = cp.error("CreateService", serviceName="web", taskDefinition="web:1", desiredCount=retry.get("desiredCount", 2),
                     networkConfiguration=NETWORK, launchType="FARGATE",
                     **{k: v for k, v in retry.items() if k != "desiredCount"})
        assert (e.code, e.message) == ("InvalidParameterException", "Creation of service was not idempotent.")


def test_a_capacity_provider_strategy_replaces_the_launch_type(cp: ControlPlane) -> None:
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    s = cp("CreateService", serviceName="spot", taskDefinition="web", desiredCount=1, networkConfiguration=NETWORK,
        capacityProviderStrategy=strategy)["service"]
    echoed = [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    assert "launchType" not in s and s["capacityProviderStrategy"] == echoed
    assert s["deployments"][0]["capacityProviderStrategy"] == echoed and "launchType" not in s["deployments"][0]
    assert s["taskDefinition"].endswith("web:2")  # a bare family is its latest ACTIVE revision
    e = cp.error("CreateService", serviceName="both", taskDefinition="web", desiredCount=1, launchType="FARGATE",
                 networkConfiguration=NETWORK, capacityProviderStrategy=strategy)
    assert e.message.startswith("Specifying both a launch type and capacity provider strategy is not supported.")


def test_desired_count_alone_scales_the_primary_and_a_new_definition_starts_a_deployment(cp: ControlPlane) -> None:
    first = cp.create()["deployments"][0]
    s = cp("UpdateService", service="web", desiredCount=5)["service"]
    assert [d["id"] for d in s["deployments"]] == [first["id"]] and s["deployments"][0]["desiredCount"] == 5
    s = cp("UpdateService", service="web", deploymentConfiguration={"maximumPercent": 150},
           healthCheckGracePeriodSeconds=30)["service"]
    assert len(s["deployments"]) == 1 and s["deploymentConfiguration"]["maximumPercent"] == 150
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 100 and s["healthCheckGracePeriodSeconds"] == 30
    s = cp("UpdateService", service=s["serviceArn"], taskDefinition="web:2")["service"]
    new, old = s["deployments"]
    assert new["status"] == "PRIMARY" and old["status"] == "ACTIVE" and old["id"] == first["id"]
    assert new["taskDefinition"].endswith("web:2") and s["taskDefinition"].endswith("web:2")
    assert DEPLOYMENT_ID.fullmatch(new["id"]) and new["id"] != old["id"]
    s = cp("UpdateService", service="web", forceNewDeployment=True)["service"]
    assert len(s["deployments"]) == 3 and [d["status"] for d in s["deployments"]] == ["PRIMARY", "ACTIVE", "ACTIVE"]


def test_delete_needs_force_above_zero_and_leaves_a_draining_then_describable_service(cp: ControlPlane) -> None:
    cp.create()
    e = cp.error("DeleteService", service="web")
    assert (e.code, e.message) == ("InvalidParameterException",
                                   "The service cannot be stopped while it is scaled above 0.")
    s = cp("DeleteService", service="web", force=True)["service"]
    assert s["status"] == "DRAINING" and s["desiredCount"] == 0
    assert cp("ListServices")["serviceArns"] == []
    assert cp("DescribeServices", services=["web"])["services"][0]["status"] == "DRAINING"
    for op, extra in (("UpdateService", {"desiredCount": 1}), ("DeleteService", {})):
        e = cp.error(op, service="web", **extra)
        assert (e.code, e.message) == ("ServiceNotActiveException", "Service was not ACTIVE.")
    e = cp.error("CreateService", serviceName="web", taskDefinition="web:1", desiredCount=1,
                 networkConfiguration=NETWORK)
    assert e.message == "Creation of service was not idempotent."


def test_an_inactive_name_may_be_created_again(cp: ControlPlane) -> None:
    cp.create(tags=[{"key": "old", "value": "1"}])
    cp("DeleteService", service="web", force=True)
    row = cp.services.store.get("arn:aws:ecs:us-east-1:000000000000:service/default/web")
    assert row is not None
    row.doc["status"] = "INACTIVE"
    assert cp.services.store.save(row.doc, row.version)
    s = cp.create(desiredCount=1)
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 1
    described = cp("DescribeServices", services=["web"], include=["TAGS"])["services"][0]
    assert described["tags"] == []


def test_unknown_services_are_missing_in_describe_and_not_found_elsewhere(cp: ControlPlane) -> None:
    cp.create(tags=[{"key": "team", "value": "a"}])
    out = cp("DescribeServices", services=["web", "nope"], include=["TAGS"])
    assert [s["serviceName"] for s in out["services"]] == ["web"]
    assert out["services"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert out["failures"] == [{"arn": "arn:aws:ecs:us-east-1:000000000000:service/default/nope", "reason": "MISSING"}]
    assert "tags" not in cp("DescribeServices", services=["web"])["services"][0]
    for op, extra in (("UpdateService", {"desiredCount": 1}), ("DeleteService", {}), ("ListTasks", {})):
        key = "serviceName" if op == "ListTasks" else "service"
        e = cp.error(op, **{key: "nope"}, **extra)
        assert (e.code, e.message) == ("ServiceNotFoundException", "Service not found.")
    e = cp.error("DescribeServices", services=[f"s{i}" for i in range(11)])
    assert e.code == "InvalidParameterException"
    e = cp.error("DescribeServices", cluster="nope", services=["web"])
    assert (e.code, e.message) == ("ClusterNotFoundException", "Cluster not found.")


def test_list_services_pages_and_filters_by_launch_type(cp: ControlPlane) -> None:
    for i in range(12):
        cp.create(f"s{i:02d}")
    page = cp("ListServices")
    assert len(page["serviceArns"]) == 10 and page["nextToken"]
    rest = cp("ListServices", nextToken=page["nextToken"])
    assert [a.rsplit("/", 1)[-1] for a in page["serviceArns"] + rest["serviceArns"]] == [f"s{i:02d}" for i in range(12)]
    assert "nextToken" not in rest or rest["nextToken"] is None
    assert len(cp("ListServices", launchType="FARGATE", maxResults=100)["serviceArns"]) == 12
    assert cp("ListServices", launchType="EC2")["serviceArns"] == []


def test_bad_requests_get_invalid_parameter_texts(cp: ControlPlane) -> None:
    base = {"serviceName": "x", "taskDefinition": "web:1", "desiredCount": 1, "networkConfiguration": NETWORK}
    cases = [
        ({"serviceName": "bad name"}, "InvalidParameterException"),
        ({"taskDefinition": "nope:1"}, "ClientException"),
        ({"networkConfiguration": None}, "InvalidParameterException"),
        ({"launchType": "EC2"}, "InvalidParameterException"),
        ({"schedulingStrategy": "DAEMON"}, "InvalidParameterException"),
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "InvalidParameterException"),
        ({"deploymentConfiguration": {"maximumPercent": 50}}, "InvalidParameterException"),
        ({"deploymentConfiguration": {"minimumHealthyPercent": 101}}, "InvalidParameterException"),
        ({"platformVersion": "9.9.9"}, "PlatformUnknownException"),
        ({"clientToken": "x" * 37}, "InvalidParameterException"),
    ]
    for change, code in cases:
        params = {k: v for k, v in {**base, **change}.items() if v is not None}
        assert cp.error("CreateService", **params).code == code, change
