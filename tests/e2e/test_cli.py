"""The `fargo` command: images and task output, as a user types them."""
from __future__ import annotations

import subprocess
import sys

from tests.e2e.conftest import FARGO, REPO, FargoProcess, wait_for_task
from tests.e2e.test_tasks import register, run


def fargo_cli(f: FargoProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(FARGO + list(args) + ["--endpoint", f.endpoint], capture_output=True, text=True,
                          cwd=REPO, check=check)


def test_image_import_with_a_name_and_image_ls(runner_fargo: FargoProcess, tmp_path) -> None:
    tar = tmp_path / "docker.tar"
    subprocess.run([sys.executable, "-m", "fargo.runtime.test_image", str(tar), "--format", "docker",
                    "--name", "example.com/team/tool:1.0"], check=True, cwd=REPO, capture_output=True)
    out = fargo_cli(runner_fargo, "image", "import", str(tar), "--name", "renamed/tool:2").stdout
    assert "docker.io/renamed/tool:2" in out
    listing = fargo_cli(runner_fargo, "image", "ls").stdout
    header, *rows = listing.splitlines()
    assert header.split() == ["REFERENCE", "DIGEST", "SIZE", "CREATED"]
    names = [r.split()[0] for r in rows]
    assert "fargo.local/busybox:latest" in names and "docker.io/renamed/tool:2" in names


def test_importing_a_file_that_is_not_an_image_fails_cleanly(runner_fargo: FargoProcess, tmp_path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tarball")
    result = fargo_cli(runner_fargo, "image", "import", str(junk), check=False)
    assert result.returncode == 1 and "cannot import image" in result.stderr


def test_logs_follow_prints_output_until_the_task_stops(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "chatty", {"name": "talker", "command": ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"]},
                  {"name": "other", "essential": False, "command": ["echo", "from-other"]})
    task = run(ecs, td)
    out = fargo_cli(runner_fargo, "logs", task["taskArn"].rsplit("/", 1)[-1], "--follow").stdout
    assert "talker | line 1" in out and "talker | line 3" in out and "other | from-other" in out
    assert wait_for_task(ecs, task["taskArn"], "STOPPED")["lastStatus"] == "STOPPED"
    only = fargo_cli(runner_fargo, "logs", task["taskArn"].rsplit("/", 1)[-1], "--container", "other").stdout
    assert only.strip() == "from-other"


def test_logs_of_an_unknown_task(runner_fargo: FargoProcess) -> None:
    result = fargo_cli(runner_fargo, "logs", "0" * 32, check=False)
    assert result.returncode == 1 and "The referenced task was not found." in result.stderr


def test_commands_say_when_fargo_is_not_running() -> None:
    result = subprocess.run(FARGO + ["image", "ls", "--endpoint", "http://127.0.0.1:9"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 1 and "is `fargo up` running?" in result.stderr


def test_tasks_lists_a_clusters_tasks_as_a_table(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    ecs.create_cluster(clusterName="listed")
    td = register(ecs, "listed", {"name": "app", "command": ["sleep", "3600"], "stopTimeout": 2})
    task = ecs.run_task(cluster="listed", taskDefinition=td, launchType="FARGATE",
                        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-fargo-default-1b"]}})["tasks"][0]
    running = wait_for_task(ecs, task["taskArn"], "RUNNING", cluster="listed")
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    header, *rows = fargo_cli(runner_fargo, "tasks", "--cluster", "listed").stdout.splitlines()
    assert header.split()[:4] == ["TASK", "DEFINITION", "STATUS", "HEALTH"]
    row = next(r.split() for r in rows if r.startswith(task_id))
    ip = running["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    assert row[1:6] == ["listed:1", "RUNNING", "UNKNOWN", ip, "us-east-1b"]
    ecs.stop_task(cluster="listed", task=task_id)
    wait_for_task(ecs, task["taskArn"], "STOPPED", 30, cluster="listed")
    assert not any(r.startswith(task_id) for r in fargo_cli(runner_fargo, "tasks", "--cluster", "listed").stdout.splitlines())
    stopped = [r for r in fargo_cli(runner_fargo, "tasks", "--cluster", "listed", "--all").stdout.splitlines()
               if r.startswith(task_id)]
    assert "STOPPED" in stopped[0] and "UserInitiated" in stopped[0]


def test_data_dir_finds_the_fargo_that_runs_there(runner_fargo: FargoProcess) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "AWS_ENDPOINT_URL"}
    result = subprocess.run(FARGO + ["image", "ls", "--data-dir", str(runner_fargo.data_dir)], capture_output=True,
                            text=True, cwd=REPO, env=env, check=True)
    assert "fargo.local/busybox:latest" in result.stdout
