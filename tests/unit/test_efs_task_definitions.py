"""EFS in ECS: what RegisterTaskDefinition refuses and fills in for efsVolumeConfiguration, and what RunTask
hands the agent for each EFS volume (through the store, as a remote agent would get it)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fargo.config import Config
from fargo.control.agent_gateway import InProcessControlPlane
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.efs.efs import Efs
from fargo.control.task_definitions.registration import register_task_definition_document
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.control.tasks import EMBEDDED_AGENT_ID, Tasks
from fargo.control.vpcs.network import Network
from fargo.errors import ClientException, PlatformTaskDefinitionIncompatibilityException
from fargo.protocol import stop_reasons
from fargo.store.database import Store

SUBNET_A, SUBNET_B = "subnet-fargo-default-1a", "subnet-fargo-default-1b"


def request(*volumes: dict) -> dict:
    return {"family": "efs", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256",
            "memory": "512", "volumes": list(volumes),
            "containerDefinitions": [{"name": "app", "image": "busybox", "mountPoints": [
                {"sourceVolume": v["name"], "containerPath": f"/mnt/{v['name']}"} for v in volumes]}]}


def register(*volumes: dict) -> dict:
    return register_task_definition_document(request(*volumes), family_revision=1, account_id="000000000000",
                                             region="us-east-1", registered_at=0.0, registered_by=None)


def refusal(*volumes: dict) -> str:
    with pytest.raises(ClientException) as e:
        register(*volumes)
    return e.value.message


def efs(**config: Any) -> dict:
    return {"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-0123456789abcdef0", **config}}


# --- registration --------------------------------------------------------------------------------------

def test_a_volume_with_two_configuration_types_is_refused_in_awss_words() -> None:
    both = {**efs(), "dockerVolumeConfiguration": {"scope": "task"}}
    assert refusal(both) == "When the volume parameter is specified, only one volume configuration type should be used."
    assert register({**efs(), "host": {}})["volumes"][0]["efsVolumeConfiguration"]["rootDirectory"] == "/"


@pytest.mark.parametrize("root", ["/data", "data"])
def test_an_access_point_takes_no_root_directory_but_slash(root: str) -> None:
    message = refusal(efs(rootDirectory=root, transitEncryption="ENABLED",
                          authorizationConfig={"accessPointId": "fsap-0123456789abcdef0"}))
    assert message == 'When using an EFS access point, the root directory must either be set to "/" or be omitted.'


@pytest.mark.parametrize("authorization", [{"accessPointId": "fsap-0123456789abcdef0"}, {"iam": "ENABLED"}])
@pytest.mark.parametrize("encryption", [{}, {"transitEncryption": "DISABLED"}])
def test_an_access_point_or_iam_needs_transit_encryption(authorization: dict, encryption: dict) -> None:
    assert "'transitEncryption' must be ENABLED" in refusal(efs(authorizationConfig=authorization, **encryption))


@pytest.mark.parametrize("config", [{"transitEncryption": "on"}, {"authorizationConfig": {"iam": "yes"}},
                                    {"transitEncryptionPort": 0}, {"transitEncryptionPort": 70000},
                                    {"fileSystemId": ""}])
def test_values_outside_the_models_sets_are_refused(config: dict) -> None:
    assert refusal(efs(**config)).startswith("Invalid EFS configuration for volume 'shared'.")


def test_a_described_efs_volume_has_the_root_directory_aws_fills_in() -> None:
    described = register(efs(transitEncryption="ENABLED", transitEncryptionPort=20049,
                             authorizationConfig={"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"}))
    assert list(described["volumes"][0]["efsVolumeConfiguration"].items()) == [
        ("fileSystemId", "fs-0123456789abcdef0"), ("rootDirectory", "/"), ("transitEncryption", "ENABLED"),
        ("transitEncryptionPort", 20049),
        ("authorizationConfig", {"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"})]
    assert register(efs(rootDirectory="/x"))["volumes"][0]["efsVolumeConfiguration"]["rootDirectory"] == "/x"


# --- RunTask ---------------------------------------------------------------------------------------------

class Fargo:
    """Control plane on a SQLite store: EFS and EC2 handlers, task definitions, RunTask, the agent gateway."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
        self.store.migrate()
        self.ctx = ControlContext(Config(data_dir=tmp_path), self.store)
        clusters = Clusters(self.ctx)
        clusters.create(None, None, None)
        self.registry = TaskDefinitionRegistry(self.ctx)
        self.network = Network(self.ctx)
        self.network.ensure_default()
        self.handlers = {**self.network.handlers(), **Efs(self.ctx).handlers()}
        self.tasks = Tasks(self.ctx, clusters, self.registry, self.network)

    def __call__(self, operation: str, **params: Any) -> dict:
        return asyncio.run(self.handlers[operation](params))

    def definition(self, **config: Any) -> str:
        return self.registry.register(request(efs(**config)))["taskDefinition"]["taskDefinitionArn"]

    def run(self, td: str, subnet: str = SUBNET_A, **extra: Any) -> Any:
        """The assignment the agent gets for a new task."""
        async def go() -> Any:
            task = (await self.tasks.run_task({"taskDefinition": td, "networkConfiguration": {
                "awsvpcConfiguration": {"subnets": [subnet], **extra}}}))["tasks"][0]
            gateway = InProcessControlPlane(self.ctx, self.tasks, self.network, poll_seconds=0.05)
            batch = await gateway.assignments(EMBEDDED_AGENT_ID, None, timeout=0)
            return next(a for a in batch.assignments if a.task_arn == task["taskArn"])
        return asyncio.run(go())


def test_run_task_hands_the_agent_each_efs_volume_resolved(tmp_path: Path) -> None:
    f = Fargo(tmp_path)
    fs = f("CreateFileSystem", CreationToken="t")["FileSystemId"]
    mt = f("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A)
    ap = f("CreateAccessPoint", ClientToken="c", FileSystemId=fs, PosixUser={"Uid": 7, "Gid": 8},
           RootDirectory={"Path": "/p"})["AccessPointId"]
    whole = f.run(f.definition(fileSystemId=fs, rootDirectory="/sub"))
    (plan,) = whole.efs_volumes
    assert (plan.volume_name, plan.file_system_id, plan.root_directory) == ("shared", fs, "/sub")
    assert (plan.mount_target_id, plan.mount_target_ip, plan.blocked, plan.failure) == (
        mt["MountTargetId"], mt["IpAddress"], False, None)
    (through_ap,) = f.run(f.definition(fileSystemId=fs, transitEncryption="ENABLED",
                                       authorizationConfig={"accessPointId": ap})).efs_volumes
    assert through_ap.access_point is not None and (through_ap.access_point.path, through_ap.access_point.posix_uid,
                                                    through_ap.access_point.posix_gid) == ("/p", 7, 8)
    (elsewhere,) = f.run(f.definition(fileSystemId=fs), subnet=SUBNET_B).efs_volumes
    assert elsewhere.failure == stop_reasons.efs_unresolvable(fs, "us-east-1")


def test_run_task_marks_a_volume_blocked_until_a_rule_lets_nfs_in(tmp_path: Path) -> None:
    f = Fargo(tmp_path)
    closed = f("CreateSecurityGroup", GroupName="closed", Description="no ingress", VpcId="vpc-fargo-default")
    fs = f("CreateFileSystem", CreationToken="t")["FileSystemId"]
    f("CreateMountTarget", FileSystemId=fs, SubnetId=SUBNET_A, SecurityGroups=[closed["GroupId"]])
    td = f.definition(fileSystemId=fs)
    assert f.run(td).efs_volumes[0].blocked
    f("AuthorizeSecurityGroupIngress", GroupId=closed["GroupId"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-fargo-default"}]}])
    assert not f.run(td).efs_volumes[0].blocked


def test_run_task_of_an_efs_definition_on_platform_1_3_0_is_refused(tmp_path: Path) -> None:
    f = Fargo(tmp_path)
    td = f.definition()
    with pytest.raises(PlatformTaskDefinitionIncompatibilityException) as e:
        asyncio.run(f.tasks.run_task({"taskDefinition": td, "platformVersion": "1.3.0", "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": [SUBNET_A]}}}))
    assert e.value.message == "One or more of the requested capabilities are not supported."
