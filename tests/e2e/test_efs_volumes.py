"""EFS volumes as a Fargate user meets them, through boto3: a file system with mount targets, tasks that mount
it (whole, by rootDirectory, or through an access point), data that outlives tasks and restarts of `fargo up`,
access-point identity and confinement, and the stoppedReasons of mounts that cannot work.

The shared Fargo runs with FARGO_EFS_MOUNT_ATTEMPT_SECONDS=0.2 (conftest), so a mount blocked by security
groups fails after 3 short attempts instead of efs-utils' 3 x 15 s.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import TEST_IMAGE, FargoProcess, import_test_image, wait_for_task
from tests.e2e.test_tasks import host_leftovers
from tests.e2e.test_vpc_networking import logs

EFS_PREFIX = "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:"
ZONE_A_SUBNET = "subnet-fargo-default-1a"
ZONE_B_SUBNET = "subnet-fargo-default-1b"
DEFAULT_SUBNETS = ["subnet-fargo-default-1a", "subnet-fargo-default-1b", "subnet-fargo-default-1c"]
DEFAULT_GROUP = "sg-fargo-default"


def new_file_system(efs, subnets: list[str] = DEFAULT_SUBNETS, groups: list[str] | None = None) -> str:  # noqa: ANN001
    fs = efs.create_file_system(CreationToken=str(uuid.uuid4()))["FileSystemId"]
    for subnet in subnets:
        extra = {"SecurityGroups": groups} if groups is not None else {}
        efs.create_mount_target(FileSystemId=fs, SubnetId=subnet, **extra)
    return fs


def efs_task_definition(ecs, family: str, command: str, efs_config: dict, user: str | None = None,  # noqa: ANN001
                        read_only: bool = False) -> str:
    container: dict = {"name": "app", "image": TEST_IMAGE, "essential": True, "stopTimeout": 2,
                       "command": ["sh", "-c", command],
                       "mountPoints": [{"sourceVolume": "shared", "containerPath": "/mnt/efs",
                                        "readOnly": read_only}]}
    if user:
        container["user"] = user
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[container],
        volumes=[{"name": "shared", "efsVolumeConfiguration": efs_config}])["taskDefinition"]["taskDefinitionArn"]


def run_in(ecs, td: str, subnet: str = ZONE_A_SUBNET, groups: list[str] | None = None,  # noqa: ANN001
           **extra) -> dict:
    awsvpc: dict = {"subnets": [subnet]}
    if groups:
        awsvpc["securityGroups"] = groups
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": awsvpc}, **extra)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]


def run_to_end(f: FargoProcess, td: str, **kwargs) -> tuple[dict, str]:  # noqa: ANN003
    ecs = f.client("ecs")
    task = wait_for_task(ecs, run_in(ecs, td, **kwargs)["taskArn"], "STOPPED", 60)
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1], f.network_prefix) == []
    assert efs_mounts(f) == []
    return task, logs(f, task)


def efs_mounts(f: FargoProcess) -> list[str]:
    """Mounts under the data dir's tasks (each task's EFS mounts live there)."""
    root = str((f.data_dir / "tasks").resolve())
    with open("/proc/self/mountinfo") as mi:
        return [line.split()[4] for line in mi if line.split()[4].startswith(root) and "/efs" in line.split()[4]]


def fs_dir(f: FargoProcess, fs: str) -> Path:
    return f.data_dir / "efs" / fs


@pytest.fixture(scope="module")
def shared_fs(runner_fargo: FargoProcess) -> str:
    return new_file_system(runner_fargo.client("efs"))


def test_files_written_by_one_task_are_read_by_the_next(runner_fargo: FargoProcess, shared_fs: str) -> None:
    ecs = runner_fargo.client("ecs")
    writer = efs_task_definition(ecs, "efs-writer", "echo hello from a task > /mnt/efs/greeting",
                                 {"fileSystemId": shared_fs})
    task, _ = run_to_end(runner_fargo, writer)
    assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
    assert (fs_dir(runner_fargo, shared_fs) / "greeting").read_text() == "hello from a task\n"
    reader = efs_task_definition(ecs, "efs-reader", "exec 2>&1; cat /mnt/efs/greeting; echo nope > /mnt/efs/other",
                                 {"fileSystemId": shared_fs}, read_only=True)
    task, out = run_to_end(runner_fargo, reader)
    assert "hello from a task" in out
    assert "Read-only file system" in out
    assert not (fs_dir(runner_fargo, shared_fs) / "other").exists()


def test_root_directory_mounts_a_subtree_and_a_missing_one_stops_the_task(runner_fargo: FargoProcess,
                                                                         shared_fs: str) -> None:
    ecs = runner_fargo.client("ecs")
    (fs_dir(runner_fargo, shared_fs) / "projects" / "p1").mkdir(parents=True, exist_ok=True)
    (fs_dir(runner_fargo, shared_fs) / "projects" / "p1" / "readme").write_text("p1\n")
    td = efs_task_definition(ecs, "efs-subtree", "cat /mnt/efs/readme; ls /mnt/efs/../",
                             {"fileSystemId": shared_fs, "rootDirectory": "/projects/p1"})
    described = ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]
    assert described["volumes"][0]["efsVolumeConfiguration"]["rootDirectory"] == "/projects/p1"
    _, out = run_to_end(runner_fargo, td)
    assert "p1" in out.splitlines()[0]
    assert "projects" not in out  # `..` of the mount point is the container's /mnt, not the file system's root

    missing = efs_task_definition(ecs, "efs-missing-dir", "true",
                                  {"fileSystemId": shared_fs, "rootDirectory": "/no/such/dir"})
    task, _ = run_to_end(runner_fargo, missing)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        f"{EFS_PREFIX} stderr: b'mount.nfs4: mounting {shared_fs}.efs.us-east-1.amazonaws.com:/no/such/dir failed, "
        "reason given by server: No such file or directory' : unsuccessful EFS utils command execution; code: 32")


def test_an_access_point_creates_its_root_and_makes_every_file_its_posix_users(runner_fargo: FargoProcess,
                                                                                 shared_fs: str) -> None:
    efs, ecs = runner_fargo.client("efs"), runner_fargo.client("ecs")
    ap = efs.create_access_point(FileSystemId=shared_fs, PosixUser={"Uid": 1000, "Gid": 1000},
                                 RootDirectory={"Path": "/apps/one", "CreationInfo": {
                                     "OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "750"}})["AccessPointId"]
    (fs_dir(runner_fargo, shared_fs) / "outside-secret").write_text("secret\n")
    script = ("touch /mnt/efs/by-root && mkdir /mnt/efs/sub && ls -ln /mnt/efs; "
              "cat /mnt/efs/../outside-secret || echo confined; ln -s ../../outside-secret /mnt/efs/escape; "
              "cat /mnt/efs/escape || echo symlink-confined")
    for user in (None, "1234"):  # root in the container, then another uid: both write as the PosixUser
        td = efs_task_definition(ecs, f"efs-ap-{user or 'root'}", script.replace("by-root", f"by-{user or 'root'}")
                                 .replace("/sub", f"/sub-{user or 'root'}"),
                                 {"fileSystemId": shared_fs, "transitEncryption": "ENABLED",
                                  "authorizationConfig": {"accessPointId": ap, "iam": "DISABLED"}}, user=user)
        described = ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]
        assert described["volumes"][0]["efsVolumeConfiguration"]["rootDirectory"] == "/"
        task, out = run_to_end(runner_fargo, td)
        assert task["containers"][0].get("exitCode") == 0, (task.get("stoppedReason"), out)
        assert "confined" in out and "symlink-confined" in out and "secret" not in out.replace("outside-secret", "")
    root = fs_dir(runner_fargo, shared_fs) / "apps" / "one"
    info = root.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 1000, 0o750)
    for name in ("by-root", "sub-root", "by-1234", "sub-1234"):
        made = (root / name).stat()
        assert (made.st_uid, made.st_gid) == (1000, 1000), name


def test_an_access_point_path_through_a_planted_symlink_is_not_followed(runner_fargo: FargoProcess,
                                                                        shared_fs: str, tmp_path: Path) -> None:
    efs, ecs = runner_fargo.client("efs"), runner_fargo.client("ecs")
    target = tmp_path / "host-dir"
    target.mkdir()
    os.symlink(target, fs_dir(runner_fargo, shared_fs) / "planted")  # as a task with the whole fs could do
    ap = efs.create_access_point(FileSystemId=shared_fs, PosixUser={"Uid": 1000, "Gid": 1000},
                                 RootDirectory={"Path": "/planted/inside", "CreationInfo": {
                                     "OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "755"}})["AccessPointId"]
    td = efs_task_definition(ecs, "efs-ap-symlink", "touch /mnt/efs/x",
                             {"fileSystemId": shared_fs, "transitEncryption": "ENABLED",
                              "authorizationConfig": {"accessPointId": ap}})
    task, _ = run_to_end(runner_fargo, td)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith(EFS_PREFIX)
    assert list(target.iterdir()) == []


def test_security_groups_that_block_nfs_time_the_mount_out(runner_fargo: FargoProcess) -> None:
    efs, ecs, ec2 = (runner_fargo.client(s) for s in ("efs", "ecs", "ec2"))
    closed = ec2.create_security_group(GroupName=f"efs-closed-{uuid.uuid4().hex[:6]}", Description="no ingress",
                                       VpcId="vpc-fargo-default")["GroupId"]
    fs = new_file_system(efs, [ZONE_A_SUBNET], [closed])
    td = efs_task_definition(ecs, "efs-blocked", "true", {"fileSystemId": fs})
    task, _ = run_to_end(runner_fargo, td)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        f"{EFS_PREFIX} stderr: Mount attempt 1/3 failed due to timeout after 0.2 sec, wait 0 sec before next "
        "attempt. Mount attempt 2/3 failed due to timeout after 0.2 sec, wait 0 sec before next attempt. "
        "b'mount.nfs4: Connection timed out' : unsuccessful EFS utils command execution; code: 32")
    # letting NFS in from the task's group makes the same mount work
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": DEFAULT_GROUP}]}])
    task, _ = run_to_end(runner_fargo, td)
    assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")


def test_no_mount_target_in_the_zone_or_no_file_system_stops_the_task(runner_fargo: FargoProcess) -> None:
    efs, ecs = runner_fargo.client("efs"), runner_fargo.client("ecs")
    fs = new_file_system(efs, [ZONE_A_SUBNET])
    td = efs_task_definition(ecs, "efs-other-zone", "true", {"fileSystemId": fs})
    task, _ = run_to_end(runner_fargo, td, subnet=ZONE_B_SUBNET)
    assert task["stoppedReason"] == (
        f'{EFS_PREFIX} stderr: Failed to resolve "{fs}.efs.us-east-1.amazonaws.com" - check that your file system '
        "ID is correct, and ensure that the VPC has an EFS mount target for this file system ID. See "
        "https://docs.aws.amazon.com/console/efs/mount-dns-name for more detail. Attempting to lookup mount target "
        "ip address using botocore. Failed to import necessary dependency botocore, please install botocore first. "
        ": unsuccessful EFS utils command execution; code: 1")
    gone = efs_task_definition(ecs, "efs-no-fs", "true", {"fileSystemId": "fs-0123456789abcdef0"})
    task, _ = run_to_end(runner_fargo, gone)
    assert task["stopCode"] == "TaskFailedToStart" and task["stoppedReason"].startswith(EFS_PREFIX)
    no_ap = efs_task_definition(ecs, "efs-no-ap", "true", {
        "fileSystemId": fs, "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0"}})
    task, _ = run_to_end(runner_fargo, no_ap)
    assert task["stopCode"] == "TaskFailedToStart" and task["stoppedReason"].startswith(EFS_PREFIX)


def test_efs_volumes_need_platform_1_4_0(runner_fargo: FargoProcess, shared_fs: str) -> None:
    ecs = runner_fargo.client("ecs")
    td = efs_task_definition(ecs, "efs-old-platform", "true", {"fileSystemId": shared_fs})
    with pytest.raises(ClientError) as e:
        run_in(ecs, td, platformVersion="1.3.0")
    assert e.value.response["Error"]["Code"] == "PlatformTaskDefinitionIncompatibilityException"
    assert e.value.response["Error"]["Message"] == "One or more of the requested capabilities are not supported."


def test_efs_data_and_mounts_survive_a_kill_of_fargo_up_and_nothing_is_left(fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir).start()
    try:
        import_test_image(f)
        efs, ecs = f.client("efs"), f.client("ecs")
        ecs.create_cluster()
        fs = new_file_system(efs, [ZONE_A_SUBNET])
        td = efs_task_definition(ecs, "efs-survivor", "echo before > /mnt/efs/a; trap 'exit 0' TERM; "
                                 "while true; do sleep 0.2; [ -f /mnt/efs/go ] && cp /mnt/efs/a /mnt/efs/b; done",
                                 {"fileSystemId": fs})
        task = wait_for_task(ecs, run_in(ecs, td)["taskArn"], "RUNNING")
        assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
        f.stop(signal.SIGKILL)
        f.start()
        (fs_dir(f, fs) / "go").write_text("")  # the task still has its mount after the restart
        deadline_ok = _wait_for_file(fs_dir(f, fs) / "b")
        assert deadline_ok, "the running task lost its EFS mount across the restart"
        ecs.stop_task(task=task["taskArn"])
        stopped = wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
        assert host_leftovers(stopped["taskArn"].rsplit("/", 1)[-1], f.network_prefix) == []
        assert efs_mounts(f) == []
        f.stop()
        f.start()
        reader = efs_task_definition(f.client("ecs"), "efs-after-restart", "cat /mnt/efs/b", {"fileSystemId": fs})
        task, out = run_to_end(f, reader)
        assert "before" in out
    finally:
        f.stop()
    assert subprocess.run(["grep", "-c", str(fresh_fargo_dir), "/proc/self/mountinfo"],
                          capture_output=True, text=True).stdout.strip() in ("", "0")


def _wait_for_file(path: Path, timeout: float = 15) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


def test_efs_root_puts_file_systems_on_the_given_filesystem(fresh_fargo_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-efs"  # stands for an NFS/CephFS mount every host has at the same path
    shared.mkdir()
    f = FargoProcess(fresh_fargo_dir, extra_args=["--efs-root", str(shared)]).start()
    try:
        import_test_image(f)
        efs, ecs = f.client("efs"), f.client("ecs")
        ecs.create_cluster()
        fs = new_file_system(efs, [ZONE_A_SUBNET])
        assert (shared / fs).is_dir() and not (fresh_fargo_dir / "efs" / fs).exists()
        td = efs_task_definition(ecs, "efs-shared-root", "echo on the shared root > /mnt/efs/where",
                                 {"fileSystemId": fs})
        task = wait_for_task(ecs, run_in(ecs, td)["taskArn"], "STOPPED", 60)
        assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
        assert (shared / fs / "where").read_text() == "on the shared root\n"
        for target in efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]:
            efs.delete_mount_target(MountTargetId=target["MountTargetId"])
        efs.delete_file_system(FileSystemId=fs)
        deadline_gone = _wait_until_gone(shared / fs)
        assert deadline_gone, "DeleteFileSystem left the file system's files"
    finally:
        f.stop()


def _wait_until_gone(path: Path, timeout: float = 10) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.1)
    return False
