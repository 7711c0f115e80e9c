"""Task ENI speed: create and delete one by one and 100 at once, against the same routed ENI made with `ip`
commands, and the time of a security group filter apply. All in one VPC router of the bench's own.
Usage (root, repo root): .venv/bin/python bench/network.py [--rounds 20] [--concurrent 100]
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import percentile, print_table  # noqa: E402

from fargo.network import ipam  # noqa: E402
from fargo.network.names import netns_name, router_port_name  # noqa: E402
from fargo.network.rtnl import host_rtnl  # noqa: E402
from fargo.network.dns_private_zone import PrivateZone  # noqa: E402
from fargo.network.security_groups import (  # noqa: E402
    FilterState,
    LocalEni,
    apply_filter_state,
    apply_vpc_filter,
    filter_state,
    render_vpc_filter,
    whole_table,
)
from fargo.network.task_eni import (  # noqa: E402
    create_task_eni,
    create_task_eni_async,
    delete_task_eni,
    delete_task_eni_async,
    list_task_enis,
    list_task_enis_async,
)
from fargo.network.vpc_router import VpcRouter, delete_vpc_router, ensure_vpc_router  # noqa: E402
from fargo.protocol.messages import GroupPolicy, RulePolicy, VpcPolicy  # noqa: E402

MTU = 9001
# Addresses in the /20: the measured ENIs from .4 on, the baseline's from offset 1500, one warm-up at 3000.
BASELINE_IP_OFFSET = 1500
WARM_IP_OFFSET = 3000
CONCURRENT_TARGET_S = 10.0  # each of 100 creates at once and 100 deletes at once, as the test asserted
REGION = "us-east-1"  # the zone of the resolver's names (ec2.internal)


@dataclass
class Sandbox:
    """A bench-only prefix and VPC router in a 10.x.0.0/16 that no host route uses."""

    prefix: str
    vpc_cidr: str
    subnet_cidr: str
    router: VpcRouter | None = None

    @property
    def vpc_id(self) -> str:
        return f"vpc-{self.prefix}"

    def ip(self, n: int) -> str:
        return str(ipaddress.ip_network(self.subnet_cidr).network_address + 4 + n)


def free_vpc_cidr() -> str:
    with host_rtnl() as ipr:
        used = [ipaddress.ip_network(f"{r.get_attr('RTA_DST')}/{r['dst_len']}")
                for r in ipr.get_routes(family=socket.AF_INET, table=254) if r.get_attr("RTA_DST")]
    while True:
        candidate = ipaddress.ip_network(f"10.{random.randint(200, 250)}.0.0/16")
        if candidate != ipaddress.ip_network("10.213.0.0/16") and not any(candidate.overlaps(u) for u in used):
            return str(candidate)


def sequential(box: Sandbox, rounds: int) -> tuple[list[float], list[float]]:
    adds, deletes = [], []
    for n in range(rounds):
        started = time.perf_counter()
        create_task_eni(f"task{n}", box.router, box.subnet_cidr, box.ip(n), MTU, ipam.mac_address(f"task{n}"),
                        prefix=box.prefix)
        adds.append(time.perf_counter() - started)
    for n in range(rounds):
        started = time.perf_counter()
        delete_task_eni(f"task{n}", prefix=box.prefix)
        deletes.append(time.perf_counter() - started)
    return adds, deletes


async def concurrent(box: Sandbox, n: int) -> tuple[float, float]:
    started = time.perf_counter()
    await asyncio.gather(*[
        create_task_eni_async(f"task{i}", box.router, box.subnet_cidr, box.ip(i), MTU, ipam.mac_address(f"task{i}"),
                              prefix=box.prefix)
        for i in range(n)
    ])
    added = time.perf_counter() - started
    if len(await list_task_enis_async(box.prefix)) != n:
        raise RuntimeError(f"expected {n} ENIs")
    started = time.perf_counter()
    await asyncio.gather(*[delete_task_eni_async(f"task{i}", prefix=box.prefix) for i in range(n)])
    return added, time.perf_counter() - started


def ip_commands(box: Sandbox, rounds: int) -> tuple[list[float], list[float]]:
    """The baseline: the same routed ENI with iproute2, one fork per step."""
    assert box.router is not None
    router, gateway = box.router.netns_name, ipam.gateway_ip(box.subnet_cidr)
    length = ipam.prefix_length(box.subnet_cidr)
    adds, deletes = [], []
    for n in range(rounds):
        task_id = f"base{n}"
        ns, port, ip = netns_name(task_id, box.prefix), router_port_name(task_id, box.prefix), box.ip(BASELINE_IP_OFFSET + n)
        steps = [["ip", "netns", "add", ns],
                 ["ip", "-n", router, "link", "add", port, "mtu", str(MTU), "type", "veth", "peer", "name", "eth1",
                  "mtu", str(MTU), "netns", ns],
                 ["ip", "-n", router, "link", "set", port, "up"],
                 ["ip", "-n", router, "addr", "add", gateway, "peer", f"{ip}/32", "dev", port],
                 ["ip", "netns", "exec", router, "sysctl", "-qw", f"net.ipv4.neigh.{port}.proxy_delay=0"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"],
                 ["ip", "-n", ns, "addr", "add", f"{ip}/{length}", "dev", "eth1"],
                 ["ip", "-n", ns, "link", "set", "eth1", "up"],
                 ["ip", "-n", ns, "route", "add", "default", "via", gateway, "dev", "eth1"],
                 ["ip", "-n", ns, "route", "add", f"{ipam.METADATA_IP}/32", "via", gateway, "dev", "eth1"]]
        started = time.perf_counter()
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        adds.append(time.perf_counter() - started)
    for n in range(rounds):
        task_id = f"base{n}"
        started = time.perf_counter()
        subprocess.run(["ip", "-n", router, "link", "del", router_port_name(task_id, box.prefix)], check=True,
                       capture_output=True)
        subprocess.run(["ip", "netns", "del", netns_name(task_id, box.prefix)], check=True, capture_output=True)
        deletes.append(time.perf_counter() - started)
    return adds, deletes


def filter_applies(box: Sandbox, enis: int, rounds: int) -> list[float]:
    """Render and apply the VPC's filter for `enis` ENIs in three groups (the ports need not exist)."""
    assert box.router is not None
    local = [LocalEni(f"f{n}", router_port_name(f"f{n}", box.prefix), box.ip(n), (f"sg-{n % 3}",), n % 2 == 0)
             for n in range(enis)]
    groups = [GroupPolicy(f"sg-{g}", [RulePolicy("tcp", 80, 80, peer_group=f"sg-{(g + 1) % 3}")],
                          [RulePolicy("-1", cidr="0.0.0.0/0")], [e.ip for e in local if e.group_ids[0] == f"sg-{g}"])
              for g in range(3)]
    policy = VpcPolicy(box.vpc_id, box.vpc_cidr, groups)
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        apply_vpc_filter(box.router, render_vpc_filter(policy, local, box.router))
        took.append(time.perf_counter() - started)
    return took


def filter_changes(box: Sandbox, enis: int, rounds: int) -> list[float]:
    """A table of `enis` ENIs changed in place: one ENI more each round (render + change + apply), as an
    attach does once the agent knows the router's table."""
    assert box.router is not None
    group = GroupPolicy("sg-0", [RulePolicy("-1", peer_group="sg-0")], [RulePolicy("-1", cidr="0.0.0.0/0")])

    def state(count: int) -> FilterState:
        local = [LocalEni(f"c{i}", router_port_name(f"c{i}", box.prefix), box.ip(i), ("sg-0",), False)
                 for i in range(count)]
        policy = VpcPolicy(box.vpc_id, box.vpc_cidr, [GroupPolicy("sg-0", group.ingress, group.egress,
                                                                  [e.ip for e in local])])
        return filter_state(policy, local, box.router)  # type: ignore[arg-type]

    applied = state(enis)
    apply_vpc_filter(box.router, whole_table(applied))
    took = []
    for n in range(1, rounds + 1):
        started = time.perf_counter()
        wanted = state(enis + n)
        apply_filter_state(box.router, wanted, applied)
        took.append(time.perf_counter() - started)
        applied = wanted
    return took


def filter_renders(box: Sandbox, enis: int, rounds: int) -> list[float]:
    """Render alone (no apply) the filter of `enis` ENIs, one ENI more each round, as an attach in a burst does."""
    assert box.router is not None
    group = GroupPolicy("sg-0", [RulePolicy("-1", peer_group="sg-0")], [RulePolicy("-1", cidr="0.0.0.0/0")])
    took = []
    for n in range(rounds):
        local = [LocalEni(f"r{i}", router_port_name(f"r{i}", box.prefix), box.ip(i), ("sg-0",), False)
                 for i in range(enis + n)]
        policy = VpcPolicy(box.vpc_id, box.vpc_cidr, [GroupPolicy("sg-0", group.ingress, group.egress,
                                                                  [e.ip for e in local])])
        started = time.perf_counter()
        render_vpc_filter(policy, local, box.router)
        took.append(time.perf_counter() - started)
    return took


def zone_builds(box: Sandbox, enis: int, rounds: int) -> tuple[float, list[float]]:
    """The VPC resolver's zone of `enis` ENIs: its first build, then builds with one ENI more each (a burst)."""
    names = {ipam.private_dns_name(box.ip(i), REGION): box.ip(i) for i in range(enis + rounds)}
    items = list(names.items())
    started = time.perf_counter()
    PrivateZone.of(REGION, dict(items[:enis]))
    first = time.perf_counter() - started
    took = []
    for n in range(1, rounds + 1):
        started = time.perf_counter()
        PrivateZone.of(REGION, dict(items[:enis + n]))
        took.append(time.perf_counter() - started)
    return first, took


def clean_up(box: Sandbox, rounds: int) -> None:
    for leftover in list_task_enis(box.prefix):
        delete_task_eni(leftover.task_id, prefix=box.prefix)
    for n in range(rounds):  # baseline ports carry no alias, so list_task_enis cannot see them
        delete_task_eni(f"base{n}", prefix=box.prefix)
    delete_vpc_router(box.vpc_id, prefix=box.prefix)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="ENIs created, then deleted, one by one (%(default)s)")
    parser.add_argument("--concurrent", type=int, default=100, help="ENIs created, then deleted, at once (%(default)s)")
    args = parser.parse_args()
    if max(args.concurrent, args.rounds) > BASELINE_IP_OFFSET:
        parser.error(f"--rounds and --concurrent must be at most {BASELINE_IP_OFFSET} (one /20 subnet)")

    prefix = "b" + secrets.token_hex(2)
    vpc = free_vpc_cidr()
    box = Sandbox(prefix, vpc, vpc.replace(".0.0/16", ".0.0/20"))
    try:
        started = time.perf_counter()
        box.router = ensure_vpc_router(box.vpc_id, vpc, prefix=prefix)
        router_made = time.perf_counter() - started
        create_task_eni("warm", box.router, box.subnet_cidr, box.ip(WARM_IP_OFFSET), MTU, ipam.mac_address("warm"),
                        prefix=prefix)
        delete_task_eni("warm", prefix=prefix)
        adds, deletes = sequential(box, args.rounds)
        added, deleted = asyncio.run(concurrent(box, args.concurrent))
        base_adds, base_deletes = ip_commands(box, args.rounds)
        applies_20, applies_100 = filter_applies(box, 20, 10), filter_applies(box, 100, 10)
        applies_500 = filter_applies(box, 500, 5)
        renders_100 = filter_renders(box, 100, 20)
        changes_100, changes_500 = filter_changes(box, 100, 10), filter_changes(box, 500, 10)
        zone_first, zone_again = zone_builds(box, 100, 20)
    finally:
        clean_up(box, args.rounds)

    ms = 1000.0
    print(f"\nTask ENIs (prefix {prefix}, subnet {box.subnet_cidr} of one VPC router; {args.rounds} one by one)")
    print_table(["what", "p50 ms", "p95 ms", "max ms"], [
        ("create_task_eni", percentile(adds, 50) * ms, percentile(adds, 95) * ms, max(adds) * ms),
        ("delete_task_eni", percentile(deletes, 50) * ms, percentile(deletes, 95) * ms, max(deletes) * ms),
        ("ip commands: create (baseline)", percentile(base_adds, 50) * ms, percentile(base_adds, 95) * ms,
         max(base_adds) * ms),
        ("ip commands: delete (baseline)", percentile(base_deletes, 50) * ms, percentile(base_deletes, 95) * ms,
         max(base_deletes) * ms),
        ("ensure_vpc_router (a new one)", router_made * ms, router_made * ms, router_made * ms),
        ("filter render + apply, 20 ENIs", percentile(applies_20, 50) * ms, percentile(applies_20, 95) * ms,
         max(applies_20) * ms),
        ("filter render + apply, 100 ENIs", percentile(applies_100, 50) * ms, percentile(applies_100, 95) * ms,
         max(applies_100) * ms),
        ("filter render + apply, 500 ENIs", percentile(applies_500, 50) * ms, percentile(applies_500, 95) * ms,
         max(applies_500) * ms),
        ("filter changed in place, 100 ENIs + 1 each", percentile(changes_100, 50) * ms,
         percentile(changes_100, 95) * ms, max(changes_100) * ms),
        ("filter changed in place, 500 ENIs + 1 each", percentile(changes_500, 50) * ms,
         percentile(changes_500, 95) * ms, max(changes_500) * ms),
        ("filter render alone, 100 ENIs + 1 each", percentile(renders_100, 50) * ms,
         percentile(renders_100, 95) * ms, max(renders_100) * ms),
        ("resolver zone, first build of 100 ENIs", zone_first * ms, zone_first * ms, zone_first * ms),
        ("resolver zone, again with 1 ENI more", percentile(zone_again, 50) * ms, percentile(zone_again, 95) * ms,
         max(zone_again) * ms),
    ])
    print()
    c = args.concurrent
    print("Ratios and targets")
    print_table(["ratio", "value", "target", "met"], [
        ("create p50 / ip commands p50", percentile(adds, 50) / percentile(base_adds, 50), "", ""),
        ("delete p50 / ip commands p50", percentile(deletes, 50) / percentile(base_deletes, 50), "", ""),
        (f"{c} creates at once (s)", added, CONCURRENT_TARGET_S, "yes" if added < CONCURRENT_TARGET_S else "NO"),
        (f"{c} deletes at once (s)", deleted, CONCURRENT_TARGET_S, "yes" if deleted < CONCURRENT_TARGET_S else "NO"),
        (f"{c} creates at once / {c} x create p50", added / (c * percentile(adds, 50)), "", ""),
        (f"{c} deletes at once / {c} x delete p50", deleted / (c * percentile(deletes, 50)), "", ""),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
