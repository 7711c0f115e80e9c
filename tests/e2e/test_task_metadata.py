"""The task metadata endpoint v4/v3 and container credentials, asked from inside real tasks (busybox nc: its
static wget crashes) and by real clients run in a task's network namespace: botocore's ContainerProvider and
OpenTelemetry's AwsEcsResourceDetector. Only Fargo's own namespaces carry the traffic.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.e2e.conftest import FARGO, REPO, SHARED_PREFIX, TEST_IMAGE, FargoProcess, wait_for_task

SUBNET = "subnet-fargo-default-1b"
ROLE = "arn:aws:iam::000000000000:role/e2e-task-role"
# Prints the body of GET <path> (a path below the container's endpoint, or an absolute one) between markers.
# (stdin stays open a while: aiohttp drops a connection whose client half-closes before the answer, as nc does)
GET = ("get() { { printf 'GET %s HTTP/1.0\\r\\n\\r\\n' \"$1\"; sleep 3; } | nc -w 3 169.254.170.2 80 "
       "| sed '1,/^\\r*$/d'; echo; echo '<<end>>'; }; ")


def register(ecs, family: str, command: str, **extra) -> str:  # noqa: ANN001
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="512", memory="1024",
        containerDefinitions=[{"name": "app", "image": TEST_IMAGE, "essential": True, "stopTimeout": 2,
                               "command": ["sh", "-c", GET + command]}], **extra)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, family: str, command: str, platform: str = "1.4.0", **extra) -> dict:  # noqa: ANN001
    td = register(ecs, family, command, **extra)
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", platformVersion=platform,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [SUBNET]}})
    assert out["failures"] == []
    return out["tasks"][0]


def logs(f: FargoProcess, task: dict) -> str:
    return subprocess.run(FARGO + ["logs", task["taskArn"].rsplit("/", 1)[-1], "--endpoint", f.endpoint],
                          capture_output=True, text=True, check=True, cwd=REPO).stdout


def bodies(text: str) -> list[str]:
    return [part.strip() for part in text.split("<<end>>")[:-1]]


def finished(ecs, task: dict) -> dict:  # noqa: ANN001
    return wait_for_task(ecs, task["taskArn"], "STOPPED", 60)


def test_v4_container_and_task_metadata_from_inside_a_task(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-meta-v4", 'dd if=/dev/zero of=/written bs=1M count=3 2>/dev/null; sleep 1; get "${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}"; '
                                    'get "${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}/task"')
    done = finished(ecs, task)
    assert done["containers"][0]["exitCode"] == 0, logs(runner_fargo, task)
    container, whole = (json.loads(b) for b in bodies(logs(runner_fargo, task)))
    runtime_id = done["containers"][0]["runtimeId"]
    assert container["DockerId"] == runtime_id and container["Name"] == container["DockerName"] == "app"
    assert container["ContainerARN"] == done["containers"][0]["containerArn"]
    assert container["Labels"]["com.amazonaws.ecs.task-arn"] == task["taskArn"]
    assert container["Type"] == "NORMAL" and container["KnownStatus"] == "RUNNING"
    (network,) = container["Networks"]
    assert network["IPv4Addresses"] == [done["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]]
    assert network["SubnetGatewayIpv4Address"] == "10.213.16.1/20"
    assert network["IPv4SubnetCIDRBlock"] == "10.213.16.0/20"
    assert network["DomainNameServers"] == ["10.213.0.2"]
    assert whole["TaskARN"] == task["taskArn"] and whole["Cluster"] == task["clusterArn"]
    assert whole["Family"] == "e2e-meta-v4" and isinstance(whole["Revision"], str)
    assert whole["LaunchType"] == "FARGATE" and whole["AvailabilityZone"] == "us-east-1b"
    assert whole["Limits"] == {"CPU": 0.5, "Memory": 1024}
    assert [c["DockerId"] for c in whole["Containers"]] == [runtime_id]
    assert "ClockDrift" in whole
    storage = whole["EphemeralStorageMetrics"]
    assert storage["Reserved"] == 20 * 1024 and isinstance(storage["Utilized"], int)


def test_task_stats_have_network_counters_that_grow_with_traffic(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    path = '"${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}/task/stats"'
    task = run(ecs, "e2e-meta-stats",
               f"sleep 2; get {path}; for i in $(seq 1 30); do nslookup ip-10-213-0-9.ec2.internal >/dev/null; done; "
               f"sleep 2; get {path}")
    done = finished(ecs, task)
    first, second = (json.loads(b) for b in bodies(logs(runner_fargo, task)))
    runtime_id = done["containers"][0]["runtimeId"]
    assert list(first) == [runtime_id]
    before, after = first[runtime_id], second[runtime_id]
    for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "blkio_stats", "networks"):
        assert key in after, key
    assert after["networks"]["eth1"]["tx_bytes"] > before["networks"]["eth1"]["tx_bytes"]
    assert after["networks"]["eth1"]["rx_packets"] > before["networks"]["eth1"]["rx_packets"]
    assert "network_rate_stats" in after
    assert after["cpu_stats"]["cpu_usage"]["total_usage"] >= before["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert after["memory_stats"]["usage"] > 0


def test_platform_1_3_0_has_v3_only(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-meta-v3", 'echo "v4=${ECS_CONTAINER_METADATA_URI_V4:-none}"; '
                                    'get "${ECS_CONTAINER_METADATA_URI#http://169.254.170.2}/task"', platform="1.3.0")
    finished(ecs, task)
    out = logs(runner_fargo, task)
    assert "v4=none" in out
    whole = json.loads(bodies(out.split("\n", 1)[1])[0])
    assert whole["TaskARN"] == task["taskArn"]
    assert "AvailabilityZone" not in whole and "ClockDrift" not in whole and "EphemeralStorageMetrics" not in whole
    assert set(whole["Containers"][0]["Networks"][0]) <= {"NetworkMode", "IPv4Addresses", "IPv6Addresses"}


def test_unknown_ids_trailing_slashes_and_another_tasks_id(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    other = run(ecs, "e2e-meta-owner", "sleep 3600")
    other_id = wait_for_task(ecs, other["taskArn"], "RUNNING")["containers"][0]["runtimeId"]
    try:
        task = run(ecs, "e2e-meta-errors", f'get /v4/bad; get "${{ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}}/"; '
                                           f"get /v4/{other_id}/task")
        finished(ecs, task)
        unknown, slash, foreign = bodies(logs(runner_fargo, task))
        assert json.loads(unknown) == ("V4 container metadata handler: unable to get container ID from request: "
                                       "unable to get docker ID from v3 endpoint ID: bad")
        assert slash == "404 page not found"
        assert json.loads(foreign).startswith("V4 task metadata handler: unable to get task arn from request")
    finally:
        ecs.stop_task(task=other["taskArn"])


def printed_uri(f: FargoProcess, task: dict) -> str:
    """The value the task's command printed as `uri=...` once it runs."""
    wait_for_task(f.client("ecs"), task["taskArn"], "RUNNING")
    deadline = time.monotonic() + 10
    while "uri=" not in logs(f, task) and time.monotonic() < deadline:
        time.sleep(0.1)
    return logs(f, task).split("uri=", 1)[1].split()[0]


def _in_task_netns(task_arn: str, code: str, env: dict[str, str]) -> str:
    netns = f"{SHARED_PREFIX}-" + task_arn.rsplit("/", 1)[-1]
    proc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_botocore_container_provider_gets_the_task_role_credentials_in_the_task_namespace(
        runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-meta-creds", 'echo "uri=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; sleep 3600',
               taskRoleArn=ROLE)
    try:
        uri = printed_uri(runner_fargo, task)
        assert uri.startswith("/v2/credentials/")
        code = ("from botocore.credentials import ContainerProvider\n"
                "c = ContainerProvider().load()\n"
                "f = c.get_frozen_credentials()\n"
                "print(c.method, f.access_key[:4], len(f.secret_key), bool(f.token))\n")
        out = _in_task_netns(task["taskArn"], code, {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": uri})
        assert out.split() == ["container-role", "ASIA", "40", "True"]
    finally:
        ecs.stop_task(task=task["taskArn"])


def test_opentelemetry_ecs_resource_detector_reads_the_task(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-meta-otel", 'echo "uri=$ECS_CONTAINER_METADATA_URI_V4"; sleep 3600')
    try:
        uri = printed_uri(runner_fargo, task)
        code = ("import json\n"
                "from opentelemetry.sdk.extension.aws.resource.ecs import AwsEcsResourceDetector\n"
                "r = AwsEcsResourceDetector(raise_on_error=True).detect()\n"
                "print(json.dumps(dict(r.attributes)))\n")
        attrs = json.loads(_in_task_netns(task["taskArn"], code, {"ECS_CONTAINER_METADATA_URI_V4": uri}))
        assert attrs["cloud.platform"] == "aws_ecs" and attrs["aws.ecs.launchtype"] == "fargate"
        assert attrs["aws.ecs.task.arn"] == task["taskArn"]
        assert attrs["aws.ecs.cluster.arn"] == task["clusterArn"]
        assert attrs["aws.ecs.task.family"] == "e2e-meta-otel"
    finally:
        ecs.stop_task(task=task["taskArn"])
