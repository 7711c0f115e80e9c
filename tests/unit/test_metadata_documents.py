"""The metadata documents against Fargate's published v4 examples: keys, order, values; v3 and 1.3.0 cuts."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from fargo.agent.metadata.clock_drift import ClockDrift
from fargo.agent.metadata.documents import container_v3, container_v4, task_v3, task_v4, task_with_tags_v4
from fargo.agent.metadata.task_view import ContainerView, EniView, TaskView
from fargo.agent.metadata.timestamps import rfc3339_nano, rfc3339_seconds

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/MyEmptyCluster"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/MyEmptyCluster/bfa2636268144d039771334145e490c5"


def epoch(text: str) -> float:
    """The epoch of an example's timestamp, to microseconds (what a float holds)."""
    head, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return whole + int((fraction or "0")[:6].ljust(6, "0")) / 1e6


ENI = EniView(
    ip="172.31.42.189",
    mac="0e:98:9f:33:76:d3",
    subnet_cidr="172.31.32.0/20",
    gateway_cidr="172.31.32.1/20",
    private_dns_name="ip-172-31-42-189.ec2.internal",
    dns_servers=["172.31.0.2"],
    dns_search=["ec2.internal"],
)
CURL = ContainerView(
    name="curl-image",
    docker_id="bfa2636268144d039771334145e490c5-1117626119",
    image="curlimages/curl",
    image_id="sha256:daf3f46a2639c1613b25e85c9ee4193af8a1d538f92483d67f9a3d7f21721827",
    container_arn="arn:aws:ecs:us-east-1:123456789012:container/MyEmptyCluster/"
    "bfa2636268144d039771334145e490c5/da6cccf7-1178-400c-afdf-7536173ee209",
    desired_status="RUNNING",
    known_status="RUNNING",
    exit_code=None,
    cpu_units=128,
    memory_mib=None,
    created_at=epoch("2023-07-21T15:45:44.913683Z"),
    started_at=epoch("2023-07-21T15:45:44.913683Z"),
    finished_at=None,
    log_driver=None,
)
TASK = TaskView(
    task_arn=TASK_ARN,
    cluster_arn=CLUSTER,
    family="sample-fargate",
    revision="5",
    desired_status="RUNNING",
    known_status="RUNNING",
    cpu_vcpu=0.25,
    memory_mib=512,
    availability_zone="us-east-1d",
    platform_version="1.4.0",
    eni=ENI,
    containers=[CURL],
    pull_started_at=epoch("2023-07-21T15:45:33.532811Z"),
    pull_stopped_at=epoch("2023-07-21T15:45:38.541068Z"),
    ephemeral_storage_mib=(261, 20496),
)
CLOCK = ClockDrift(error_bound_ms=0.446931, reference_time=epoch("2023-07-21T16:09:17Z"), synchronized=True)

# Example 4b of the reference (Fargate docs), its timestamps cut to microseconds.
EXPECTED_TASK_V4 = json.loads("""{
  "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/MyEmptyCluster",
  "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/MyEmptyCluster/bfa2636268144d039771334145e490c5",
  "Family": "sample-fargate", "Revision": "5",
  "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
  "Limits": {"CPU": 0.25, "Memory": 512},
  "PullStartedAt": "2023-07-21T15:45:33.532811Z",
  "PullStoppedAt": "2023-07-21T15:45:38.541068Z",
  "AvailabilityZone": "us-east-1d",
  "Containers": [{
    "DockerId": "bfa2636268144d039771334145e490c5-1117626119",
    "Name": "curl-image", "DockerName": "curl-image",
    "Image": "curlimages/curl",
    "ImageID": "sha256:daf3f46a2639c1613b25e85c9ee4193af8a1d538f92483d67f9a3d7f21721827",
    "Labels": {
      "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/MyEmptyCluster",
      "com.amazonaws.ecs.container-name": "curl-image",
      "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:123456789012:task/MyEmptyCluster/bfa2636268144d039771334145e490c5",
      "com.amazonaws.ecs.task-definition-family": "sample-fargate",
      "com.amazonaws.ecs.task-definition-version": "5"
    },
    "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
    "Limits": {"CPU": 128},
    "CreatedAt": "2023-07-21T15:45:44.913683Z", "StartedAt": "2023-07-21T15:45:44.913683Z",
    "Type": "NORMAL",
    "Networks": [{
      "NetworkMode": "awsvpc", "IPv4Addresses": ["172.31.42.189"], "AttachmentIndex": 0,
      "MACAddress": "0e:98:9f:33:76:d3", "IPv4SubnetCIDRBlock": "172.31.32.0/20",
      "DomainNameServers": ["172.31.0.2"], "DomainNameSearchList": ["ec2.internal"],
      "PrivateDNSName": "ip-172-31-42-189.ec2.internal", "SubnetGatewayIpv4Address": "172.31.32.1/20"
    }],
    "ContainerARN": "arn:aws:ecs:us-east-1:123456789012:container/MyEmptyCluster/bfa2636268144d039771334145e490c5/da6cccf7-1178-400c-afdf-7536173ee209",
    "Snapshotter": "overlayfs"
  }],
  "LaunchType": "FARGATE",
  "ClockDrift": {"ClockErrorBound": 0.446931, "ReferenceTimestamp": "2023-07-21T16:09:17Z",
                 "ClockSynchronizationStatus": "SYNCHRONIZED"},
  "EphemeralStorageMetrics": {"Utilized": 261, "Reserved": 20496}
}""")


def keys_in_order(value: object) -> object:
    """The document's keys, nested, in order: equal only if both key sets and orders match."""
    if isinstance(value, dict):
        return [(key, keys_in_order(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [keys_in_order(item) for item in value]
    return None


def test_task_v4_matches_the_fargate_example_in_keys_order_and_values() -> None:
    document = task_v4(TASK, CLOCK)
    assert document == EXPECTED_TASK_V4
    assert keys_in_order(document) == keys_in_order(EXPECTED_TASK_V4)


def test_container_v4_is_the_task_documents_entry_and_matches_example_4a_order() -> None:
    awslogs = {"awslogs-create-group": "true", "awslogs-group": "/ecs/containerlogs"}
    container = replace(CURL, log_driver="awslogs", log_options=awslogs, memory_mib=128)
    document = container_v4(TASK, container)
    assert list(document) == [
        "DockerId", "Name", "DockerName", "Image", "ImageID", "Labels", "DesiredStatus", "KnownStatus",
        "Limits", "CreatedAt", "StartedAt", "Type", "Networks", "ContainerARN", "LogOptions", "LogDriver",
        "Snapshotter",
    ]  # fmt: skip
    assert document["Limits"] == {"CPU": 128, "Memory": 128}
    assert document["LogOptions"] == awslogs and document["LogDriver"] == "awslogs"
    assert container_v4(TASK, CURL) == EXPECTED_TASK_V4["Containers"][0]


def test_v3_leaves_out_the_v4_only_keys_and_cuts_networks_to_mode_and_addresses() -> None:
    expected = {k: v for k, v in EXPECTED_TASK_V4.items() if k not in ("ClockDrift", "EphemeralStorageMetrics")}
    expected_container = {k: v for k, v in EXPECTED_TASK_V4["Containers"][0].items() if k != "Snapshotter"}
    expected_container["Networks"] = [{"NetworkMode": "awsvpc", "IPv4Addresses": ["172.31.42.189"]}]
    expected["Containers"] = [expected_container]
    assert task_v3(TASK) == expected
    assert keys_in_order(task_v3(TASK)) == keys_in_order(expected)
    assert container_v3(TASK, CURL) == expected_container


def test_platform_1_3_0_shows_no_availability_zone_nor_ephemeral_storage() -> None:
    older = replace(TASK, platform_version="1.3.0")
    for document in (task_v4(older, CLOCK), task_v3(older)):
        assert "AvailabilityZone" not in document and "EphemeralStorageMetrics" not in document
    assert "ClockDrift" in task_v4(older, CLOCK)
    assert task_v4(replace(TASK, platform_version="LATEST"))["AvailabilityZone"] == "us-east-1d"


def test_unknown_clock_and_storage_leave_their_keys_out() -> None:
    document = task_v4(replace(TASK, ephemeral_storage_mib=None))
    assert "ClockDrift" not in document and "EphemeralStorageMetrics" not in document
    unsynced = task_v4(TASK, replace(CLOCK, synchronized=False))
    assert unsynced["ClockDrift"]["ClockSynchronizationStatus"] == "NOT_SYNCHRONIZED"


def test_a_stopped_container_shows_exit_code_finished_at_and_health() -> None:
    health = {"status": "UNHEALTHY", "statusSince": "2023-07-21T15:46:00Z", "exitCode": 1, "output": "no"}
    stopped = replace(
        CURL, known_status="STOPPED", exit_code=137, finished_at=epoch("2023-07-21T15:50:00.5Z"), health=health
    )
    document = container_v4(TASK, stopped)
    keys = list(document)
    assert keys.index("KnownStatus") + 1 == keys.index("ExitCode") and document["ExitCode"] == 137
    assert keys.index("StartedAt") + 1 == keys.index("FinishedAt")
    assert document["FinishedAt"] == "2023-07-21T15:50:00.5Z"
    assert document["Health"] == health and keys.index("Networks") < keys.index("Health")
    assert "ExitCode" not in container_v4(TASK, CURL) and "FinishedAt" not in container_v4(TASK, CURL)


def test_a_container_not_started_yet_has_no_timestamps_nor_image_id() -> None:
    pending = replace(CURL, known_status="PENDING", image_id=None, created_at=None, started_at=None)
    document = container_v4(TASK, pending)
    assert not {"CreatedAt", "StartedAt", "FinishedAt", "ImageID"} & set(document)


def test_task_with_tags_adds_task_tags_after_the_zone() -> None:
    tagged = replace(TASK, tags=[{"key": "team", "value": "infra"}])
    document = task_with_tags_v4(tagged, CLOCK)
    assert document["TaskTags"] == {"team": "infra"}
    keys = list(document)
    assert keys.index("AvailabilityZone") + 1 == keys.index("TaskTags")
    assert "TaskTags" not in task_v4(tagged, CLOCK)


def test_timestamps_are_go_rfc3339_nano_in_utc() -> None:
    assert rfc3339_nano(epoch("2020-10-08T20:09:11.445271Z")) == "2020-10-08T20:09:11.445271Z"
    assert rfc3339_nano(epoch("2020-10-08T20:09:11.4Z")) == "2020-10-08T20:09:11.4Z"
    assert rfc3339_nano(1_600_000_000.0) == "2020-09-13T12:26:40Z"
    assert rfc3339_seconds(1_600_000_000.9) == "2020-09-13T12:26:40Z"
