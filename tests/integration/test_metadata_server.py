"""The metadata endpoint on real sockets: served inside test network namespaces, asked from inside them.

Each test VPC is a namespace whose lo is up and holds 169.254.170.2 and task addresses; clients are sockets
born in that namespace and bound to a task address, so the server sees the source a task would have. The
namespaces carry a test-unique name and are removed at the end, even on failure.
"""
from __future__ import annotations

import http.client
import json
import secrets
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from botocore.credentials import ContainerProvider

from fargo.agent.metadata import documents, messages
from fargo.agent.metadata.credentials import TaskCredentials
from fargo.agent.metadata.server import METADATA_ADDRESS, MetadataServer, MetadataTask
from fargo.agent.metadata.task_view import ContainerView, EniView, TaskView
from fargo.network.netns import create_netns, remove_netns, run_in_netns
from fargo.network.rtnl import rtnl_over
from tests.integration.conftest import EventLoopThread

T = TypeVar("T")
_LOOPBACK_IFINDEX = 1
_LOCAL_TABLE = 255
TASK_HOST, STRANGER_HOST, FLOOD_HOST = 5, 6, 8
TASK_HEX = secrets.token_hex(16)
APP_ID = f"{TASK_HEX}-1111111111"
SIDECAR_ID = f"{TASK_HEX}-2222222222"
ROLE = "arn:aws:iam::123456789012:role/app"
APP_STATS = {"read": "2020-10-08T21:24:44.938937019Z", "name": "app", "id": APP_ID, "num_procs": 0}


@dataclass(frozen=True)
class VpcUnderTest:
    vpc_id: str
    netns_path: str
    octet: int

    def ip(self, host: int) -> str:
        return f"10.{self.octet}.0.{host}"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str | None
    body: bytes
    location: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


def make_vpc_netns(name: str, vpc_id: str, octet: int) -> VpcUnderTest:
    """A namespace whose lo is up and holds the endpoint address and a few task addresses."""
    ns = create_netns(name)
    vpc = VpcUnderTest(vpc_id, ns.path, octet)
    try:
        with rtnl_over(ns.netlink) as ipr:
            ipr.link("set", index=_LOOPBACK_IFINDEX, state="up")
            for address in (METADATA_ADDRESS, *(vpc.ip(host) for host in (TASK_HOST, STRANGER_HOST, FLOOD_HOST))):
                ipr.addr("add", index=_LOOPBACK_IFINDEX, address=address, prefixlen=32)
            # Unbound clients (botocore) then leave from the task's address, as they would from its netns.
            ipr.route(
                "replace", dst=f"{METADATA_ADDRESS}/32", table=_LOCAL_TABLE, type="local", scope="host",
                proto="kernel", oif=_LOOPBACK_IFINDEX, prefsrc=vpc.ip(TASK_HOST),
            )  # fmt: skip
    finally:
        ns.close()
    return vpc


def container(name: str, docker_id: str) -> ContainerView:
    return ContainerView(
        name=name, docker_id=docker_id, image="busybox", image_id="sha256:" + "ab" * 32,
        container_arn=f"arn:aws:ecs:us-east-1:123456789012:container/c/{TASK_HEX}/{name}",
        desired_status="RUNNING", known_status="RUNNING", exit_code=None, cpu_units=128, memory_mib=256,
        created_at=1_700_000_000.123, started_at=1_700_000_001.5, finished_at=None, log_driver=None,
    )  # fmt: skip


def task_view(vpc: VpcUnderTest) -> TaskView:
    eni = EniView(
        ip=vpc.ip(TASK_HOST), mac="0e:00:00:00:00:05", subnet_cidr=f"10.{vpc.octet}.0.0/24",
        gateway_cidr=f"10.{vpc.octet}.0.1/24", private_dns_name=f"ip-10-{vpc.octet}-0-5.ec2.internal",
        dns_servers=[f"10.{vpc.octet}.0.2"], dns_search=["ec2.internal"],
    )  # fmt: skip
    return TaskView(
        task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/c/{TASK_HEX}",
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/c", family="web", revision="3",
        desired_status="RUNNING", known_status="RUNNING", cpu_vcpu=0.5, memory_mib=1024,
        availability_zone="us-east-1a", platform_version="1.4.0", eni=eni,
        containers=[container("app", APP_ID), container("sidecar", SIDECAR_ID)],
        pull_started_at=1_700_000_000.0, ephemeral_storage_mib=(10, 20496),
        tags=[{"key": "team", "value": "infra"}],
    )  # fmt: skip


@dataclass
class Endpoint:
    loop: EventLoopThread
    server: MetadataServer
    credentials: TaskCredentials
    vpc: VpcUnderTest
    other_vpc: VpcUnderTest
    credentials_id: str
    task: MetadataTask

    def get(self, path: str, host: int = TASK_HOST, vpc: VpcUnderTest | None = None, port: int = 80) -> Reply:
        return ask(vpc or self.vpc, host, [path], port)[0]


def ask(vpc: VpcUnderTest, host: int, paths: list[str], port: int = 80) -> list[Reply]:
    """GET each path in turn on one keep-alive connection from `vpc`'s namespace, leaving from host `host`."""

    def exchange() -> list[Reply]:
        connection = http.client.HTTPConnection(METADATA_ADDRESS, port, timeout=5, source_address=(vpc.ip(host), 0))
        try:
            replies = []
            for path in paths:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                replies.append(Reply(response.status, response.getheader("Content-Type"), body, response.getheader("Location")))
            return replies
        finally:
            connection.close()

    return run_in_netns(vpc.netns_path, exchange)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    suffix = secrets.token_hex(3)
    names = [f"fgmd-{suffix}-{n}" for n in range(2)]
    loop: EventLoopThread | None = None
    server: MetadataServer | None = None
    try:
        # Both VPCs hold the same task addresses: only the listener tells them apart.
        octet = 100 + secrets.randbelow(100)
        vpc, other = (make_vpc_netns(name, f"vpc-md{suffix}{n}", octet) for n, name in enumerate(names))
        loop = EventLoopThread()
        credentials = TaskCredentials()
        server = MetadataServer(credentials)
        credentials_id = credentials.issue("task-1", ROLE)
        task = MetadataTask(
            task_id="task-1", vpc_id=vpc.vpc_id, ip=vpc.ip(TASK_HOST),
            endpoint_ids={APP_ID: "app", SIDECAR_ID: "sidecar"}, view=lambda: task_view(vpc),
            stats=lambda docker_id, version: dict(APP_STATS) if docker_id == APP_ID else None,
            credentials_id=credentials_id,
        )  # fmt: skip
        server.register(task)
        loop.run(server.serve(vpc.vpc_id, vpc.netns_path))
        loop.run(server.serve(other.vpc_id, other.netns_path))
        yield Endpoint(loop, server, credentials, vpc, other, credentials_id, task)
    finally:
        if server is not None and loop is not None:
            loop.run(server.close())
        if loop is not None:
            loop.close()
        for name in names:
            remove_netns(name)


def without_clock(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "ClockDrift"}


JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def test_v4_container_and_task_documents_are_served_to_their_task(endpoint: Endpoint) -> None:
    view = task_view(endpoint.vpc)
    reply = endpoint.get(f"/v4/{APP_ID}")
    assert (reply.status, reply.content_type) == (200, JSON)
    assert reply.json() == documents.container_v4(view, view.containers[0])
    assert endpoint.get(f"/v4/{SIDECAR_ID}").json()["Name"] == "sidecar"
    task = endpoint.get(f"/v4/{APP_ID}/task")
    assert (task.status, task.content_type) == (200, JSON)
    assert without_clock(task.json()) == without_clock(documents.task_v4(view))
    assert set(task.json()["ClockDrift"]) == {"ClockErrorBound", "ReferenceTimestamp", "ClockSynchronizationStatus"}
    tagged = endpoint.get(f"/v4/{APP_ID}/taskWithTags").json()
    assert tagged["TaskTags"] == {"team": "infra"}


def test_v3_documents_are_the_v3_shape(endpoint: Endpoint) -> None:
    view = task_view(endpoint.vpc)
    assert endpoint.get(f"/v3/{APP_ID}").json() == documents.container_v3(view, view.containers[0])
    assert endpoint.get(f"/v3/{APP_ID}/task").json() == documents.task_v3(view)


def test_stats_come_from_the_collector_and_task_stats_map_every_container(endpoint: Endpoint) -> None:
    assert endpoint.get(f"/v4/{APP_ID}/stats").json() == APP_STATS
    assert endpoint.get(f"/v4/{APP_ID}/task/stats").json() == {APP_ID: APP_STATS, SIDECAR_ID: {}}
    assert endpoint.get(f"/v3/{APP_ID}/task/stats").json() == {APP_ID: APP_STATS, SIDECAR_ID: None}
    no_stats = messages.CONTAINER_STATS_UNAVAILABLE.format(docker_id=SIDECAR_ID)
    assert (endpoint.get(f"/v4/{SIDECAR_ID}/stats").status, endpoint.get(f"/v4/{SIDECAR_ID}/stats").json()) == (
        500,
        no_stats,
    )
    assert endpoint.get(f"/v3/{SIDECAR_ID}/stats").status == 400


UNKNOWN_ID_ANSWERS = [
    ("/v4/{id}", 404, messages.V4_CONTAINER_NOT_FOUND),
    ("/v4/{id}/task", 404, messages.V4_TASK_NOT_FOUND),
    ("/v4/{id}/taskWithTags", 404, messages.V4_TASK_NOT_FOUND),
    ("/v4/{id}/stats", 404, messages.V4_CONTAINER_STATS_TASK_NOT_FOUND),
    ("/v4/{id}/task/stats", 404, messages.V4_TASK_STATS_NOT_FOUND),
    ("/v3/{id}", 500, messages.V3_CONTAINER_NOT_FOUND),
    ("/v3/{id}/task", 500, messages.V3_TASK_NOT_FOUND),
    ("/v3/{id}/stats", 400, messages.V3_CONTAINER_STATS_TASK_NOT_FOUND),
    ("/v3/{id}/task/stats", 400, messages.V3_TASK_STATS_NOT_FOUND),
]


def test_unknown_ids_get_the_agents_exact_errors(endpoint: Endpoint) -> None:
    replies = ask(endpoint.vpc, TASK_HOST, [path.format(id="bad") for path, _, _ in UNKNOWN_ID_ANSWERS])
    for reply, (path, status, message) in zip(replies, UNKNOWN_ID_ANSWERS):
        assert (reply.status, reply.content_type, reply.body) == (status, JSON, json.dumps(message.format(id="bad")).encode()), path
    assert endpoint.get("/v4/bad").body == (
        b'"V4 container metadata handler: unable to get container ID from request: '
        b'unable to get docker ID from v3 endpoint ID: bad"'
    )
    empty = endpoint.get("/v4/")
    assert (empty.status, empty.json()) == (404, messages.V4_CONTAINER_NOT_FOUND.format(id=""))


def test_an_id_asked_from_another_address_or_vpc_reads_as_unknown(endpoint: Endpoint) -> None:
    for path, status, message in UNKNOWN_ID_ANSWERS:
        for reply in (
            endpoint.get(path.format(id=APP_ID), host=STRANGER_HOST),
            endpoint.get(path.format(id=APP_ID), vpc=endpoint.other_vpc),
        ):
            assert (reply.status, reply.json()) == (status, message.format(id=APP_ID)), path


@pytest.mark.parametrize(
    "path", ["/v4/{id}/", "/v4/{id}/wrong-path", "/v4/{id}/task/", "/v4/{id}/task/stats/", "/api/{id}/x", "/"]
)
def test_unrouted_paths_get_go_plain_text_404(endpoint: Endpoint, path: str) -> None:
    reply = endpoint.get(path.format(id=APP_ID))
    assert (reply.status, reply.content_type, reply.body) == (404, TEXT, b"404 page not found\n")


def test_credentials_are_served_to_their_task_only(endpoint: Endpoint) -> None:
    expected = endpoint.credentials.get(endpoint.credentials_id)
    for path in (f"/v2/credentials/{endpoint.credentials_id}", f"/v1/credentials?id={endpoint.credentials_id}"):
        reply = endpoint.get(path)
        assert (reply.status, reply.content_type, reply.json()) == (200, JSON, expected)
        assert list(reply.json()) == ["RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
    not_found = {"code": "InvalidIdInRequest", "message": "CredentialsV2Request: Credentials not found", "HTTPErrorCode": 400}
    for reply in (
        endpoint.get("/v2/credentials/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12),
        endpoint.get(f"/v2/credentials/{endpoint.credentials_id}", host=STRANGER_HOST),
        endpoint.get(f"/v2/credentials/{endpoint.credentials_id}", vpc=endpoint.other_vpc),
    ):
        assert (reply.status, reply.content_type, reply.json()) == (400, JSON, not_found)
    assert endpoint.get("/v2/credentials/x").body == (
        b'{"code":"InvalidIdInRequest","message":"CredentialsV2Request: Credentials not found","HTTPErrorCode":400}'
    )
    no_id = endpoint.get("/v2/credentials/")
    assert (no_id.status, no_id.json()["code"]) == (400, "NoIdInRequest")
    no_id_v1 = endpoint.get("/v1/credentials")
    assert no_id_v1.json() == {
        "code": "NoIdInRequest", "message": "CredentialsV1Request: No Credential ID in the request", "HTTPErrorCode": 400,
    }  # fmt: skip


def test_unclean_paths_are_redirected_to_the_cleaned_path(endpoint: Endpoint) -> None:
    reply = endpoint.get(f"//v2/credentials/{endpoint.credentials_id}")
    assert (reply.status, reply.location) == (301, f"/v2/credentials/{endpoint.credentials_id}")


def test_botocore_container_provider_loads_the_task_role_credentials(endpoint: Endpoint) -> None:
    expected = endpoint.credentials.get(endpoint.credentials_id)
    assert expected is not None
    environ = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": f"/v2/credentials/{endpoint.credentials_id}"}

    def load() -> Any:
        loaded = ContainerProvider(environ=environ).load()
        return loaded.method, loaded.get_frozen_credentials()

    method, frozen = run_in_netns(endpoint.vpc.netns_path, load)
    assert method == "container-role"
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        expected["AccessKeyId"],
        expected["SecretAccessKey"],
        expected["Token"],
    )


def test_a_caller_past_the_burst_gets_429_then_the_steady_rate(endpoint: Endpoint) -> None:
    started = time.monotonic()
    replies = ask(endpoint.vpc, FLOOD_HOST, ["/v4/bad"] * 100)
    elapsed = time.monotonic() - started
    statuses = [reply.status for reply in replies]
    allowed = statuses.count(404)
    assert statuses[:60] == [404] * 60
    assert 60 <= allowed <= 60 + 40 * elapsed + 1
    assert statuses.count(429) == 100 - allowed
    assert next(reply for reply in replies if reply.status == 429).body.startswith(b"You have reached")
    time.sleep(0.1)  # four tokens at 40/s
    assert ask(endpoint.vpc, FLOOD_HOST, ["/v4/bad"])[0].status == 404
    assert endpoint.get(f"/v4/{APP_ID}").status == 200  # the task's own bucket is untouched


def listening_on(vpc: VpcUnderTest, port: int) -> bool:
    """True if a TCP socket listens on `port` in the VPC's namespace (/proc/net/tcp state 0A)."""

    def read() -> bool:
        with open("/proc/thread-self/net/tcp") as table:
            rows = [line.split() for line in table.read().splitlines()[1:]]
        return any(row[3] == "0A" and int(row[1].split(":")[1], 16) == port for row in rows)

    return run_in_netns(vpc.netns_path, read)


def test_close_vpc_frees_the_listening_socket(endpoint: Endpoint) -> None:
    port = 8081
    endpoint.loop.run(endpoint.server.serve(endpoint.other_vpc.vpc_id, endpoint.other_vpc.netns_path, port=port))
    assert listening_on(endpoint.other_vpc, port)
    assert endpoint.get("/v4/bad", vpc=endpoint.other_vpc, port=port).status == 404
    endpoint.loop.run(endpoint.server.close_vpc(endpoint.other_vpc.vpc_id))
    assert not listening_on(endpoint.other_vpc, port)
    with pytest.raises(ConnectionRefusedError):
        endpoint.get("/v4/bad", vpc=endpoint.other_vpc, port=port)

    def rebind() -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((METADATA_ADDRESS, port))
            sock.listen()

    run_in_netns(endpoint.other_vpc.netns_path, rebind)  # refused while any socket listened there
    assert not endpoint.server.serves(endpoint.other_vpc.vpc_id)


def test_serving_again_on_the_same_namespace_changes_nothing(endpoint: Endpoint) -> None:
    endpoint.loop.run(endpoint.server.serve(endpoint.vpc.vpc_id, endpoint.vpc.netns_path))
    assert endpoint.get(f"/v4/{APP_ID}").status == 200


def test_task_metadata_latency_over_1000_sequential_requests(endpoint: Endpoint) -> None:
    # A server of its own with no practical rate limit, on another port of the same namespace.
    unlimited = MetadataServer(endpoint.credentials, rate=1e9, burst=10**9)
    port = 8080
    endpoint.loop.run(unlimited.serve(endpoint.vpc.vpc_id, endpoint.vpc.netns_path, port=port))
    unlimited.register(endpoint.task)
    try:

        def timed() -> list[float]:
            connection = http.client.HTTPConnection(
                METADATA_ADDRESS, port, timeout=5, source_address=(endpoint.vpc.ip(TASK_HOST), 0)
            )
            took = []
            try:
                for _ in range(1000):
                    started = time.perf_counter()
                    connection.request("GET", f"/v4/{APP_ID}/task")
                    response = connection.getresponse()
                    response.read()
                    took.append(time.perf_counter() - started)
                    assert response.status == 200
            finally:
                connection.close()
            return took

        took = sorted(run_in_netns(endpoint.vpc.netns_path, timed))
        p50, p99 = statistics.median(took) * 1000, took[989] * 1000
        print(f"\n/v4/<id>/task over 1000 sequential requests: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        assert p99 < 50
    finally:
        endpoint.loop.run(unlimited.close())
