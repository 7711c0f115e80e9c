"""`fargo up` options a user sets once: account, region and what LATEST means."""
from __future__ import annotations

import subprocess
from pathlib import Path

import boto3

from tests.e2e.conftest import FARGO, REPO, FargoProcess, free_port, import_test_image, wait_for_task


def test_account_region_and_latest_platform_options(fresh_fargo_dir: Path) -> None:
    f = FargoProcess(fresh_fargo_dir, free_port(), ["--account-id", "123456789012", "--region", "eu-west-1",
                                                     "--latest-platform", "1.3.0"]).start()
    try:
        import_test_image(f)
        ecs = boto3.client("ecs", endpoint_url=f.endpoint, region_name="eu-west-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
        ec2 = boto3.client("ec2", endpoint_url=f.endpoint, region_name="eu-west-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
        assert ecs.create_cluster()["cluster"]["clusterArn"] == "arn:aws:ecs:eu-west-1:123456789012:cluster/default"
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        assert zones == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["eu-west-1a"]}])["Subnets"][0]
        td = ecs.register_task_definition(
            family="latest", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": "fargo.local/busybox:latest", "command": ["hostname"]}],
        )["taskDefinition"]["taskDefinitionArn"]
        assert td == "arn:aws:ecs:eu-west-1:123456789012:task-definition/latest:1"
        task = ecs.run_task(taskDefinition=td, launchType="FARGATE", platformVersion="LATEST", networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet["SubnetId"]]}})["tasks"][0]
        assert task["taskArn"].startswith("arn:aws:ecs:eu-west-1:123456789012:task/default/")
        stopped = wait_for_task(ecs, task["taskArn"], "STOPPED")
        assert stopped["platformVersion"] == "1.3.0" and stopped["availabilityZone"] == "eu-west-1a"
        dns = {d["name"]: d["value"] for d in stopped["attachments"][0]["details"]}["privateDnsName"]
        assert dns.endswith(".eu-west-1.compute.internal")
    finally:
        f.stop()


def test_a_replica_without_an_agent_needs_a_postgresql_database(tmp_path: Path) -> None:
    out = subprocess.run(FARGO + ["up", "--no-agent", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                         cwd=REPO, timeout=30)
    assert out.returncode == 2 and "needs --database postgresql://" in out.stderr
