"""IPAM and naming rules for task ENIs: AWS's reserved addresses, gateways, MACs, DNS names, link names."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fargo.network import ipam, names


def test_first_address_handed_out_is_the_fifth_of_the_subnet() -> None:
    assert ipam.allocate_ip("10.213.0.0/20", set()) == "10.213.0.4"


def test_addresses_in_use_are_skipped_and_the_lowest_free_one_is_chosen() -> None:
    in_use = {"10.213.0.4", "10.213.0.5", "10.213.0.7"}
    assert ipam.allocate_ip("10.213.0.0/20", in_use) == "10.213.0.6"


def test_addresses_outside_the_subnet_do_not_matter() -> None:
    assert ipam.allocate_ip("10.213.16.0/20", {"10.213.0.4", "192.0.2.9"}) == "10.213.16.4"


def test_a_full_28_subnet_raises_a_clear_error_after_eleven_enis() -> None:
    cidr = "10.1.2.16/28"
    in_use: set[str] = set()
    for _ in range(11):  # 16 addresses minus .16 .17 .18 .19 and broadcast .31
        in_use.add(ipam.allocate_ip(cidr, in_use))
    assert ipam.usable_address_count(cidr) == 11
    assert min(in_use, key=ipaddress.IPv4Address) == "10.1.2.20"
    assert max(in_use, key=ipaddress.IPv4Address) == "10.1.2.30"
    with pytest.raises(ipam.SubnetFullError, match="not enough free addresses in subnet '10.1.2.16/28'"):
        ipam.allocate_ip(cidr, in_use)


def test_reserved_and_broadcast_addresses_are_never_allocated() -> None:
    cidr = "10.9.0.0/24"
    in_use: set[str] = set()
    for _ in range(ipam.usable_address_count(cidr)):
        in_use.add(ipam.allocate_ip(cidr, in_use))
    assert len(in_use) == 251
    assert not in_use & {"10.9.0.0", "10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.255"}


@pytest.mark.parametrize("cidr", ["10.213.0.5/20", "10.0.0.0/29", "fd00::/64", "nonsense"])
def test_bad_subnets_are_refused(cidr: str) -> None:
    with pytest.raises(ValueError):
        ipam.allocate_ip(cidr, set())


def test_gateway_is_the_first_host_address() -> None:
    assert ipam.gateway_ip("10.213.0.0/20") == "10.213.0.1"
    assert ipam.gateway_ip("10.213.16.0/20") == "10.213.16.1"
    assert ipam.prefix_length("10.213.16.0/20") == 20


def test_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = ipam.mac_address("task/abc")
    assert mac == ipam.mac_address("task/abc")
    assert mac != ipam.mac_address("task/abd")
    octets = [int(part, 16) for part in mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0x01 == 0  # unicast
    assert octets[0] & 0x02 == 0x02  # locally administered


def test_private_dns_name_follows_ec2_region_rule() -> None:
    assert ipam.private_dns_name("10.213.0.5", "us-east-1") == "ip-10-213-0-5.ec2.internal"
    assert ipam.private_dns_name("10.213.0.5", "eu-west-1") == "ip-10-213-0-5.eu-west-1.compute.internal"


def test_link_names_fit_ifnamsiz_and_carry_the_prefix() -> None:
    subnet = "subnet-0123456789abcdef0"
    task = "0f3c1d2e4b5a69788796a5b4c3d2e1f0"
    for prefix in ("fg", "abcdef"):
        bridge = names.bridge_name(subnet, prefix)
        veth = names.host_veth_name(task, prefix)
        assert len(bridge) == 15 and bridge.startswith(prefix + "b")
        assert len(veth) == 15 and veth.startswith(prefix + "v")
    assert names.bridge_name(subnet) != names.bridge_name("subnet-other")
    assert names.netns_name(task) == f"fg-{task}"
    assert names.netns_path(names.netns_name(task)) == f"/run/netns/fg-{task}"


def test_task_id_is_recovered_from_a_netns_name_of_the_same_prefix_only() -> None:
    assert names.task_id_from_netns_name("fg-abc123", "fg") == "abc123"
    assert names.task_id_from_netns_name("fgx-abc123", "fg") is None
    assert names.task_id_from_netns_name("other", "fg") is None


@pytest.mark.parametrize("prefix", ["", "UPPER", "toolong7", "9x", "a-b"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        names.bridge_name("subnet-1", prefix)


@pytest.mark.parametrize("task_id", ["", "../etc", "a/b", "x y"])
def test_task_ids_that_are_not_safe_file_names_are_refused(task_id: str) -> None:
    with pytest.raises(ValueError):
        names.netns_name(task_id)


@given(taken=st.sets(st.integers(min_value=0, max_value=63), max_size=64))
def test_allocation_is_always_a_free_usable_address_of_the_subnet(taken: set[int]) -> None:
    cidr = "10.7.0.64/26"
    network = ipaddress.ip_network(cidr)
    in_use = {str(network.network_address + offset) for offset in taken}
    usable = {str(network.network_address + offset) for offset in range(4, 63)}
    if usable <= in_use:
        with pytest.raises(ipam.SubnetFullError):
            ipam.allocate_ip(cidr, in_use)
        return
    chosen = ipam.allocate_ip(cidr, in_use)
    assert chosen in usable - in_use
    assert chosen == min(usable - in_use, key=ipaddress.IPv4Address)
