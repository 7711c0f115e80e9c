"""Fargate tasks really run: RunTask through boto3, on the real containerd, runc, netns and cgroups."""
from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from fargo.network.task_eni import list_task_enis
from tests.e2e.conftest import FARGO, REPO, SHARED_PREFIX, TEST_IMAGE, FargoProcess, wait_for_task

NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-fargo-default-1a"]}}
FARGATE_DEFAULT_CAPS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
                        "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}
CAP_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
            "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "MKNOD": 27,
            "AUDIT_WRITE": 29, "SETFCAP": 31}


def register(ecs, family: str, *containers: dict, **extra) -> str:  # noqa: ANN001
    defs = []
    for c in containers:
        defs.append({"image": TEST_IMAGE, **c})
    td = {"family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
          "memory": "512", "containerDefinitions": defs, **extra}
    return ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, td: str, **extra) -> dict:  # noqa: ANN001
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK, **extra)
    assert out["failures"] == []
    return out["tasks"][0]


def logs(f: FargoProcess, task_arn: str, container: str | None = None) -> str:
    args = FARGO + ["logs", task_arn.rsplit("/", 1)[-1], "--endpoint", f.endpoint]
    if container:
        args += ["--container", container]
    return subprocess.run(args, capture_output=True, text=True, check=True, cwd=REPO).stdout


def run_to_completion(f: FargoProcess, family: str, command: str, timeout: float = 60, **container) -> tuple[dict, str]:
    ecs = f.client("ecs")
    td = register(ecs, family, {"name": "app", "command": ["sh", "-c", command], **container})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED", timeout)
    return task, logs(f, task["taskArn"])


def host_leftovers(task_id: str, prefix: str = SHARED_PREFIX, data_dir: Path | None = None) -> list[str]:
    """What of a task is still on the host: its netns, its ENI's port in a VPC router, cgroups, mounts in its
    task dir (its ephemeral volume, EFS), loop devices bound to files of its task dir; with `data_dir`, also
    its volume's image files."""
    found = []
    if Path(f"/run/netns/{prefix}-{task_id}").exists():
        found.append("netns")
    if any(eni.task_id == task_id for eni in list_task_enis(prefix)):
        found.append("ENI port")
    for controller in ("memory", "cpu", "pids"):
        if Path(f"/sys/fs/cgroup/{controller}/fargo/{task_id}").exists():
            found.append(f"cgroup {controller}")
    in_task_dir = f"/tasks/{task_id}/"  # task ids are unique: no need to know whose data dir it is
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if in_task_dir in point + "/":
            found.append(f"mount {point}")
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if in_task_dir in backing.read_text():
                found.append(f"loop device {backing.parts[3]}")
        except OSError:
            pass  # unbound while we looked
    if data_dir is not None:
        found += [f"file {p.name}" for p in (data_dir / "tasks" / task_id).glob("*.img*")]
    return found


def containerd_containers(f: FargoProcess) -> str:
    sock = f.data_dir / "containerd" / "containerd.sock"
    return subprocess.run(["ctr", "-a", str(sock), "-n", "fargo", "containers", "ls", "-q"],
                          capture_output=True, text=True).stdout


def containerd_snapshots(f: FargoProcess) -> str:
    sock = f.data_dir / "containerd" / "containerd.sock"
    return subprocess.run(["ctr", "-a", str(sock), "-n", "fargo", "snapshots", "ls"],
                          capture_output=True, text=True).stdout


def test_a_task_goes_through_fargates_lifecycle_and_stops_on_request(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "lifecycle", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    started = run(ecs, td, startedBy="tester", tags=[{"key": "k", "value": "v"}])
    assert started["lastStatus"] == "PROVISIONING" and started["desiredStatus"] == "RUNNING"
    assert started["attachments"][0]["status"] == "PRECREATED"
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:000000000000:task/default/[0-9a-f]{32}", started["taskArn"])
    task = wait_for_task(ecs, started["taskArn"], "RUNNING")
    assert task["lastStatus"] == "RUNNING"
    assert task["platformVersion"] == "1.4.0" and task["platformFamily"] == "Linux"
    assert task["launchType"] == "FARGATE" and task["availabilityZone"] == "us-east-1a"
    assert task["connectivity"] == "CONNECTED" and task["group"] == "family:lifecycle"
    assert task["cpu"] == "256" and task["memory"] == "512" and task["startedBy"] == "tester"
    assert task["ephemeralStorage"] == {"sizeInGiB": 20}
    for key in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "connectivityAt"):
        assert key in task, key
    assert task["createdAt"] <= task["pullStartedAt"] <= task["pullStoppedAt"] <= task["startedAt"]
    assert task["connectivityAt"] <= task["pullStartedAt"]  # images come in PENDING, after the ENI is attached
    eni = task["attachments"][0]
    assert eni["type"] == "ElasticNetworkInterface" and eni["status"] == "ATTACHED"
    details = {d["name"]: d["value"] for d in eni["details"]}
    ip = details["privateIPv4Address"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.213.0.0/20")
    assert details["privateDnsName"] == f"ip-{ip.replace('.', '-')}.ec2.internal"
    container = task["containers"][0]
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert re.fullmatch(task_id + r"-\d{10}", container["runtimeId"])
    assert container["lastStatus"] == "RUNNING" and container["imageDigest"].startswith("sha256:")
    assert container["networkInterfaces"][0]["privateIpv4Address"] == ip
    assert container["containerArn"].startswith(f"arn:aws:ecs:us-east-1:000000000000:container/default/{task_id}/")
    assert task["taskArn"] in ecs.list_tasks()["taskArns"]
    assert task["taskArn"] in ecs.list_tasks(startedBy="tester")["taskArns"]
    assert task["taskArn"] in ecs.list_tasks(family="lifecycle")["taskArns"]
    assert ecs.describe_tasks(tasks=[task_id], include=["TAGS"])["tasks"][0]["tags"] == [{"key": "k", "value": "v"}]
    # tags come only when asked for: the call with them did not change what later calls are handed
    assert ecs.describe_tasks(tasks=[task_id])["tasks"][0].get("tags", []) == []

    stopping = ecs.stop_task(task=task_id)["task"]
    assert stopping["desiredStatus"] == "STOPPED" and stopping["stopCode"] == "UserInitiated"
    assert stopping["stoppedReason"] == "Task stopped by user" and "stoppingAt" in stopping
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
    assert stopped["lastStatus"] == "STOPPED"
    # busybox sleep as PID 1 ignores SIGTERM: SIGKILL came after the 2 s stopTimeout
    assert stopped["containers"][0]["exitCode"] == 137
    assert stopped["stoppedAt"] >= stopped["executionStoppedAt"] >= stopped["stoppingAt"]
    assert stopped["attachments"][0]["status"] == "DELETED"
    assert task["taskArn"] not in ecs.list_tasks()["taskArns"]
    assert task["taskArn"] in ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    assert host_leftovers(task_id) == []
    assert container["runtimeId"] not in containerd_containers(runner_fargo)
    assert container["runtimeId"] not in containerd_snapshots(runner_fargo)


def test_stop_task_reason_is_recorded(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "reasoned", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    ecs.stop_task(task=task["taskArn"], reason="deploying v2")
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
    assert stopped["stoppedReason"] == "deploying v2" and stopped["stopCode"] == "UserInitiated"


def test_essential_container_exit_stops_task_with_its_exit_code(runner_fargo: FargoProcess) -> None:
    task, output = run_to_completion(runner_fargo, "exits", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["containers"][0]["exitCode"] == 3
    assert "to-stdout" in output and "to-stderr" in output
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []


def test_fargate_environment_and_hostname(runner_fargo: FargoProcess) -> None:
    _, output = run_to_completion(runner_fargo, "env", "env; echo HOST=$(hostname); cat /sys/class/net/eth1/mtu")
    assert "AWS_EXECUTION_ENV=AWS_ECS_FARGATE" in output
    assert "AWS_REGION=us-east-1" in output and "AWS_DEFAULT_REGION=us-east-1" in output
    assert re.search(r"ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/[0-9a-f]{32}-\d{10}", output)
    assert re.search(r"HOST=ip-10-213-\d+-\d+\.ec2\.internal", output)
    assert "\n9001\n" in output  # jumbo frames on the task ENI (1.4.0)


def test_overrides_replace_command_and_add_environment(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "overridden", {"name": "app", "command": ["echo", "original"],
                                      "environment": [{"name": "A", "value": "from-td"}]})
    task = run(ecs, td, overrides={"containerOverrides": [{
        "name": "app", "command": ["sh", "-c", "echo replaced A=$A B=$B"],
        "environment": [{"name": "B", "value": "from-override"}]}], "cpu": "512", "memory": "1024"})
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED")
    assert stopped["cpu"] == "512" and stopped["memory"] == "1024"
    out = logs(runner_fargo, task["taskArn"])
    assert "replaced A=from-td B=from-override" in out and "original" not in out


def _cap_names(output: str) -> set[str]:
    cap_eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", output).group(1), 16)
    return {name for name, bit in CAP_BITS.items() if cap_eff & (1 << bit)}


def test_capabilities_are_fargates_default_set_plus_sys_ptrace_when_added(runner_fargo: FargoProcess) -> None:
    _, plain = run_to_completion(runner_fargo, "caps", "grep CapEff /proc/self/status")
    assert _cap_names(plain) == FARGATE_DEFAULT_CAPS
    _, traced = run_to_completion(runner_fargo, "caps-ptrace", "grep CapEff /proc/self/status",
                                  linuxParameters={"capabilities": {"add": ["SYS_PTRACE"]}})
    assert _cap_names(traced) == FARGATE_DEFAULT_CAPS | {"SYS_PTRACE"}


def test_seccomp_is_on_and_setuid_binaries_still_work(runner_fargo: FargoProcess) -> None:
    from fargo.runtime.test_image import EUID_HELPER

    _, out = run_to_completion(runner_fargo, "seccomp",
                               f"grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; /{EUID_HELPER}; echo euid=$?",
                               user="1000")
    assert re.search(r"Seccomp:\s+2", out)  # Docker's default profile, in filter mode
    assert re.search(r"NoNewPrivs:\s+0", out)
    assert "euid=0" in out  # a setuid-root binary run by uid 1000 gets euid 0, as on Fargate


def test_user_readonly_root_and_nofile(runner_fargo: FargoProcess) -> None:
    _, out = run_to_completion(runner_fargo, "hardening",
                               "id -u; touch /x 2>/dev/null && echo WROTE || echo READONLY; ulimit -n",
                               user="1000", readonlyRootFilesystem=True)
    lines = out.split()
    assert lines[0] == "1000" and lines[1] == "READONLY"
    # Fargate's 65535 is capped to this host's hard limit, not refused
    assert int(lines[2]) == min(65535, __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1])


def test_oom_kill_is_reported_as_out_of_memory_error(runner_fargo: FargoProcess) -> None:
    task, _ = run_to_completion(runner_fargo, "oom", "head -c 300m /dev/zero | tail", memory=64)
    container = task["containers"][0]
    assert container["exitCode"] == 137
    assert container["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert task["stopCode"] == "EssentialContainerExited"


def test_missing_image_fails_with_cannot_pull_container_error(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "no-image", {"name": "app", "image": "example.invalid/nothing:latest"})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError: ")
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []


def test_a_command_that_does_not_exist_fails_with_cannot_start_container_error(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "no-command", {"name": "app", "command": ["/no/such/binary"]})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotStartContainerError: ")
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []
    assert task["containers"][0]["runtimeId"] not in containerd_containers(runner_fargo)
    assert task["containers"][0]["runtimeId"] not in containerd_snapshots(runner_fargo)


def test_containers_of_a_task_share_localhost(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "localhost",
                  {"name": "server", "essential": False, "command": ["sh", "-c", "echo pong | nc -l -p 8080"]},
                  {"name": "client", "command": ["sh", "-c", "for i in $(seq 50); do nc 127.0.0.1 8080 && exit 0; "
                                                     "sleep 0.1; done; exit 1"],
                   "dependsOn": [{"containerName": "server", "condition": "START"}]})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    assert "pong" in logs(runner_fargo, task["taskArn"], "client")


def test_depends_on_success_runs_containers_in_order(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "ordered",
                  {"name": "init", "essential": False, "command": ["sh", "-c", "sleep 1; echo init-done"]},
                  {"name": "app", "command": ["echo", "app-ran"],
                   "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    by_name = {c["name"]: c for c in task["containers"]}
    assert by_name["init"]["exitCode"] == 0 and by_name["app"]["exitCode"] == 0
    assert task["stopCode"] == "EssentialContainerExited"
    out = logs(runner_fargo, task["taskArn"])
    assert out.index("init-done") < out.index("app-ran")


def test_a_dependency_that_can_never_hold_stops_the_task(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "never",
                  {"name": "init", "essential": False, "command": ["sh", "-c", "exit 1"]},
                  {"name": "app", "command": ["echo", "never"],
                   "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert "init" in task["stoppedReason"]
    assert "never" not in logs(runner_fargo, task["taskArn"])


def test_run_task_count_and_client_token(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "counted", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    out = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK, count=3,
                       clientToken="token-1", group="batch:nightly")
    arns = [t["taskArn"] for t in out["tasks"]]
    assert {t["group"] for t in out["tasks"]} == {"batch:nightly"}
    assert len(set(arns)) == 3
    again = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK, count=3,
                         clientToken="token-1")
    assert [t["taskArn"] for t in again["tasks"]] == arns
    ips = set()
    for arn in arns:
        task = wait_for_task(ecs, arn, "RUNNING")
        ips.add(task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"])
    assert len(ips) == 3
    for arn in arns:
        ecs.stop_task(task=arn)
    for arn in arns:
        assert wait_for_task(ecs, arn, "STOPPED", 30)["lastStatus"] == "STOPPED"


def test_run_task_errors_are_aws_shaped(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "errors", {"name": "app", "command": ["true"]})

    def error_of(**kwargs) -> tuple[str, str]:
        with pytest.raises(ClientError) as e:
            ecs.run_task(**kwargs)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert error_of(taskDefinition=td, launchType="FARGATE") == (
        "InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    assert error_of(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK,
                    platformVersion="1.9.9") == ("PlatformUnknownException", "The specified platform does not exist.")
    code, _ = error_of(taskDefinition=td, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-nope"]}})
    assert code == "InvalidParameterException"
    assert error_of(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK,
                    overrides={"cpu": "256", "memory": "4096"}) == (
        "InvalidParameterException", "No Fargate configuration exists for given values.")
    code, _ = error_of(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK, cluster="no-cluster")
    assert code == "ClusterNotFoundException"
    assert error_of(taskDefinition="never-registered", launchType="FARGATE", networkConfiguration=NETWORK) == (
        "ClientException", "TaskDefinition not found.")
    ecs.deregister_task_definition(taskDefinition=td)
    assert error_of(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK) == (
        "InvalidParameterException", "TaskDefinition is inactive")
    with pytest.raises(ClientError) as e:
        ecs.stop_task(task="0123456789abcdef0123456789abcdef")
    assert e.value.response["Error"]["Message"] == "The referenced task was not found."
    out = ecs.describe_tasks(tasks=["0123456789abcdef0123456789abcdef"])
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "MISSING"


def test_delete_cluster_with_active_tasks_is_refused(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    ecs.create_cluster(clusterName="busy")
    td = register(ecs, "busy", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    task = ecs.run_task(cluster="busy", taskDefinition=td, launchType="FARGATE",
                        networkConfiguration=NETWORK)["tasks"][0]
    wait_for_task(ecs, task["taskArn"], "RUNNING", cluster="busy")
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster="busy")
    assert e.value.response["Error"]["Code"] == "ClusterContainsTasksException"
    assert ecs.describe_clusters(clusters=["busy"])["clusters"][0]["runningTasksCount"] == 1
    ecs.stop_task(cluster="busy", task=task["taskArn"])
    wait_for_task(ecs, task["taskArn"], "STOPPED", 30, cluster="busy")
    assert ecs.delete_cluster(cluster="busy")["cluster"]["status"] == "INACTIVE"


def test_platform_1_3_0_runs_as_itself(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "old-platform", {"name": "app", "command": ["cat", "/sys/class/net/eth1/mtu"]})
    task = run(ecs, td, platformVersion="1.3.0")
    stopped = wait_for_task(ecs, task["taskArn"], "STOPPED")
    assert stopped["platformVersion"] == "1.3.0" and "ephemeralStorage" not in stopped
    assert logs(runner_fargo, task["taskArn"]).strip() == "1500"
    # CAP_SYS_PTRACE came with 1.4.0 "across all available Fargate platform versions": 1.3.0 runs it too
    ptrace = register(ecs, "old-ptrace", {"name": "app", "command": ["grep", "CapEff", "/proc/self/status"],
                                          "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}}})
    traced = wait_for_task(ecs, run(ecs, ptrace, platformVersion="1.3.0")["taskArn"], "STOPPED")
    assert traced["platformVersion"] == "1.3.0" and traced["containers"][0]["exitCode"] == 0
    cap_eff = int(logs(runner_fargo, traced["taskArn"]).split()[-1], 16)
    assert cap_eff & (1 << 19), "CAP_SYS_PTRACE (bit 19) is in the container's effective set"
    latest = wait_for_task(ecs, run(ecs, td, platformVersion="LATEST")["taskArn"], "STOPPED")
    assert latest["platformVersion"] == "1.4.0"


def _cgroup(controller: str, *parts: str) -> str:
    return Path("/sys/fs/cgroup", controller, "fargo", *parts).read_text().strip()


def test_task_and_container_cgroup_limits(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "limits", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2, "cpu": 128,
                                  "memory": 256, "memoryReservation": 128},
                  {"name": "side", "command": ["sleep", "3600"], "stopTimeout": 2}, cpu="512", memory="1024")
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "RUNNING")
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    app, side = (c["runtimeId"] for c in task["containers"])
    try:
        assert _cgroup("memory", task_id, "memory.limit_in_bytes") == str(1024 * 2**20)
        assert _cgroup("cpu", task_id, "cpu.cfs_quota_us") == str(50_000)  # half a CPU per 100 ms period
        assert _cgroup("memory", task_id, app, "memory.limit_in_bytes") == str(256 * 2**20)
        assert _cgroup("memory", task_id, app, "memory.soft_limit_in_bytes") == str(128 * 2**20)
        assert _cgroup("cpu", task_id, app, "cpu.shares") == "128"
        # a container without its own memory gets the task's, so its OOM kills are its own
        assert _cgroup("memory", task_id, side, "memory.limit_in_bytes") == str(1024 * 2**20)
        assert _cgroup("pids", task_id, app, "pids.max") == "4096"
    finally:
        ecs.stop_task(task=task_id)
        wait_for_task(ecs, task["taskArn"], "STOPPED", 30)
    assert host_leftovers(task_id) == []


def test_entry_point_and_working_directory(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "entry", {"name": "app", "entryPoint": ["sh", "-c", "pwd; echo entry $0"],
                                 "command": ["from-command"], "workingDirectory": "/tmp"})
    task = wait_for_task(ecs, run(ecs, td)["taskArn"], "STOPPED")
    assert logs(runner_fargo, task["taskArn"]).split() == ["/tmp", "entry", "from-command"]


def test_stopping_a_task_before_it_runs_leaves_nothing_behind(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "early-stop", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    tasks = ecs.run_task(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK, count=5)["tasks"]
    for t in tasks:
        ecs.stop_task(task=t["taskArn"], reason="changed my mind")
    for t in tasks:
        stopped = wait_for_task(ecs, t["taskArn"], "STOPPED", 30)
        assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "changed my mind"
        assert all(c["lastStatus"] == "STOPPED" for c in stopped["containers"])
        assert host_leftovers(t["taskArn"].rsplit("/", 1)[-1]) == []
        assert stopped["containers"][0].get("runtimeId", "-") not in containerd_containers(runner_fargo)
