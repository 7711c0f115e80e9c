"""awsvpc networking end to end: VPCs, subnets and security groups made with boto3 and the AWS CLI, and tasks
that really reach (or do not reach) each other, their VPC's resolver, and a test host outside the VPCs.

Traffic only flows between Fargo's own namespaces and the namespaces these tests make: the "outside" host is
a network namespace of this test on a TEST-NET-3 address (203.0.113.0/24), and the upstream resolver is a
dnslib server of this test on 127.0.0.1.
"""
from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FARGO, REPO, SHARED_PREFIX, TEST_IMAGE, FargoProcess, import_test_image, wait_for_task
from tests.fargo_process import free_port

OUTSIDE_NET = "203.0.113"
SERVER_PORT = 8080
SERVE = (f"mkdir -p /w && echo {{reply}} > /w/index.html && httpd -f -p {SERVER_PORT} -h /w")


# --- helpers --------------------------------------------------------------------------------------

def _tags(name: str) -> list[dict]:
    return [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}]


def make_vpc(ec2, cidr: str, name: str) -> str:  # noqa: ANN001
    return ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_tags(name))["Vpc"]["VpcId"]


def make_subnet(ec2, vpc_id: str, cidr: str, zone: str) -> str:  # noqa: ANN001
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]


def make_group(ec2, vpc_id: str, name: str) -> str:  # noqa: ANN001
    return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]


def allow_tcp_from_group(ec2, group_id: str, source_group: str, port: int = SERVER_PORT) -> None:  # noqa: ANN001
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": source_group}]}])


def register(ecs, family: str, command: str, **extra) -> str:  # noqa: ANN001
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": TEST_IMAGE, "essential": True, "stopTimeout": 2,
                               "command": ["sh", "-c", command]}], **extra)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, family: str, command: str, subnets: list[str], groups: list[str] | None = None,  # noqa: ANN001
        public: bool = False, **extra) -> dict:
    td = register(ecs, family, command)
    awsvpc: dict = {"subnets": subnets, "assignPublicIp": "ENABLED" if public else "DISABLED"}
    if groups is not None:
        awsvpc["securityGroups"] = groups
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration={"awsvpcConfiguration": awsvpc},
                       **extra)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]


def ip_of(task: dict) -> str:
    return task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def running(ecs, task: dict) -> dict:  # noqa: ANN001
    described = wait_for_task(ecs, task["taskArn"], "RUNNING")
    assert described["lastStatus"] == "RUNNING", described.get("stoppedReason")
    return described


def finished(ecs, task: dict, timeout: float = 60) -> dict:  # noqa: ANN001
    return wait_for_task(ecs, task["taskArn"], "STOPPED", timeout)


def exit_code(ecs, task: dict) -> int | None:  # noqa: ANN001
    return finished(ecs, task)["containers"][0].get("exitCode")


def logs(f: FargoProcess, task: dict) -> str:
    return subprocess.run(FARGO + ["logs", task["taskArn"].rsplit("/", 1)[-1], "--endpoint", f.endpoint],
                          capture_output=True, text=True, check=True, cwd=REPO).stdout


def stop(ecs, *tasks: dict) -> None:  # noqa: ANN001
    for task in tasks:
        ecs.stop_task(task=task["taskArn"])
    for task in tasks:
        finished(ecs, task)


def fetch(ip: str, port: int = SERVER_PORT, timeout: int = 2) -> str:
    """A client command: prints the page, exits 0 when it was fetched. (nc: busybox's static wget crashes.)"""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {timeout} {ip} {port}"


def wait_until(check, timeout: float, what: str) -> float:  # noqa: ANN001
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def router_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{SHARED_PREFIX}r-")]


@pytest.fixture(scope="module")
def vpc_a(runner_fargo: FargoProcess) -> dict:
    """A VPC of two subnets in two zones, with a server group open to a client group on tcp/8080."""
    ec2 = runner_fargo.client("ec2")
    vpc = make_vpc(ec2, "10.77.0.0/16", "e2e-a")
    subnets = [make_subnet(ec2, vpc, "10.77.1.0/24", "us-east-1a"), make_subnet(ec2, vpc, "10.77.2.0/24", "us-east-1b")]
    server, client, other = (make_group(ec2, vpc, name) for name in ("e2e-server", "e2e-client", "e2e-other"))
    allow_tcp_from_group(ec2, server, client)
    return {"vpc": vpc, "subnets": subnets, "server": server, "client": client, "other": other}


# --- security groups, zones, isolation -------------------------------------------------------------

def test_security_groups_allow_the_client_group_and_deny_others_across_zones(runner_fargo: FargoProcess,
                                                                             vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    server = running(ecs, run(ecs, "e2e-sg-server", SERVE.format(reply="from-a"), [vpc_a["subnets"][0]],
                              [vpc_a["server"]]))
    try:
        allowed = run(ecs, "e2e-sg-client", fetch(ip_of(server)), [vpc_a["subnets"][1]], [vpc_a["client"]])
        denied = run(ecs, "e2e-sg-other", fetch(ip_of(server)), [vpc_a["subnets"][1]], [vpc_a["other"]])
        assert exit_code(ecs, allowed) == 0
        assert "from-a" in logs(runner_fargo, allowed)
        assert finished(ecs, allowed)["availabilityZone"] == "us-east-1b" != server["availabilityZone"]
        assert exit_code(ecs, denied) != 0
    finally:
        stop(ecs, server)


def test_a_rule_revoked_while_both_tasks_run_stops_new_connections_within_a_second(runner_fargo: FargoProcess,
                                                                                   vpc_a: dict) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    group = make_group(ec2, vpc_a["vpc"], f"e2e-revoke-{secrets.token_hex(3)}")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": SERVER_PORT, "ToPort": SERVER_PORT, "IpRanges": [{"CidrIp": "10.77.0.0/16"}]}])
    server = running(ecs, run(ecs, "e2e-revoke-server", SERVE.format(reply="up"), [vpc_a["subnets"][0]], [group]))
    loop = (f"while true; do if {fetch(ip_of(server), timeout=1)} >/dev/null 2>&1; "
            "then echo ok; else echo fail; fi; sleep 0.1; done")
    client = running(ecs, run(ecs, "e2e-revoke-client", loop, [vpc_a["subnets"][1]], [vpc_a["client"]]))
    try:
        wait_until(lambda: "ok" in logs(runner_fargo, client), 20, "a first fetch")
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": SERVER_PORT, "ToPort": SERVER_PORT,
            "IpRanges": [{"CidrIp": "10.77.0.0/16"}]}])
        revoked_at = len(logs(runner_fargo, client).split())
        took = wait_until(lambda: "fail" in logs(runner_fargo, client).split()[revoked_at:], 10,
                          "a refused fetch after the revoke")
        # The loop notices within one fetch timeout (1 s) plus its sleep: the rule itself applies far sooner.
        assert took < 3.0
    finally:
        stop(ecs, server, client)


def test_two_vpcs_with_the_same_cidr_are_isolated(runner_fargo: FargoProcess) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    vpcs = [make_vpc(ec2, "10.78.0.0/16", f"e2e-twin-{i}") for i in range(2)]
    subnets = [make_subnet(ec2, v, "10.78.0.0/24", "us-east-1a") for v in vpcs]
    groups = []
    for v in vpcs:
        g = make_group(ec2, v, "e2e-open")
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[{
            "IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        groups.append(g)
    servers = [running(ecs, run(ecs, f"e2e-twin-server-{i}", SERVE.format(reply=f"twin-{i}"), [subnets[i]],
                                [groups[i]])) for i in range(2)]
    try:
        assert ip_of(servers[0]) == ip_of(servers[1])  # the same address, in two VPCs
        for i in range(2):
            client = run(ecs, f"e2e-twin-client-{i}", fetch(ip_of(servers[i])),
                         [subnets[i]], [groups[i]])
            assert exit_code(ecs, client) == 0
            assert f"twin-{i}" in logs(runner_fargo, client) and f"twin-{1 - i}" not in logs(runner_fargo, client)
    finally:
        stop(ecs, *servers)


def test_the_default_group_lets_its_members_talk_to_each_other(runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    server = running(ecs, run(ecs, "e2e-default-server", SERVE.format(reply="dflt"), [vpc_a["subnets"][0]]))
    try:
        client = run(ecs, "e2e-default-client", fetch(ip_of(server)), [vpc_a["subnets"][0]])
        assert exit_code(ecs, client) == 0
    finally:
        stop(ecs, server)


# --- the ENI inside the task -------------------------------------------------------------------------

def test_the_task_eni_has_its_routes_resolver_and_jumbo_mtu(runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-eni-inside", "ip route; cat /etc/resolv.conf; cat /sys/class/net/eth1/mtu; hostname",
               [vpc_a["subnets"][0]])
    assert exit_code(ecs, task) == 0
    out = logs(runner_fargo, task)
    assert "default via 10.77.1.1 dev eth1" in out
    assert "169.254.170.2 via 10.77.1.1 dev eth1" in out
    assert "nameserver 10.77.0.2" in out and "search ec2.internal" in out
    assert "9001" in out.split()
    assert f"ip-{ip_of(task).replace('.', '-')}.ec2.internal" in out


def test_platform_1_3_0_has_mtu_1500(runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    task = run(ecs, "e2e-mtu-130", "cat /sys/class/net/eth1/mtu", [vpc_a["subnets"][0]], platformVersion="1.3.0")
    assert exit_code(ecs, task) == 0
    assert logs(runner_fargo, task).split() == ["1500"]


def test_the_vpc_resolver_answers_task_names_and_nothing_of_other_vpcs(runner_fargo: FargoProcess,
                                                                       vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    server = running(ecs, run(ecs, "e2e-dns-server", "sleep 3600", [vpc_a["subnets"][0]]))
    try:
        name = f"ip-{ip_of(server).replace('.', '-')}.ec2.internal"
        task = run(ecs, "e2e-dns-client", f"nslookup {name}", [vpc_a["subnets"][1]])
        assert exit_code(ecs, task) == 0
        assert ip_of(server) in logs(runner_fargo, task)
        missing = run(ecs, "e2e-dns-missing", "nslookup ip-10-77-9-9.ec2.internal", [vpc_a["subnets"][1]])
        assert exit_code(ecs, missing) != 0
    finally:
        stop(ecs, server)


# --- the EC2 view of task ENIs ------------------------------------------------------------------------

def test_eni_in_describe_tasks_and_describe_network_interfaces_agree_and_are_released(
        runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    subnet = vpc_a["subnets"][0]
    free_before = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"]
    task = running(ecs, run(ecs, "e2e-eni-view", "sleep 3600", [subnet], [vpc_a["client"], vpc_a["other"]],
                            public=True))
    attachment = task["attachments"][0]
    details = {d["name"]: d["value"] for d in attachment["details"]}
    try:
        enis = ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])["NetworkInterfaces"]
        (eni,) = enis
        assert eni["Description"] == f"arn:aws:ecs:us-east-1:000000000000:attachment/{attachment['id']}"
        assert eni["PrivateIpAddress"] == details["privateIPv4Address"] == ip_of(task)
        assert eni["MacAddress"] == details["macAddress"]
        assert eni["PrivateDnsName"] == details["privateDnsName"]
        assert eni["SubnetId"] == subnet and eni["VpcId"] == vpc_a["vpc"]
        assert eni["AvailabilityZone"] == task["availabilityZone"] == "us-east-1a"
        assert {g["GroupId"] for g in eni["Groups"]} == {vpc_a["client"], vpc_a["other"]}
        assert eni["Status"] == "in-use" and eni["InterfaceType"] == "interface" and eni["RequesterManaged"]
        by_filter = ec2.describe_network_interfaces(Filters=[
            {"Name": "addresses.private-ip-address", "Values": [ip_of(task)]},
            {"Name": "vpc-id", "Values": [vpc_a["vpc"]]}])["NetworkInterfaces"]
        assert [e["NetworkInterfaceId"] for e in by_filter] == [eni["NetworkInterfaceId"]]
        assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == free_before - 1
        cli = runner_fargo.aws_json("ec2", "describe-network-interfaces", "--filters",
                                    f"Name=description,Values=*{attachment['id']}")
        assert [e["NetworkInterfaceId"] for e in cli["NetworkInterfaces"]] == [eni["NetworkInterfaceId"]]
    finally:
        stop(ecs, task)
    assert ec2.describe_network_interfaces(Filters=[
        {"Name": "addresses.private-ip-address", "Values": [ip_of(task)]},
        {"Name": "vpc-id", "Values": [vpc_a["vpc"]]}])["NetworkInterfaces"] == []
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == free_before


def test_dependency_violation_while_a_vpc_subnet_or_group_is_in_use(runner_fargo: FargoProcess) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    vpc = make_vpc(ec2, "10.79.0.0/16", "e2e-deps")
    subnet = make_subnet(ec2, vpc, "10.79.0.0/24", "us-east-1c")
    group = make_group(ec2, vpc, "e2e-deps")
    task = running(ecs, run(ecs, "e2e-deps", "sleep 3600", [subnet], [group]))
    try:
        for call, kwargs in ((ec2.delete_security_group, {"GroupId": group}), (ec2.delete_subnet, {"SubnetId": subnet}),
                             (ec2.delete_vpc, {"VpcId": vpc})):
            with pytest.raises(ClientError) as err:
                call(**kwargs)
            assert err.value.response["Error"]["Code"] == "DependencyViolation"
    finally:
        stop(ecs, task)
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_run_task_validates_the_awsvpc_configuration_as_ecs_does(runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    td = register(ecs, "e2e-awsvpc-errors", "true")
    other_vpc = make_vpc(ec2, "10.80.0.0/16", "e2e-other")
    other_subnet = make_subnet(ec2, other_vpc, "10.80.0.0/24", "us-east-1a")

    def error(awsvpc: dict) -> str:
        with pytest.raises(ClientError) as err:
            ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration={"awsvpcConfiguration": awsvpc})
        assert err.value.response["Error"]["Code"] == "InvalidParameterException"
        return err.value.response["Error"]["Message"]

    assert error({"subnets": []}) == "subnets can not be empty."
    assert error({"subnets": ["subnet-0000000000000000a"]}) == (
        "Error retrieving subnet information for [subnet-0000000000000000a]: The subnet ID "
        "'subnet-0000000000000000a' does not exist (ErrorCode: InvalidSubnetID.NotFound)")
    assert "sg-0000000000000000b" in error({"subnets": vpc_a["subnets"], "securityGroups": ["sg-0000000000000000b"]})
    assert error({"subnets": [vpc_a["subnets"][0], other_subnet]})
    six = [make_group(ec2, vpc_a["vpc"], f"e2e-six-{i}-{secrets.token_hex(2)}") for i in range(6)]
    assert error({"subnets": vpc_a["subnets"], "securityGroups": six})
    with pytest.raises(ClientError):
        ecs.run_task(taskDefinition=td, launchType="FARGATE")


def test_tasks_of_one_run_task_spread_over_the_zones_of_their_subnets(runner_fargo: FargoProcess,
                                                                       vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "e2e-spread", "sleep 3600")
    tasks = ecs.run_task(taskDefinition=td, launchType="FARGATE", count=4, networkConfiguration={
        "awsvpcConfiguration": {"subnets": vpc_a["subnets"]}})["tasks"]
    try:
        zones = [t["availabilityZone"] for t in tasks]
        assert sorted(zones) == ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b"]
    finally:
        stop(ecs, *tasks)


# --- outside the VPC: NAT and the upstream resolver ---------------------------------------------------

class OutsideHost:
    """A test namespace on TEST-NET-3, reached from the host by a veth: a TCP server that records its peers."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.netns, self.veth = f"fgxo-{tag}", f"fgxo{tag}"
        self.ip, self.host_ip = f"{OUTSIDE_NET}.1", f"{OUTSIDE_NET}.254"
        self.peers: list[str] = []
        self._sock: socket.socket | None = None

    def __enter__(self) -> OutsideHost:
        from fargo.network.netns import socket_in_netns
        for cmd in (["ip", "netns", "add", self.netns],
                    ["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns],
                    ["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.veth],
                    ["ip", "link", "set", self.veth, "up"],
                    ["ip", "-n", self.netns, "addr", "add", f"{self.ip}/24", "dev", "eth0"],
                    ["ip", "-n", self.netns, "link", "set", "eth0", "up"],
                    ["ip", "-n", self.netns, "link", "set", "lo", "up"]):
            subprocess.run(cmd, check=True, capture_output=True)
        self._sock = socket_in_netns(f"/run/netns/{self.netns}", socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.ip, SERVER_PORT))
        self._sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            with conn:
                self.peers.append(peer[0])
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\noutside\n")

    def __exit__(self, *_exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


def test_assign_public_ip_enabled_reaches_outside_through_the_host_and_disabled_does_not(
        runner_fargo: FargoProcess, vpc_a: dict) -> None:
    ecs = runner_fargo.client("ecs")
    with OutsideHost() as outside:
        public = run(ecs, "e2e-nat-on", fetch(outside.ip), [vpc_a["subnets"][0]], public=True)
        private = run(ecs, "e2e-nat-off", fetch(outside.ip), [vpc_a["subnets"][0]], public=False)
        assert exit_code(ecs, public) == 0
        assert "outside" in logs(runner_fargo, public)
        assert exit_code(ecs, private) != 0
        assert outside.peers and set(outside.peers) == {outside.host_ip}  # masqueraded by the host


@pytest.fixture
def upstream_resolver() -> Iterator[tuple[int, list[str]]]:
    """A dnslib server on 127.0.0.1 that answers every A query with 192.0.2.7 and records the names asked."""
    from dnslib import QTYPE, RR, A
    from dnslib.server import BaseResolver, DNSServer

    asked: list[str] = []

    class Answer(BaseResolver):
        def resolve(self, request, handler):  # noqa: ANN001, ANN201
            reply = request.reply()
            asked.append(str(request.q.qname))
            if request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=30))
            return reply

    port = free_port()
    server = DNSServer(Answer(), port=port, address="127.0.0.1")
    server.start_thread()
    try:
        yield port, asked
    finally:
        server.stop()


def test_other_names_are_forwarded_to_the_upstream_given_to_fargo_up(upstream_resolver: tuple[int, list[str]],
                                                                     fresh_fargo_dir: Path) -> None:
    port, asked = upstream_resolver
    f = FargoProcess(fresh_fargo_dir, extra_args=["--dns-upstream", f"127.0.0.1:{port}"])
    try:
        f.start()
        import_test_image(f)
        ecs = f.client("ecs")
        ecs.create_cluster()
        task = run(ecs, "e2e-dns-upstream", "nslookup service.example.test", ["subnet-fargo-default-1a"])
        assert exit_code(ecs, task) == 0
        assert "192.0.2.7" in logs(f, task)
        assert any(name.startswith("service.example.test") for name in asked)
    finally:
        f.stop()


def test_a_vpc_router_goes_with_the_last_task_of_its_vpc(runner_fargo: FargoProcess) -> None:
    ecs, ec2 = runner_fargo.client("ecs"), runner_fargo.client("ec2")
    vpc = make_vpc(ec2, "10.81.0.0/16", "e2e-router")
    subnet = make_subnet(ec2, vpc, "10.81.0.0/24", "us-east-1a")
    before = set(router_namespaces())
    task = running(ecs, run(ecs, "e2e-router", "sleep 3600", [subnet]))
    assert len(set(router_namespaces()) - before) == 1
    stop(ecs, task)
    wait_until(lambda: set(router_namespaces()) - before == set(), 20, "the router going")
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)
