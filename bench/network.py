"""Task ENI speed: create and delete one by one and 100 at once, against the same ENI made with `ip` commands.
The 100-at-once measurement was a timing assertion in tests/integration/test_network.py.
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
from fargo.network.host_routes import METADATA_IP, ensure_vpc_guard, remove_vpc_guard  # noqa: E402
from fargo.network.names import bridge_name, host_veth_name, netns_name  # noqa: E402
from fargo.network.rtnl import host_rtnl  # noqa: E402
from fargo.network.subnet_bridge import delete_subnet_bridge, ensure_subnet_bridge  # noqa: E402
from fargo.network.task_eni import (  # noqa: E402
    create_task_eni,
    create_task_eni_async,
    delete_task_eni,
    delete_task_eni_async,
    list_task_enis,
    list_task_enis_async,
)

MTU = 9001
# Addresses in the /20: the measured ENIs from .4 on, the baseline's from offset 1500, one warm-up at 3000.
BASELINE_IP_OFFSET = 1500
WARM_IP_OFFSET = 3000
CONCURRENT_TARGET_S = 10.0  # each of 100 creates at once and 100 deletes at once, as the test asserted


@dataclass
class Sandbox:
    """A bench-only prefix and a 10.x.0.0/16 that no host route uses, guarded by an unreachable route."""

    prefix: str
    vpc_cidr: str
    subnet_id: str
    subnet_cidr: str

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
        create_task_eni(f"task{n}", box.subnet_id, box.subnet_cidr, box.ip(n), MTU, ipam.mac_address(f"task{n}"),
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
        create_task_eni_async(f"task{i}", box.subnet_id, box.subnet_cidr, box.ip(i), MTU, ipam.mac_address(f"task{i}"),
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
    """The baseline: the same ENI with iproute2, one fork per step (host.md's recipe)."""
    bridge, gateway = bridge_name(box.subnet_id, box.prefix), ipam.gateway_ip(box.subnet_cidr)
    length = ipam.prefix_length(box.subnet_cidr)
    adds, deletes = [], []
    for n in range(rounds):
        task_id = f"base{n}"
        ns, veth, ip = netns_name(task_id, box.prefix), host_veth_name(task_id, box.prefix), box.ip(BASELINE_IP_OFFSET + n)
        steps = [["ip", "netns", "add", ns],
                 ["ip", "link", "add", veth, "mtu", str(MTU), "type", "veth", "peer", "name", "eth1", "mtu", str(MTU),
                  "netns", ns],
                 ["ip", "link", "set", veth, "master", bridge], ["ip", "link", "set", veth, "up"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "addr", "add", f"{ip}/{length}",
                                                              "dev", "eth1"],
                 ["ip", "-n", ns, "link", "set", "eth1", "up"],
                 ["ip", "-n", ns, "route", "add", f"{METADATA_IP}/32", "via", gateway, "dev", "eth1"]]
        started = time.perf_counter()
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        adds.append(time.perf_counter() - started)
    for n in range(rounds):
        task_id = f"base{n}"
        started = time.perf_counter()
        subprocess.run(["ip", "link", "del", host_veth_name(task_id, box.prefix)], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "del", netns_name(task_id, box.prefix)], check=True, capture_output=True)
        deletes.append(time.perf_counter() - started)
    return adds, deletes


def clean_up(box: Sandbox, rounds: int) -> None:
    for leftover in list_task_enis(box.prefix):
        delete_task_eni(leftover.task_id, prefix=box.prefix)
    for n in range(rounds):  # baseline veths carry no alias, so list_task_enis cannot see them
        delete_task_eni(f"base{n}", prefix=box.prefix)
    delete_subnet_bridge(box.subnet_id, prefix=box.prefix)
    remove_vpc_guard(box.vpc_cidr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="ENIs created, then deleted, one by one (%(default)s)")
    parser.add_argument("--concurrent", type=int, default=100, help="ENIs created, then deleted, at once (%(default)s)")
    args = parser.parse_args()
    if max(args.concurrent, args.rounds) > BASELINE_IP_OFFSET:
        parser.error(f"--rounds and --concurrent must be at most {BASELINE_IP_OFFSET} (one /20 subnet)")

    prefix = "b" + secrets.token_hex(2)
    vpc = free_vpc_cidr()
    box = Sandbox(prefix, vpc, f"subnet-{prefix}", vpc.replace(".0.0/16", ".0.0/20"))
    try:
        ensure_vpc_guard(vpc)
        ensure_subnet_bridge(box.subnet_id, box.subnet_cidr, MTU, prefix=prefix)
        create_task_eni("warm", box.subnet_id, box.subnet_cidr, box.ip(WARM_IP_OFFSET), MTU, ipam.mac_address("warm"),
                        prefix=prefix)
        delete_task_eni("warm", prefix=prefix)
        adds, deletes = sequential(box, args.rounds)
        added, deleted = asyncio.run(concurrent(box, args.concurrent))
        base_adds, base_deletes = ip_commands(box, args.rounds)
    finally:
        clean_up(box, args.rounds)

    ms = 1000.0
    print(f"\nTask ENIs (prefix {prefix}, subnet {box.subnet_cidr}; {args.rounds} one by one)")
    print_table(["what", "p50 ms", "p95 ms", "max ms"], [
        ("create_task_eni", percentile(adds, 50) * ms, percentile(adds, 95) * ms, max(adds) * ms),
        ("delete_task_eni", percentile(deletes, 50) * ms, percentile(deletes, 95) * ms, max(deletes) * ms),
        ("ip commands: create (baseline)", percentile(base_adds, 50) * ms, percentile(base_adds, 95) * ms,
         max(base_adds) * ms),
        ("ip commands: delete (baseline)", percentile(base_deletes, 50) * ms, percentile(base_deletes, 95) * ms,
         max(base_deletes) * ms),
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
