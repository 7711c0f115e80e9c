"""The host scan against the real kernel: leftover task cgroups in every hierarchy, task namespaces and veths,
and mounts below a data dir are found, and removed by the functions reconciliation uses (needs root).
"""
from __future__ import annotations

import errno
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargo.agent.host_scan import (
    mounts_under,
    scan_host,
    task_cgroup_ids,
    task_netns_ids,
    task_veth_ids,
    unmount,
    unmount_all,
)
from fargo.agent.task_cgroup import (
    CGROUP_ROOT,
    TaskCgroupNotRemoved,
    all_hierarchy_mounts,
    container_cgroup_path,
    controller_mounts,
    create_task_cgroup,
    limit_task_cpu,
    list_task_cgroups,
    read_mountinfo,
    remove_task_cgroup,
    task_cgroup_path,
)
from fargo.network.names import host_veth_name, netns_name
from fargo.network.netns import create_netns
from fargo.network.rtnl import host_rtnl
from fargo.network.task_eni import delete_task_eni


def _fake_task_id() -> str:
    return f"hostscan-{secrets.token_hex(6)}"


def _cgroup_dirs(task_id: str, child: str) -> list[Path]:
    rel = container_cgroup_path(task_id, child).lstrip("/")
    return [h.mount_point / rel for h in all_hierarchy_mounts()]


def _discard_cgroups(task_id: str) -> None:
    try:
        remove_task_cgroup(task_id)
    except OSError:
        pass
    for hierarchy in all_hierarchy_mounts():
        try:  # /fargo too if we made it and no one else uses it; others' tasks keep it busy
            (hierarchy.mount_point / CGROUP_ROOT).rmdir()
        except OSError:
            pass


@pytest.fixture
def task_id() -> Iterator[str]:
    made = _fake_task_id()
    try:
        yield made
    finally:
        _discard_cgroups(made)


def test_the_hierarchies_are_every_cgroup_mount_once_named_v1_and_cgroup2_included() -> None:
    hierarchies = all_hierarchy_mounts()
    cgroup_mounts = [m for m in read_mountinfo() if m.fstype in ("cgroup", "cgroup2")]
    assert {m.device for m in cgroup_mounts} and len(hierarchies) == len({m.device for m in cgroup_mounts})
    assert {"cgroup2" if h.version == 2 else "cgroup" for h in hierarchies} == {m.fstype for m in cgroup_mounts}
    named = {o.partition("=")[2] for m in cgroup_mounts for o in m.super_options if o.startswith("name=")}
    assert {h.name for h in hierarchies if h.name} == named
    assert set(controller_mounts()) <= {c for h in hierarchies for c in h.controllers}


def test_a_task_cgroup_gets_its_memory_limit_when_made_and_its_cpu_quota_only_when_asked(task_id: str) -> None:
    # runc's own set-up of a container runs in the container's cgroup: no quota may throttle it
    create_task_cgroup(task_id, 512)
    task_dir = Path(task_cgroup_path(task_id).lstrip("/"))
    cpu = controller_mounts()["cpu"] / task_dir
    assert (controller_mounts()["memory"] / task_dir / "memory.limit_in_bytes").read_text().strip() == str(512 * 2**20)
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "-1"
    limit_task_cpu(task_id, 256)
    limit_task_cpu(task_id, 256)  # again (a container found running after a restart): the same
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"


def test_a_task_cgroup_left_in_every_hierarchy_is_found_and_removed(task_id: str) -> None:
    dirs = _cgroup_dirs(task_id, "c-runtime-1")
    for directory in dirs:
        directory.mkdir(parents=True)
    assert task_id in list_task_cgroups()
    assert task_id in task_cgroup_ids()
    assert task_id in scan_host(Path("/nonexistent"), "fg").cgroups

    remove_task_cgroup(task_id)
    assert not [d for d in dirs if d.parent.exists()]
    assert task_id not in list_task_cgroups()
    remove_task_cgroup(task_id)  # already gone: nothing to do


def test_a_cgroup_only_in_cgroup2_or_name_systemd_is_still_found_and_removed(task_id: str) -> None:
    others = [h for h in all_hierarchy_mounts() if h.version == 2 or h.name is not None]
    # runc puts every container in these too (DESIGN.md section 5): a host without them is not the one we run on
    assert others, "this host mounts neither cgroup2 nor a named v1 hierarchy such as name=systemd"
    rel = container_cgroup_path(task_id, "c-runtime-1").lstrip("/")
    for hierarchy in others:
        (hierarchy.mount_point / rel).mkdir(parents=True)
    assert task_id in list_task_cgroups()
    remove_task_cgroup(task_id)
    assert not [h for h in others if (h.mount_point / rel).parent.exists()]


def test_a_cgroup_still_holding_a_process_is_reported_and_removed_once_the_process_is_gone(task_id: str) -> None:
    dirs = _cgroup_dirs(task_id, "c-busy")
    for directory in dirs:
        directory.mkdir(parents=True)
    # cgroup2 if mounted (no controller setup needed), else a v1 hierarchy without cpuset's empty cpus
    hierarchies = all_hierarchy_mounts()
    busy = next((d for h, d in zip(hierarchies, dirs) if h.version == 2),
                next(d for h, d in zip(hierarchies, dirs) if "cpuset" not in h.controllers))
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        with pytest.raises(TaskCgroupNotRemoved) as raised:
            remove_task_cgroup(task_id)
        assert isinstance(raised.value, OSError) and raised.value.errno == errno.EBUSY
        assert str(busy) in str(raised.value) and str(sleeper.pid) in str(raised.value)
        assert len(raised.value.left) == 1  # its parent is not reported twice
        assert [d for d in dirs if d.exists()] == [busy]  # every other hierarchy was cleaned all the same
        assert task_id in list_task_cgroups()
    finally:
        sleeper.kill()
        sleeper.wait()
    remove_task_cgroup(task_id)  # the caller's retry
    assert not busy.parent.exists()
    assert task_id not in list_task_cgroups()


def _mount_tmpfs(point: Path) -> None:
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hostscan", str(point)], check=True)


def test_mounts_below_a_data_dir_are_found_deepest_first_and_unmounted_even_when_busy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    nested, inner, busy = data / "rootfs", data / "rootfs" / "volumes", data / "with space"
    try:
        _mount_tmpfs(data)  # the data dir itself may be a mount: the scan must leave it alone
        for point in (nested, inner, busy):
            _mount_tmpfs(point)
        found = mounts_under(data)
        assert set(found) == {nested, inner, busy}
        assert found.index(inner) < found.index(nested)
        assert mounts_under(tmp_path / "data" / "..") == mounts_under(tmp_path)

        with open(busy / "held-open", "w"):  # an open file keeps the mount busy: only a lazy detach works
            assert unmount_all(found) == found
        assert mounts_under(data) == []
        assert data in [Path(line.split()[4]) for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        assert unmount(inner) is False  # nothing mounted there any more
        assert unmount_all([inner, tmp_path / "never-mounted"]) == []
    finally:
        unmount_all(mounts_under(tmp_path))
        unmount(data)


def test_a_task_namespace_and_its_veth_are_found_until_deleted() -> None:
    prefix, task_id = "hs" + secrets.token_hex(2), _fake_task_id()
    veth = host_veth_name(task_id, prefix)
    try:
        netns = create_netns(netns_name(task_id, prefix))
        try:
            with host_rtnl() as ipr:
                # as a task ENI leaves it: the peer inside the namespace, the host end named by its alias
                ipr.link("add", ifname=veth, kind="veth", peer={"ifname": "eth1", "net_ns_fd": netns.fd})
                ipr.link("set", ifname=veth, ifalias=netns_name(task_id, prefix))
        finally:
            netns.close()
        assert task_netns_ids(prefix) == [task_id]
        assert task_veth_ids(prefix) == [task_id]
        state = scan_host(Path("/nonexistent"), prefix)
        assert task_id in state.unknown_task_ids(set())
        assert task_id not in state.unknown_task_ids({task_id})

        delete_task_eni(task_id, prefix=prefix)
        assert task_netns_ids(prefix) == [] and task_veth_ids(prefix) == []
        assert not os.path.exists(f"/run/netns/{netns_name(task_id, prefix)}")
    finally:
        delete_task_eni(task_id, prefix=prefix)
