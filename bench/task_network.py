"""Task networking through Fargo: TCP throughput between two tasks of one VPC (platform 1.4.0 at MTU 9001 and
1.3.0 at 1500) against two bare namespaces joined by one veth pair without any filtering; the time from a
security-group change to its effect on running tasks; the ENI's share of RunTask -> RUNNING.

iperf3 (Debian's) runs inside the tasks' own network namespaces (`ip netns exec`), so only Fargo's namespaces
and the bench's own carry traffic.
Usage (root, repo root): .venv/bin/python bench/task_network.py [--seconds 3] [--starts 20]
"""
from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import BenchFargo, build_test_image, percentile, print_table  # noqa: E402

from fargo.network.netns import socket_in_netns  # noqa: E402

IMAGE = "fargo.local/busybox:latest"
PORT = 5201
PROBE_PORT = 8080
VPC_CIDR = "10.251.0.0/16"
SUBNETS = (("10.251.1.0/24", "us-east-1a"), ("10.251.2.0/24", "us-east-1b"))


def iperf(client_ns: str, server_ns: str, server_ip: str, seconds: int) -> float:
    """Gbit/s of one TCP stream from client_ns to server_ns."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip, "-p", str(PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-p", str(PORT),
                              "-t", str(seconds), "-J"], capture_output=True, text=True, check=True).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.wait(10)


def bare_pair(mtu: int) -> tuple[str, str, str]:
    """Two namespaces joined by one veth pair, nothing else: the baseline's (client, server, server ip)."""
    tag = secrets.token_hex(3)
    a, b = f"fgbench-a{tag}", f"fgbench-b{tag}"
    for cmd in (["ip", "netns", "add", a], ["ip", "netns", "add", b],
                ["ip", "-n", a, "link", "add", "eth1", "mtu", str(mtu), "type", "veth", "peer", "name", "eth1",
                 "netns", b, "mtu", str(mtu)],
                ["ip", "-n", a, "addr", "add", "192.168.251.1/24", "dev", "eth1"],
                ["ip", "-n", b, "addr", "add", "192.168.251.2/24", "dev", "eth1"],
                ["ip", "-n", a, "link", "set", "eth1", "up"], ["ip", "-n", b, "link", "set", "eth1", "up"],
                ["ip", "-n", a, "link", "set", "lo", "up"], ["ip", "-n", b, "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return a, b, "192.168.251.2"


def remove_namespaces(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Tasks:
    def __init__(self, fargo: BenchFargo) -> None:
        self.ecs, self.ec2 = fargo.client("ecs"), fargo.client("ec2")
        self.arns: list[str] = []

    def run(self, family: str, subnet: str, group: str, platform: str, command: str = "sleep 3600") -> dict:
        td = self.ecs.register_task_definition(
            family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": IMAGE, "essential": True, "stopTimeout": 2,
                                   "command": ["sh", "-c", f"trap 'exit 0' TERM; {command} & wait"]}],
        )["taskDefinition"]["taskDefinitionArn"]
        task = self.ecs.run_task(taskDefinition=td, launchType="FARGATE", platformVersion=platform,
                                 networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet],
                                                                               "securityGroups": [group]}})["tasks"][0]
        self.arns.append(task["taskArn"])
        return self.wait(task["taskArn"], "RUNNING")

    def wait(self, arn: str, status: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.ecs.describe_tasks(tasks=[arn])["tasks"][0]
            if task["lastStatus"] in (status, "STOPPED"):
                return task
            time.sleep(0.02)
        raise RuntimeError(f"{arn} did not reach {status}")

    def stop_all(self) -> None:
        for arn in self.arns:
            self.ecs.stop_task(task=arn)
        for arn in self.arns:
            self.wait(arn, "STOPPED")
        self.arns.clear()


def netns_of(task: dict) -> str:
    return "fg-" + task["taskArn"].rsplit("/", 1)[-1]


def ip_of(task: dict) -> str:
    return task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def connects(client_ns: str, ip: str, port: int, timeout: float = 0.05) -> bool:
    sock = socket_in_netns(f"/run/netns/{client_ns}", socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def time_until(check, timeout: float = 10.0) -> float:  # noqa: ANN001
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 run length (%(default)s)")
    parser.add_argument("--starts", type=int, default=20, help="tasks started one by one for the ENI share (%(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fargo-bench-net-"))
    rows: list[tuple[object, ...]] = []
    try:
        tar = build_test_image(work)
        with BenchFargo() as fargo:
            fargo.import_image(tar)
            t = Tasks(fargo)
            t.ecs.create_cluster(clusterName="default")
            vpc = t.ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
            subnets = [t.ec2.create_subnet(VpcId=vpc, CidrBlock=c, AvailabilityZone=z)["Subnet"]["SubnetId"]
                       for c, z in SUBNETS]
            group = t.ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]
            rule = [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PROBE_PORT, "IpRanges": [{"CidrIp": VPC_CIDR}]}]
            t.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
            try:
                for platform, mtu in (("1.4.0", 9001), ("1.3.0", 1500)):
                    server = t.run("bench-net-server", subnets[0], group, platform)
                    client = t.run("bench-net-client", subnets[1], group, platform)
                    fargo_gbps = iperf(netns_of(client), netns_of(server), ip_of(server), args.seconds)
                    t.stop_all()
                    a, b, ip = bare_pair(mtu)
                    try:
                        bare_gbps = iperf(a, b, ip, args.seconds)
                    finally:
                        remove_namespaces(a, b)
                    rows.append((f"{platform} MTU {mtu}: two tasks (Gbit/s)", fargo_gbps))
                    rows.append((f"bare veth pair MTU {mtu} (Gbit/s)", bare_gbps))
                    rows.append((f"ratio tasks / bare at MTU {mtu}", fargo_gbps / bare_gbps))
                jumbo, small = rows[0][1], rows[3][1]
                rows.append(("ratio MTU 9001 / MTU 1500 between tasks", float(jumbo) / float(small)))  # type: ignore[arg-type]

                server = t.run("bench-net-probe-server", subnets[0], group, "1.4.0",
                               f"httpd -f -p {PROBE_PORT} -h /")
                client = t.run("bench-net-probe-client", subnets[1], group, "1.4.0")
                time_until(lambda: connects(netns_of(client), ip_of(server), PROBE_PORT))
                revokes, grants = [], []
                for _ in range(5):
                    t.ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule)
                    revokes.append(time_until(lambda: not connects(netns_of(client), ip_of(server), PROBE_PORT)))
                    t.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
                    grants.append(time_until(lambda: connects(netns_of(client), ip_of(server), PROBE_PORT)))
                t.stop_all()
                rows.append(("revoke -> new connection refused, p50 (ms)", percentile(revokes, 50) * 1000))
                rows.append(("authorize -> new connection accepted, p50 (ms)", percentile(grants, 50) * 1000))

                provisioning, totals = [], []
                for _ in range(args.starts):
                    task = t.run("bench-net-start", subnets[0], group, "1.4.0")
                    provisioning.append(task["connectivityAt"].timestamp() - task["createdAt"].timestamp())
                    totals.append(task["startedAt"].timestamp() - task["createdAt"].timestamp())
                    t.stop_all()
                rows.append(("ENI set-up: createdAt -> connectivityAt p50 (ms)", percentile(provisioning, 50) * 1000))
                rows.append(("createdAt -> startedAt p50 (ms)", percentile(totals, 50) * 1000))
            finally:
                t.stop_all()
    finally:
        subprocess.run(["rm", "-rf", str(work)])
    print()
    print_table(["what", "value"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
