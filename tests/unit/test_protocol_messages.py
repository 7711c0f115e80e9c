"""The messages between control plane and agent survive JSON unchanged (the HTTP link of remote agents
will carry exactly what the in-process link carries), and hold nothing but JSON values."""
from __future__ import annotations

import json

from fargo.protocol.messages import (AgentHello, AssignmentBatch, AttachmentReport, ContainerReport, EniPlan,
                                     Lease, ReportAck, TaskAssignment, TaskReport, from_json, to_json)

ENI = EniPlan("att-1", "eni-0123456789abcdef0", "subnet-fargo-default-1a", "10.213.0.0/20", "us-east-1a",
              "10.213.0.4", "02:11:22:33:44:55", "ip-10-213-0-4.ec2.internal", ["sg-fargo-default"], False)
ASSIGNMENT = TaskAssignment(
    task_arn="arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef",
    cluster_arn="arn:aws:ecs:us-east-1:000000000000:cluster/default", generation=7, desired_status="STOPPED",
    platform_version="1.4.0", task_definition={"family": "web", "containerDefinitions": [{"name": "app"}]},
    overrides={"containerOverrides": [{"name": "app", "command": ["true"]}]}, cpu_units=256, memory_mib=512,
    eni=ENI, created_at=1764619200.5, ephemeral_storage_gib=20, stop_code="UserInitiated",
    stopped_reason="Task stopped by user")
REPORT = TaskReport(
    task_arn=ASSIGNMENT.task_arn, seq=12, known_status="STOPPED",
    containers=[ContainerReport("app", "0123456789abcdef0123456789abcdef-1234567890", "STOPPED", 137,
                                "OutOfMemoryError: Container killed due to memory usage", "UNHEALTHY", "sha256:ab")],
    attachment=AttachmentReport("att-1", "DELETED", [{"name": "subnetId", "value": "subnet-fargo-default-1a"}]),
    health_status="UNHEALTHY", desired_status="STOPPED", stop_code="EssentialContainerExited",
    stopped_reason="Essential container in task exited", connectivity="CONNECTED", connectivity_at=1.0,
    pull_started_at=2.0, pull_stopped_at=3.0, started_at=4.0, stopping_at=5.0, execution_stopped_at=6.0,
    stopped_at=7.0)


def test_every_message_round_trips_through_json_text() -> None:
    messages = [ENI, ASSIGNMENT, REPORT, AgentHello("embedded", ["us-east-1a"], "fargo-agent/2", 2048, 4096),
                Lease("embedded", 30.0), AssignmentBatch(8, [ASSIGNMENT], full=True), ReportAck({REPORT.task_arn: 12})]
    for message in messages:
        text = json.dumps(to_json(message))  # only JSON values inside: no shared objects can cross
        assert from_json(type(message), json.loads(text)) == message


def test_fields_a_newer_peer_adds_are_ignored_and_absent_optional_ones_default() -> None:
    data = to_json(REPORT)
    data["someFutureField"] = {"x": 1}
    for optional in ("stopped_at", "attachment", "stop_code"):
        del data[optional]
    report = from_json(TaskReport, data)
    assert report.stopped_at is None and report.attachment is None and report.stop_code is None
    assert report.containers == REPORT.containers
