"""EFS volumes on the real kernel: the efs-volumes hook's mounts (plain and idmapped), access point roots made
with CreationInfo, confinement against planted symlinks and `..`, cleanup, reuse after an agent restart, and
a runc container whose root writes land on disk as the access point's PosixUser.

Needs root. Every file system lives in the test's temp dir; every mount is removed even when a test fails.
"""
from __future__ import annotations

import asyncio
import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from fargo.agent import host_scan
from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskCannotStart
from fargo.agent.hooks.efs_volumes import EfsVolumesHook
from fargo.protocol import stop_reasons as reasons
from fargo.protocol.container_settings import effective_container_settings
from fargo.protocol.messages import AccessPointPlan, EfsVolumePlan, TaskAssignment
from fargo.runtime.oci_spec import BindMount, ContainerRuntimeSpec, build_oci_spec
from fargo.storage.safe_paths import NoSuchDirectory, open_directory_beneath, open_file_system
from tests.unit.engine_fakes import FakeHost, FakeRuntime, assignment

from .conftest import ContainerdRuntime, ImageUnderTest

FS = "fs-0123456789abcdef0"
TASK_ID = "0123456789abcdef0123456789abcdef"
POSIX = AccessPointPlan("fsap-0123456789abcdef0", "/app/data", posix_uid=2000, posix_gid=2000,
                        creation_uid=2000, creation_gid=2000, creation_permissions="750")


@dataclass
class EfsTask:
    """What the hook sees of a task (TaskContext): its assignment, containers and desired status."""

    assignment: TaskAssignment
    containers: dict[str, ContainerRun] = field(default_factory=dict)
    stop_wanted: bool = False

    @property
    def task_id(self) -> str:
        return self.assignment.task_id


def efs_task(plans: list[EfsVolumePlan], containers: list[dict[str, Any]]) -> EfsTask:
    a = replace(assignment(containers), efs_volumes=plans)
    runs = {c["name"]: ContainerRun(c["name"], c, effective_container_settings(c), f"{TASK_ID}-{i}")
            for i, c in enumerate(containers)}
    return EfsTask(a, runs)


def container(name: str, *points: tuple[str, str, bool], user: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "image": "busybox", "essential": True,
                         "mountPoints": [{"sourceVolume": v, "containerPath": p, "readOnly": ro} for v, p, ro in points]}
    if user is not None:
        d["user"] = user
    return d


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FakeHost]:
    h = FakeHost(FakeRuntime(), tmp_path)
    (h.efs_root / FS).mkdir(parents=True)
    try:
        yield h
    finally:
        host_scan.unmount_all(host_scan.mounts_under(tmp_path))


@pytest.fixture
def fs(host: FakeHost) -> Path:
    return host.efs_root / FS


def prestart(hook: EfsVolumesHook, task: EfsTask) -> None:
    asyncio.run(hook.prestart(task))


def stop(hook: EfsVolumesHook, task: EfsTask) -> None:
    asyncio.run(hook.stop(task))


def binds(hook: EfsVolumesHook, task: EfsTask, name: str) -> list[BindMount]:
    spec = ContainerSpecContribution()
    hook.contribute(task, task.containers[name], spec)
    return spec.mounts


def mounts_below(path: Path) -> list[str]:
    real = os.path.realpath(path) + "/"
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if real in line]


def as_user(uid: int, gid: int, directory: str, *command: str) -> subprocess.CompletedProcess[str]:
    """`command` as uid:gid in `directory` (entered while still root: the temp dirs above it are private)."""
    return subprocess.run(list(command), cwd=directory, user=uid, group=gid, extra_groups=[], capture_output=True,
                          text=True)


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


# --- identity -----------------------------------------------------------------------------------------

def test_posix_user_owns_what_each_container_user_creates_and_other_uids_get_eoverflow(host: FakeHost,
                                                                                      fs: Path) -> None:
    plan = EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)
    task = efs_task([plan], [container("app", ("data", "/mnt/data", False), user="1234:1234"),
                             container("reader", ("data", "/ro", True))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    [app] = binds(hook, task, "app")
    [reader] = binds(hook, task, "reader")
    assert (app.destination, app.readonly, Path(app.source).name) == ("/mnt/data", False, "data.1234.1234")
    assert (reader.destination, reader.readonly, Path(reader.source).name) == ("/ro", True, "data.0.0")
    assert all("idmapped" in line for line in mounts_below(host.task_dir(TASK_ID)))

    # the access point root (and its missing parent) were made with CreationInfo
    assert owner(fs / "app") == owner(fs / "app" / "data") == (2000, 2000)
    assert stat.S_IMODE(os.stat(fs / "app" / "data").st_mode) == 0o750

    assert as_user(1234, 1234, app.source, "touch", "by-app").returncode == 0
    assert owner(fs / "app" / "data" / "by-app") == (2000, 2000)
    assert owner(Path(app.source) / "by-app") == (1234, 1234)  # the container sees its own ids
    (Path(reader.source) / "by-root").write_text("x")
    assert owner(fs / "app" / "data" / "by-root") == (2000, 2000)

    # a bijection cannot squash everyone: root through the 1234 mount is not mapped
    with pytest.raises(OSError) as e:
        (Path(app.source) / "by-unmapped-root").write_text("x")
    assert e.value.errno == errno.EOVERFLOW
    stop(hook, task)


def test_without_posix_user_the_mount_is_a_plain_bind_and_client_ids_are_trusted(host: FakeHost, fs: Path) -> None:
    (fs / "shared").mkdir()
    os.chmod(fs / "shared", 0o777)
    plan = EfsVolumePlan("v", FS, root_directory="/shared")
    task = efs_task([plan], [container("app", ("v", "/v", False))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    [bind] = binds(hook, task, "app")
    assert Path(bind.source).name == "v"
    assert not any("idmapped" in line for line in mounts_below(host.task_dir(TASK_ID)))
    assert as_user(1234, 1234, bind.source, "touch", "mine").returncode == 0
    assert owner(fs / "shared" / "mine") == (1234, 1234)
    stop(hook, task)


def test_an_existing_access_point_root_keeps_its_owner_and_mode(host: FakeHost, fs: Path) -> None:
    (fs / "app" / "data").mkdir(parents=True)
    os.chown(fs / "app" / "data", 2000, 2000)
    os.chmod(fs / "app" / "data", 0o700)
    os.chmod(fs / "app", 0o711)
    task = efs_task([EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)],
                    [container("app", ("data", "/data", False))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    assert owner(fs / "app") == (0, 0) and stat.S_IMODE(os.stat(fs / "app").st_mode) == 0o711
    assert stat.S_IMODE(os.stat(fs / "app" / "data").st_mode) == 0o700
    stop(hook, task)


# --- confinement --------------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["/etc", "../..", "../../.."])
def test_a_planted_symlink_is_not_followed_to_find_or_make_the_root(host: FakeHost, fs: Path, link: str) -> None:
    (fs / "app").symlink_to(link)
    outside_before = sorted(os.listdir(host.efs_root)) + sorted(os.listdir(host.root))
    task = efs_task([EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)],
                    [container("app", ("data", "/data", False))])
    with pytest.raises(TaskCannotStart) as e:
        prestart(EfsVolumesHook(host), task)
    assert e.value.reason == reasons.efs_no_such_directory("127.0.0.1:/")
    assert not Path("/etc/data").exists()
    assert sorted(os.listdir(host.efs_root)) + sorted(os.listdir(host.root)) == outside_before
    assert mounts_below(host.root) == []

    no_ap = efs_task([EfsVolumePlan("data", FS, root_directory="/app/")], [container("app", ("data", "/d", False))])
    with pytest.raises(TaskCannotStart) as e:
        prestart(EfsVolumesHook(host), no_ap)
    assert e.value.reason == reasons.efs_no_such_directory(
        reasons.efs_mount_source(FS, host.region, "/app/", tls=False))


def test_dotdot_stays_inside_the_file_system_and_inside_the_mount(host: FakeHost, fs: Path) -> None:
    (fs / "secret").write_text("outside the access point")
    fs_fd = open_file_system(host.efs_root, FS)
    try:
        with pytest.raises(NoSuchDirectory):
            os.close(open_directory_beneath(fs_fd, "/../../tmp"))  # clamped at the root: <fs>/tmp, missing
    finally:
        os.close(fs_fd)
    ap = replace(POSIX, path="/../../ap")
    task = efs_task([EfsVolumePlan("data", FS, access_point=ap, transit_encryption=True)],
                    [container("app", ("data", "/data", False))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    assert (fs / "ap").is_dir()  # made inside the file system, not two levels above it
    [bind] = binds(hook, task, "app")
    mount = Path(bind.source)
    (fs / "ap" / "up").symlink_to("../secret")
    # `..` of the mount's root is the mount point's parent: the task's own directory, not the file system
    assert os.path.samefile(os.path.join(mount, ".."), host.task_dir(TASK_ID) / "efs")
    assert not (mount / "up").exists()  # a relative link climbs out of the mount point, not into the fs
    stop(hook, task)


def test_a_volume_name_that_is_a_path_cannot_place_a_mount_outside_the_tasks_efs_dir(host: FakeHost,
                                                                                   fs: Path) -> None:
    task = efs_task([EfsVolumePlan("../../escape", FS)], [container("app", ("../../escape", "/v", False))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    [bind] = binds(hook, task, "app")
    assert Path(bind.source).parent == Path(os.path.realpath(host.task_dir(TASK_ID))) / "efs"
    assert not (host.root / "escape").exists()
    stop(hook, task)
    assert mounts_below(host.root) == []


# --- failures the host finds --------------------------------------------------------------------------

def test_missing_directories_stop_the_task_with_efs_utils_reasons(host: FakeHost, fs: Path) -> None:
    hook = EfsVolumesHook(host)
    c = [container("app", ("v", "/v", False))]
    gone = efs_task([EfsVolumePlan("v", "fs-00000000000000000")], c)
    with pytest.raises(TaskCannotStart) as e:
        prestart(hook, gone)
    assert e.value.reason == reasons.efs_unresolvable("fs-00000000000000000", host.region)

    no_root = efs_task([EfsVolumePlan("v", FS, root_directory="/data/airflow")], c)
    with pytest.raises(TaskCannotStart) as e:
        prestart(hook, no_root)
    assert e.value.reason == reasons.efs_no_such_directory(
        f"{FS}.efs.us-east-1.amazonaws.com:/data/airflow")

    no_creation = replace(POSIX, creation_uid=None, creation_gid=None, creation_permissions=None)
    ap = efs_task([EfsVolumePlan("v", FS, access_point=no_creation, transit_encryption=True)], c)
    with pytest.raises(TaskCannotStart) as e:
        prestart(hook, ap)
    assert e.value.reason == reasons.efs_no_such_directory("127.0.0.1:/")
    assert e.value.reason.startswith(
        "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:")
    assert not (fs / "app").exists()
    for task in (gone, no_root, ap):
        stop(hook, task)
    assert mounts_below(host.root) == []


# --- lifetime -----------------------------------------------------------------------------------------

def test_stop_unmounts_everything_removes_its_directories_and_is_idempotent(host: FakeHost, fs: Path) -> None:
    task = efs_task([EfsVolumePlan("a", FS), EfsVolumePlan("b", FS, access_point=POSIX, transit_encryption=True)],
                    [container("app", ("a", "/a", False), ("b", "/b", False), user="1234:1234"),
                     container("side", ("b", "/b", True))])
    hook = EfsVolumesHook(host)
    prestart(hook, task)
    assert len(mounts_below(host.task_dir(TASK_ID))) == 3  # a, b.1234.1234, b.0.0
    stop(hook, task)
    assert mounts_below(host.root) == []
    assert not (host.task_dir(TASK_ID) / "efs").exists()
    assert binds(hook, task, "app") == []
    stop(hook, task)  # again: nothing to do
    stop(EfsVolumesHook(host), efs_task([], [container("x")]))  # never made anything

    # half made: a mount point directory whose mount never happened
    (host.task_dir(TASK_ID) / "efs" / "a").mkdir(parents=True)
    stop(hook, task)
    assert not (host.task_dir(TASK_ID) / "efs").exists()
    assert (fs / "app" / "data").is_dir()  # the file system's data is never touched


def test_prestart_after_an_agent_restart_reuses_the_mounts_and_data_outlives_tasks(host: FakeHost, fs: Path) -> None:
    plans = [EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)]
    task = efs_task(plans, [container("app", ("data", "/data", False))])
    prestart(EfsVolumesHook(host), task)
    before = mounts_below(host.task_dir(TASK_ID))
    restarted = EfsVolumesHook(host)  # a new agent: nothing in memory, the mounts are still there
    prestart(restarted, task)
    assert mounts_below(host.task_dir(TASK_ID)) == before
    [bind] = binds(restarted, task, "app")
    (Path(bind.source) / "kept").write_text("across tasks")
    stop(restarted, task)

    later = efs_task(plans, [container("app", ("data", "/data", False))])
    hook = EfsVolumesHook(host)
    prestart(hook, later)
    [bind] = binds(hook, later, "app")
    assert (Path(bind.source) / "kept").read_text() == "across tasks"
    stop(hook, later)


def test_reconcile_finds_and_removes_the_mounts_of_a_task_no_agent_knows(host: FakeHost, fs: Path) -> None:
    # After a SIGKILL of `fargo up`, reconcile unmounts everything under DATA_DIR/tasks/<unknown task>/.
    tasks_dir = host.root / "tasks"
    host.task_dir = lambda task_id: tasks_dir / task_id  # type: ignore[method-assign]  # the agent's layout
    task = efs_task([EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)],
                    [container("app", ("data", "/data", False))])
    prestart(EfsVolumesHook(host), task)
    found = host_scan.mounts_under(tasks_dir)
    assert [p.relative_to(os.path.realpath(tasks_dir)).parts[:2] for p in found] == [(TASK_ID, "efs")]
    host_scan.unmount_all(found)
    assert mounts_below(tasks_dir) == []


# --- inside runc --------------------------------------------------------------------------------------

def test_container_users_writing_into_the_volume_inside_runc_land_on_disk_as_the_posix_user(
        containerd_runtime: ContainerdRuntime, test_image: ImageUnderTest, host: FakeHost, fs: Path) -> None:
    rt = containerd_runtime
    host.runtime = rt.client  # type: ignore[assignment]  # the image's own passwd resolves "app"
    definitions = [dict(container("root", ("data", "/efs", False)), image=test_image.name),
                   dict(container("app", ("data", "/efs", False), user="app"), image=test_image.name)]
    task = efs_task([EfsVolumePlan("data", FS, access_point=POSIX, transit_encryption=True)], definitions)
    hook = EfsVolumesHook(host)
    rt.run(hook.prestart(task))  # on the client's own loop
    assert [Path(b.source).name for b in binds(hook, task, "app")] == ["data.1000.1000"]  # app:x:1000:1000
    script = ("touch /efs/by-$(id -un) && mkdir /efs/dir-$(id -un) && stat -c '%u:%g' /efs/by-$(id -un) && "
              "grep ' /efs ' /proc/self/mountinfo")
    try:
        as_root = rt.run(_run_container(rt, test_image, ["sh", "-c", script], "", binds(hook, task, "root"), host.root))
        as_app = rt.run(_run_container(rt, test_image, ["sh", "-c", script], "app", binds(hook, task, "app"),
                                       host.root))
    finally:
        stop(hook, task)
    assert as_root.splitlines()[0] == "0:0" and as_app.splitlines()[0] == "1000:1000"  # each sees its own ids
    assert "idmapped" in as_root.splitlines()[1] and "idmapped" in as_app.splitlines()[1]
    ap_root = fs / "app" / "data"
    for name in ("by-root", "dir-root", "by-app", "dir-app"):
        assert owner(ap_root / name) == (2000, 2000), name
    assert mounts_below(host.root) == []


async def _run_container(rt: ContainerdRuntime, image: ImageUnderTest, args: list[str], user: str,
                         mounts: list[BindMount], out_dir: Path) -> str:
    cid = rt.unique_id("efs")
    spec = ContainerRuntimeSpec(args=args, user=user, mounts=mounts, cgroups_path=f"{rt.cgroup_parent}/{cid}")
    built = build_oci_spec(spec, await rt.client.image_users(image.name))
    stdout, stderr = out_dir / f"{cid}.out", out_dir / f"{cid}.err"
    stdout.touch()
    stderr.touch()
    await rt.client.create_container(cid, image.name, built.spec, {"fargo.test": rt.namespace})
    try:
        await rt.client.start_task(cid, stdout, stderr)
        status = await rt.client.wait(cid)
    finally:
        await rt.client.delete_task(cid)
        await rt.client.delete_container(cid)
    assert status.code == 0, stderr.read_text()
    return stdout.read_text()
