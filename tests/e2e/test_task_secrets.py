"""Secrets in tasks as Fargate 1.4.0 injects them, through boto3 and the AWS CLI on real tasks: every valueFrom
form of Secrets Manager and SSM becomes the container's environment; logConfiguration.secretOptions are
fetched too; a missing or deleted secret stops the task with Fargate's exact text (1.3.0: its own); the
execution role is required at registration; and the value appears nowhere but in the container.

The tasks run in the default subnet without a public IP: Fargo's secrets endpoint is reached over the task
ENI through the VPC endpoint, as a private subnet with interface endpoints reaches AWS's.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import FargoProcess, wait_for_task
from tests.e2e.test_tasks import host_leftovers, logs, register, run

ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
REGION, ACCOUNT = "us-east-1", "000000000000"
PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "


def _checks(expected: dict[str, str]) -> str:
    """A script that says `<NAME>=ok` or `<NAME>=wrong` for each variable. It holds only each value's sha256,
    since the command is part of the task definition: the values must appear nowhere but in the container."""
    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()
    return "; ".join(f'if [ "$(printf %s "${name}" | sha256sum | cut -c1-64)" = {digest(value)} ]; '
                     f"then echo {name}=ok; else echo {name}=wrong; fi" for name, value in expected.items())


def _run_to_stop(f: FargoProcess, td: str, **extra) -> tuple[dict, str]:  # noqa: ANN003
    ecs = f.client("ecs")
    task = wait_for_task(ecs, run(ecs, td, **extra)["taskArn"], "STOPPED", 60)
    return task, logs(f, task["taskArn"])


def _secret(f: FargoProcess, value: str, name: str | None = None) -> dict:
    return f.client("secretsmanager").create_secret(Name=name or f"s-{uuid.uuid4().hex[:8]}", SecretString=value)


def test_every_value_from_form_becomes_the_containers_environment(runner_fargo: FargoProcess) -> None:
    sm, ssm = runner_fargo.client("secretsmanager"), runner_fargo.client("ssm")
    unique = uuid.uuid4().hex[:8]
    whole = _secret(runner_fargo, f"whole-{unique}")
    doc = _secret(runner_fargo, json.dumps({"username": f"u-{unique}", "port": 5432}))
    staged = _secret(runner_fargo, f"first-{unique}")
    second = sm.put_secret_value(SecretId=staged["ARN"], SecretString=f"second-{unique}")
    ssm.put_parameter(Name=f"/app/{unique}/plain", Value=f"plain-{unique}", Type="String")
    ssm.put_parameter(Name=f"/app/{unique}/secure", Value=f"secure-{unique}", Type="SecureString")
    ssm.put_parameter(Name=f"list-{unique}", Value="a,b,c", Type="StringList")
    expected = {
        "WHOLE": f"whole-{unique}", "USERNAME": f"u-{unique}", "PORT": "5432", "PREVIOUS": f"first-{unique}",
        "BY_ID": f"second-{unique}", "CURRENT": f"second-{unique}", "PLAIN": f"plain-{unique}",
        "SECURE": f"secure-{unique}", "BY_ARN": f"secure-{unique}", "LIST": "a,b,c",
    }
    secrets = [
        {"name": "WHOLE", "valueFrom": whole["ARN"]},
        {"name": "USERNAME", "valueFrom": f"{doc['ARN']}:username::"},
        {"name": "PORT", "valueFrom": f"{doc['ARN']}:port::"},
        {"name": "PREVIOUS", "valueFrom": f"{staged['ARN']}::AWSPREVIOUS:"},
        {"name": "BY_ID", "valueFrom": f"{staged['ARN']}:::{second['VersionId']}"},
        {"name": "CURRENT", "valueFrom": staged["ARN"]},
        {"name": "PLAIN", "valueFrom": f"/app/{unique}/plain"},
        {"name": "SECURE", "valueFrom": f"/app/{unique}/secure"},
        {"name": "BY_ARN", "valueFrom": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/{unique}/secure"},
        {"name": "LIST", "valueFrom": f"list-{unique}"},
    ]
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "secrets-forms", {"name": "app", "command": ["sh", "-c", _checks(expected)],
                                         "secrets": secrets}, executionRoleArn=ROLE)
    task, output = _run_to_stop(runner_fargo, td)
    assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
    assert sorted(output.split()) == sorted(f"{name}=ok" for name in expected)
    # A String parameter is not a secret (kept plain, as SSM does); 5432 could be any number.
    _assert_nowhere(runner_fargo, [v for k, v in expected.items() if k not in ("LIST", "PORT", "PLAIN")], task, td)


def _assert_nowhere(f: FargoProcess, values: list[str], task: dict, td: str) -> None:
    """No value in an API answer, Fargo's log, `fargo logs`, the process list, or a file of Fargo's data dir
    (containerd's copy of the container's own spec aside: that is the container's environment)."""
    ecs = f.client("ecs")
    answers = json.dumps([ecs.describe_tasks(tasks=[task["taskArn"]]), ecs.describe_task_definition(taskDefinition=td),
                          f.client("secretsmanager").list_secrets(), f.client("ssm").describe_parameters()],
                         default=str)
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    fargo_logs = logs(f, task["taskArn"])
    leaks = []
    for value in values:
        for where, text in (("API", answers), ("processes", processes), ("fargo logs", fargo_logs),
                            ("Fargo's log", f.log_path.read_text(errors="replace"))):
            if value in text:
                leaks.append(f"{value} in {where}")
        found = subprocess.run(["grep", "-rlaF", "--exclude-dir=containerd", "--exclude=*.img*", value, str(f.data_dir)],
                               capture_output=True, text=True).stdout.split()
        leaks += [f"{value} in {Path(p).relative_to(f.data_dir)}" for p in found]
    assert leaks == [], "\n".join(leaks)


def test_a_missing_secret_stops_the_task_with_fargates_text(runner_fargo: FargoProcess) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:nowhere-AbCdEf"
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "secrets-missing", {"name": "app", "command": ["true"],
                                           "secrets": [{"name": "X", "valueFrom": arn}]}, executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        f"{PREFIX}unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch "
        f"secret {arn} from secrets manager: ResourceNotFoundException: Secrets Manager can't find the "
        "specified secret.")
    assert "pullStartedAt" not in task  # secrets come before any pull
    assert host_leftovers(task["taskArn"].rsplit("/", 1)[-1]) == []


def test_a_secret_marked_for_deletion_stops_the_task(runner_fargo: FargoProcess) -> None:
    secret = _secret(runner_fargo, "soon-gone")
    runner_fargo.client("secretsmanager").delete_secret(SecretId=secret["ARN"], RecoveryWindowInDays=7)
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "secrets-deleted", {"name": "app", "command": ["true"],
                                           "secrets": [{"name": "X", "valueFrom": secret["ARN"]}]},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["stoppedReason"] == (
        f"{PREFIX}unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch "
        f"secret {secret['ARN']} from secrets manager: InvalidRequestException: You can't perform this operation "
        "on the secret because it was marked for deletion.")


def test_a_missing_json_key_and_a_missing_parameter_stop_the_task(runner_fargo: FargoProcess) -> None:
    doc = _secret(runner_fargo, json.dumps({"a": "b"}))
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "secrets-key", {"name": "app", "command": ["true"],
                                       "secrets": [{"name": "X", "valueFrom": f"{doc['ARN']}:nokey::"}]},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["stoppedReason"] == (f"{PREFIX}unable to retrieve secret from asm: service call has been retried "
                                     "1 time(s): retrieved secret from Secrets Manager did not contain json key nokey")
    td = register(ecs, "secrets-ssm-missing", {"name": "app", "command": ["true"],
                                               "secrets": [{"name": "X", "valueFrom": "/no/such/parameter"}]},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["stoppedReason"] == (f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried "
                                     "1 time(s): invalid ssm parameters: /no/such/parameter")


def test_on_1_3_0_a_missing_parameter_gives_the_ecs_agents_text(runner_fargo: FargoProcess) -> None:
    ecs = runner_fargo.client("ecs")
    td = register(ecs, "secrets-130", {"name": "app", "command": ["true"],
                                       "secrets": [{"name": "X", "valueFrom": "/no/such/parameter"}]},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td, platformVersion="1.3.0")
    assert task["stoppedReason"] == ("Fetching secret data from SSM Parameter Store in us-east-1: "
                                     "invalid ssm parameters: /no/such/parameter")


def test_log_secret_options_are_fetched_before_the_task_starts(runner_fargo: FargoProcess) -> None:
    token = _secret(runner_fargo, "splunk-token-value")
    ecs = runner_fargo.client("ecs")
    good = {"logDriver": "splunk", "options": {"splunk-url": "https://splunk.invalid:8088"},
            "secretOptions": [{"name": "splunk-token", "valueFrom": token["ARN"]}]}
    td = register(ecs, "secret-options", {"name": "app", "command": ["true"], "logConfiguration": good},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["containers"][0].get("exitCode") == 0, task.get("stoppedReason")
    missing = dict(good, secretOptions=[{"name": "splunk-token", "valueFrom": "/missing/token"}])
    td = register(ecs, "secret-options-missing", {"name": "app", "command": ["true"], "logConfiguration": missing},
                  executionRoleArn=ROLE)
    task, _ = _run_to_stop(runner_fargo, td)
    assert task["stoppedReason"].endswith("invalid ssm parameters: /missing/token")


@pytest.mark.parametrize("field, message", [
    ("secrets", "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."),
    ("repositoryCredentials",
     "Private repository authentication requires that the task definition specify a value for executionRoleArn."),
])
def test_secrets_and_registry_credentials_need_an_execution_role(runner_fargo: FargoProcess, field: str,
                                                                  message: str) -> None:
    value = ([{"name": "X", "valueFrom": "/p"}] if field == "secrets"
             else {"credentialsParameter": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:c-AbCdEf"})
    ecs = runner_fargo.client("ecs")
    with pytest.raises(ClientError) as raised:
        register(ecs, "no-role", {"name": "app", "command": ["true"], field: value})
    assert raised.value.response["Error"] == {"Code": "ClientException", "Message": message}
    container = json.dumps([{"name": "app", "image": "busybox", "memory": 64, field: value}])
    proc = runner_fargo.aws_cli("ecs", "register-task-definition", "--family", "no-role",
                                "--container-definitions", container, check=False)
    assert proc.returncode != 0 and f"(ClientException) when calling the RegisterTaskDefinition operation: {message}" \
        in proc.stderr
