"""Task definitions through boto3 and the AWS CLI against a real `fargo up`."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

TD_ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition/{}:{}"


def fargate_td(family: str, **extra) -> dict:
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "fargo.local/busybox:latest", "command": ["true"]}],
        **extra,
    }


def test_register_returns_what_aws_fills_in(ecs) -> None:
    out = ecs.register_task_definition(**fargate_td("filled", tags=[{"key": "a", "value": "b"}]))
    td = out["taskDefinition"]
    assert td["taskDefinitionArn"] == TD_ARN.format("filled", 1)
    assert td["revision"] == 1 and td["status"] == "ACTIVE"
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["cpu"] == "256" and td["memory"] == "512"
    assert "registeredAt" in td
    c = td["containerDefinitions"][0]
    assert c["essential"] is True
    assert c["cpu"] == 0
    assert c["portMappings"] == [] and c["environment"] == [] and c["mountPoints"] == [] and c["volumesFrom"] == []
    assert out["tags"] == [{"key": "a", "value": "b"}]


def test_cpu_and_memory_in_vcpu_and_gb_forms_are_stored_as_units(ecs) -> None:
    td = ecs.register_task_definition(**fargate_td("forms", cpu="1 vCPU", memory="2 GB"))["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("1024", "2048")


def test_revisions_count_up_and_a_bare_family_means_the_latest_active(ecs) -> None:
    for _ in range(3):
        ecs.register_task_definition(**fargate_td("counting"))
    assert ecs.describe_task_definition(taskDefinition="counting")["taskDefinition"]["revision"] == 3
    ecs.deregister_task_definition(taskDefinition="counting:3")
    assert ecs.describe_task_definition(taskDefinition="counting")["taskDefinition"]["revision"] == 2
    inactive = ecs.describe_task_definition(taskDefinition=TD_ARN.format("counting", 3))["taskDefinition"]
    assert inactive["status"] == "INACTIVE"


def test_describe_unknown_task_definition_is_a_client_exception(ecs) -> None:
    with pytest.raises(ClientError) as e:
        ecs.describe_task_definition(taskDefinition="no-such-family")
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert e.value.response["Error"]["Message"] == "Unable to describe task definition."


def test_fargate_validation_errors_reach_the_client(ecs) -> None:
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(**fargate_td("bridge", networkMode="bridge"))
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert e.value.response["Error"]["Message"] == "Fargate only supports network mode \u2018awsvpc\u2019."
    bad = fargate_td("ptrace")
    bad["containerDefinitions"][0]["linuxParameters"] = {"capabilities": {"add": ["SYS_ADMIN"]}}
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(**bad)
    assert e.value.response["Error"]["Code"] == "ClientException"
    ok = fargate_td("ptrace")
    ok["containerDefinitions"][0]["linuxParameters"] = {"capabilities": {"add": ["SYS_PTRACE"]}}
    ecs.register_task_definition(**ok)


def test_list_task_definitions_filters_and_sorts(ecs) -> None:
    for fam in ("list-a", "list-b"):
        for _ in range(2):
            ecs.register_task_definition(**fargate_td(fam))
    asc = ecs.list_task_definitions(familyPrefix="list-a")["taskDefinitionArns"]
    assert asc == [TD_ARN.format("list-a", 1), TD_ARN.format("list-a", 2)]
    desc = ecs.list_task_definitions(familyPrefix="list-a", sort="DESC")["taskDefinitionArns"]
    assert desc == list(reversed(asc))
    ecs.deregister_task_definition(taskDefinition="list-b:1")
    assert ecs.list_task_definitions(familyPrefix="list-b")["taskDefinitionArns"] == [TD_ARN.format("list-b", 2)]
    assert ecs.list_task_definitions(familyPrefix="list-b", status="INACTIVE")["taskDefinitionArns"] == [
        TD_ARN.format("list-b", 1)]
    families = ecs.list_task_definition_families(familyPrefix="list-")["families"]
    assert families == ["list-a", "list-b"]


def test_families_with_no_active_revision_are_inactive(ecs) -> None:
    ecs.register_task_definition(**fargate_td("gone-family"))
    ecs.deregister_task_definition(taskDefinition="gone-family:1")
    assert "gone-family" not in ecs.list_task_definition_families(familyPrefix="gone-")["families"]
    assert ecs.list_task_definition_families(familyPrefix="gone-", status="INACTIVE")["families"] == ["gone-family"]


def test_delete_task_definitions_needs_deregistration_first(ecs) -> None:
    ecs.register_task_definition(**fargate_td("deletable"))
    out = ecs.delete_task_definitions(taskDefinitions=["deletable:1"])
    assert out["taskDefinitions"] == [] and len(out["failures"]) == 1
    ecs.deregister_task_definition(taskDefinition="deletable:1")
    out = ecs.delete_task_definitions(taskDefinitions=["deletable:1"])
    assert out["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"


def test_tags_on_task_definitions(ecs) -> None:
    arn = ecs.register_task_definition(**fargate_td("tagging"))["taskDefinition"]["taskDefinitionArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}, {"key": "team", "value": "x"}])
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "prod"}, {"key": "team", "value": "x"}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "prod"}]
    described = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert described["tags"] == [{"key": "env", "value": "prod"}]


def test_tagging_an_unknown_resource_fails(ecs) -> None:
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn="arn:aws:ecs:us-east-1:000000000000:cluster/ghost",
                         tags=[{"key": "a", "value": "b"}])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_aws_cli_registers_and_describes(fargo, tmp_path) -> None:
    path = tmp_path / "td.json"
    path.write_text(json.dumps(fargate_td("from-cli")))
    out = fargo.aws_json("ecs", "register-task-definition", "--cli-input-json", f"file://{path}")
    assert out["taskDefinition"]["taskDefinitionArn"] == TD_ARN.format("from-cli", 1)
    described = fargo.aws_json("ecs", "describe-task-definition", "--task-definition", "from-cli")
    assert described["taskDefinition"]["family"] == "from-cli"
    clusters = fargo.aws_json("ecs", "list-clusters")
    assert "clusterArns" in clusters
    failed = fargo.aws_cli("ecs", "describe-task-definition", "--task-definition", "nope", check=False)
    assert failed.returncode != 0 and "Unable to describe task definition." in failed.stderr
