"""fargo.storage's ephemeral volume against the real kernel: loop devices, ext4, mounts, ENOSPC, and a real
container (containerd + runc) whose writable layer lives on the volume (needs root).
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargo.storage import loop_devices
from fargo.storage.ephemeral_volume import (EphemeralVolume, EphemeralVolumeError, StorageSizes,
                                            find_task_storage, remove_orphan_storage, remove_task_storage)
from fargo.storage.ext4_images import VolumeImages
from fargo.storage.mounts import is_mount_point, mount_points_under
from fargo.runtime.oci_spec import BindMount, ContainerRuntimeSpec, build_oci_spec

from .conftest import ContainerdRuntime, ImageUnderTest

GIB = 1024**3


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> VolumeImages:
    return VolumeImages(tmp_path_factory.mktemp("storage") / "templates")


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir's tasks/ for one test; whatever storage the test left there is removed, then checked."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    yield tasks
    for task_id in find_task_storage(tasks):
        try:
            remove_task_storage(tasks / task_id)
        except OSError:
            pass
    assert loop_devices.devices_backed_under(tmp_path) == []
    assert mount_points_under(tmp_path) == []


def _fill(path: Path, size: int) -> None:
    """posix_fallocate `size` bytes at `path` (what `fallocate` does): ENOSPC past the free space. A failed
    ext4 fallocate is not atomic (host.md), so a refused file is removed again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        os.unlink(path)
        raise
    finally:
        os.close(fd)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_a_volume_is_an_ext4_of_its_size_on_a_loop_device_bound_to_a_sparse_image(
        tasks_dir: Path, images: VolumeImages) -> None:
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    (number,) = volume.make(["scratch"])
    image = tasks_dir / "t1" / "volume.img"
    assert loop_devices.backing_file(number) == str(image)
    assert is_mount_point(volume.volume_dir)
    st = os.statvfs(volume.volume_dir)
    assert 19.5 * GIB < st.f_blocks * st.f_frsize <= 20 * GIB
    assert image.stat().st_size == 20 * GIB and image.stat().st_blocks * 512 < 4 * 1024 * 1024  # sparse
    assert (volume.volume_dir / "volumes" / "scratch").is_dir()
    assert oct((volume.volume_dir / "volumes" / "scratch").stat().st_mode & 0o777) == "0o755"
    assert volume.utilized_mib() is not None and volume.utilized_mib() < 8
    assert "/dev/loop%d %s ext4" % (number, volume.volume_dir) in Path("/proc/mounts").read_text()


def test_writes_past_the_limit_get_enospc_and_layers_and_volumes_share_it(
        tasks_dir: Path, images: VolumeImages) -> None:
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    volume.make(["scratch"])
    host_free = _free(tasks_dir)
    layer = volume.container_dir("c1")
    layer.mkdir(parents=True)
    with pytest.raises(OSError) as refused:
        _fill(layer / "too-big", 25 * GIB)
    assert refused.value.errno == errno.ENOSPC
    _fill(layer / "big", 18 * GIB)  # the writable layer takes 18 of the 20 GiB...
    with pytest.raises(OSError) as refused:
        _fill(volume.task_volume_dir("scratch") / "more", 2 * GIB)  # ...so a task volume cannot have 2 more
    assert refused.value.errno == errno.ENOSPC
    _fill(volume.task_volume_dir("scratch") / "some", GIB)
    assert volume.utilized_mib() >= 19 * 1024
    # fallocate makes unwritten extents: the sparse image (and the host's disk) barely grows
    assert _free(tasks_dir) > host_free - 256 * 1024 * 1024


def test_platform_1_3_0_gives_writable_layers_10_gib_and_task_volumes_4_gib_apart(
        tasks_dir: Path, images: VolumeImages) -> None:
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(10, 4), images)
    layers_loop, volumes_loop = volume.make(["a", "b"])
    assert layers_loop != volumes_loop
    assert loop_devices.backing_file(volumes_loop) == str(tasks_dir / "t1" / "volumes.img")
    layer = volume.container_dir("c1")
    layer.mkdir(parents=True)
    with pytest.raises(OSError):
        _fill(layer / "eleven", 11 * GIB)
    _fill(layer / "nine", 9 * GIB)
    with pytest.raises(OSError):
        _fill(volume.task_volume_dir("a") / "five", 5 * GIB)
    _fill(volume.task_volume_dir("a") / "three", 3 * GIB)  # the layers' 9 GiB do not count here
    volume.remove()
    assert not (tasks_dir / "t1" / "volume").exists() and not (tasks_dir / "t1" / "volumes.img").exists()


def test_a_new_volume_comes_with_its_top_level_directories_and_the_task_volumes_one_without(
        tasks_dir: Path, images: VolumeImages) -> None:
    one = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    one.make(["data"])
    root = one.volume_dir
    assert sorted(os.listdir(root)) == ["containers", "lost+found", "volumes"]
    for name in ("containers", "volumes"):
        st = os.stat(root / name)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)
    assert os.listdir(root / "volumes") == ["data"]
    two = EphemeralVolume(tasks_dir / "t2", StorageSizes(10, 4), images)  # 1.3.0: volumes/ is a volume of its own
    two.make(["data"])
    assert sorted(os.listdir(two.volume_dir / "volumes")) == ["data", "lost+found"]
    assert sorted(p.name for p in images.templates_dir.glob("*.img")) == [
        "ext4-10g-r4-containers-volumes.img", "ext4-20g-r4-containers-volumes.img", "ext4-4g-r4.img"]
    with pytest.raises(ValueError):
        images.template(20, ("../escape",))
    (images.templates_dir / "ext4-20g-r3.img").write_bytes(b"")  # an older recipe's template goes
    images.template(20)
    assert not (images.templates_dir / "ext4-20g-r3.img").exists()
    assert (images.templates_dir / "ext4-20g-r4-containers-volumes.img").exists()
    one.remove()
    two.remove()


def test_make_again_finds_its_work_done_and_keeps_the_contents(tasks_dir: Path, images: VolumeImages) -> None:
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    first = volume.make(["scratch"])
    (volume.task_volume_dir("scratch") / "kept").write_text("data")
    again = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)  # as a restarted agent makes it
    assert again.make(["scratch", "other"]) == first
    assert (volume.task_volume_dir("scratch") / "kept").read_text() == "data"
    assert volume.task_volume_dir("other").is_dir()
    assert len([d for d in loop_devices.devices_backed_under(tasks_dir)]) == 1


def test_a_half_made_volume_is_made_afresh(tasks_dir: Path, images: VolumeImages) -> None:
    task_dir = tasks_dir / "t1"
    task_dir.mkdir()
    (task_dir / "volume").mkdir()
    (task_dir / "volume.img").write_bytes(b"half a copy")  # an image whose make was cut off
    volume = EphemeralVolume(task_dir, StorageSizes(20), images)
    (number,) = volume.make()
    assert is_mount_point(volume.volume_dir) and loop_devices.backing_file(number) == str(task_dir / "volume.img")
    assert (task_dir / "volume.img").stat().st_size == 20 * GIB


def test_remove_takes_everything_away_and_can_be_repeated(tasks_dir: Path, images: VolumeImages) -> None:
    task_dir = tasks_dir / "t1"
    (task_dir / "logs").mkdir(parents=True)
    (task_dir / "logs" / "app.log").write_text("other hooks' files stay")
    volume = EphemeralVolume(task_dir, StorageSizes(20), images)
    volume.make(["scratch"])
    (volume.task_volume_dir("scratch") / "secret").write_text("wiped at stop")
    started = time.perf_counter()
    volume.remove()
    took = time.perf_counter() - started
    assert sorted(os.listdir(task_dir)) == ["logs"]
    assert loop_devices.devices_backed_under(task_dir) == [] and mount_points_under(task_dir) == []
    volume.remove()
    remove_task_storage(tasks_dir / "never-made")
    assert took < 0.5


def test_a_dirty_volume_is_thrown_away_without_writing_it_back(tasks_dir: Path, images: VolumeImages) -> None:
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    volume.make()
    with open(volume.volume_dir / "dirty", "wb") as f:
        for _ in range(384):
            f.write(b"\1" * (1024 * 1024))  # 384 MiB in the page cache, not yet written back
    started = time.perf_counter()
    volume.remove()
    assert time.perf_counter() - started < 1.0


def test_remove_raises_while_a_device_is_held_and_succeeds_once_it_is_let_go(
        tasks_dir: Path, images: VolumeImages) -> None:
    task_dir = tasks_dir / "t1"
    volume = EphemeralVolume(task_dir, StorageSizes(20), images)
    volume.make()
    (number,) = [d.number for d in loop_devices.devices_backed_under(task_dir)]
    holder = os.open(f"/dev/loop{number}", os.O_RDONLY)  # something still has the device open
    try:
        with pytest.raises(EphemeralVolumeError, match="still bound"):
            volume.remove()
        assert not (task_dir / "volume.img").exists() and not is_mount_point(volume.volume_dir)
    finally:
        os.close(holder)
    volume.remove()
    assert loop_devices.devices_backed_under(task_dir) == []


def test_orphans_are_found_and_only_they_are_removed(tasks_dir: Path, images: VolumeImages) -> None:
    kept = EphemeralVolume(tasks_dir / "known", StorageSizes(20), images)
    kept.make(["scratch"])
    EphemeralVolume(tasks_dir / "orphan", StorageSizes(10, 4), images).make(["scratch"])
    (tasks_dir / "image-only").mkdir()
    images.copy_to(tasks_dir / "image-only" / "volume.img", 20)
    (tasks_dir / "logs-only" / "logs").mkdir(parents=True)
    assert find_task_storage(tasks_dir) == {"known", "orphan", "image-only"}
    assert remove_orphan_storage(tasks_dir, {"known"}) == ["image-only", "orphan"]
    assert find_task_storage(tasks_dir) == {"known"}
    assert is_mount_point(kept.volume_dir)
    assert [Path(d.backing_file).parent.name for d in loop_devices.devices_backed_under(tasks_dir)] == ["known"]


def test_concurrent_setups_get_distinct_loop_devices(tasks_dir: Path, images: VolumeImages) -> None:
    images.template(20)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def make(i: int) -> None:
        try:
            results[i] = EphemeralVolume(tasks_dir / f"t{i}", StorageSizes(20), images).make()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = [n for made in results.values() for n in made]
    assert len(set(numbers)) == 12
    for i in range(12):
        assert loop_devices.backing_file(results[i][0]) == str(tasks_dir / f"t{i}" / "volume.img")
    removers = [threading.Thread(target=remove_task_storage, args=(tasks_dir / f"t{i}",)) for i in range(12)]
    for t in removers:
        t.start()
    for t in removers:
        t.join()
    assert find_task_storage(tasks_dir) == set()


def test_a_container_writes_to_its_volume_and_gets_enospc_past_the_limit(
        tasks_dir: Path, images: VolumeImages, containerd_runtime: ContainerdRuntime,
        test_image: ImageUnderTest) -> None:
    """The writable layer relocated onto the volume really is where containerd's shim puts the rootfs's
    writes; a task volume is shared read-write or read-only through bind mounts."""
    rt = containerd_runtime
    volume = EphemeralVolume(tasks_dir / "t1", StorageSizes(20), images)
    volume.make(["scratch"])
    (volume.task_volume_dir("scratch") / "from-host").write_text("hello")
    cid = rt.unique_id("eph")
    # fill the writable layer to 40 MiB below the limit; then a 100 MiB dd into the task volume must fail
    script = ("fallocate -l 25G /too-big; echo big=$?; rm -f /too-big; "
              "avail=$(df -k / | tail -1 | awk '{print $4}'); "
              "fallocate -l $(( (avail - 40960) * 1024 )) /nearly-all && echo layer=ok; "
              "dd if=/dev/zero of=/scratch/more bs=1M count=100 2>/dev/null; echo volume=$?; "
              "cat /ro/from-host; echo x > /ro/denied; echo ro=$?; "
              "rm /nearly-all; dd if=/dev/zero of=/written bs=1M count=3 2>/dev/null")
    spec = ContainerRuntimeSpec(
        args=["sh", "-c", script], cgroups_path=f"{rt.cgroup_parent}/{cid}",
        mounts=[BindMount(str(volume.task_volume_dir("scratch")), "/scratch"),
                BindMount(str(volume.task_volume_dir("scratch")), "/ro", readonly=True)])
    out = tasks_dir / f"{cid}.out"
    out.touch()

    async def run() -> int:
        client = rt.client
        await client.create_container(cid, test_image.name, build_oci_spec(spec).spec)
        try:
            await client.start_task(cid, out, out, volume.container_dir(cid))
            return (await client.wait(cid)).code
        finally:
            if (info := await client.task_info(cid)) is not None and info.status != "stopped":
                await client.kill(cid, signal.SIGKILL, all=True)
            await client.delete_task(cid)
            await client.delete_container(cid)

    rt.run(run())
    text = out.read_text()
    assert "big=1" in text and "layer=ok" in text, text
    assert "volume=1" in text, text  # the writable layer took what /scratch would have needed
    assert "hello" in text and "ro=1" in text, text
    upper = volume.container_dir(cid) / "upper"
    assert (upper / "written").stat().st_size == 3 << 20 and not (upper / "nearly-all").exists()
    shutil.rmtree(volume.container_dir(cid))
    volume.remove()
