"""Clusters through boto3 against a real `fargo up`."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

ARN = "arn:aws:ecs:us-east-1:000000000000:cluster/{}"


def test_create_cluster_returns_an_active_cluster_with_a_long_arn(ecs) -> None:
    cluster = ecs.create_cluster(clusterName="blue", tags=[{"key": "team", "value": "a"}])["cluster"]
    assert cluster["clusterArn"] == ARN.format("blue")
    assert cluster["clusterName"] == "blue"
    assert cluster["status"] == "ACTIVE"
    assert cluster["runningTasksCount"] == 0 and cluster["pendingTasksCount"] == 0
    assert cluster["tags"] == [{"key": "team", "value": "a"}]


def test_create_cluster_without_a_name_creates_default(ecs) -> None:
    assert ecs.create_cluster()["cluster"]["clusterName"] == "default"


def test_create_cluster_twice_returns_the_same_cluster(ecs) -> None:
    first = ecs.create_cluster(clusterName="twice")["cluster"]
    second = ecs.create_cluster(clusterName="twice")["cluster"]
    assert first["clusterArn"] == second["clusterArn"]


def test_describe_clusters_reports_unknown_ones_as_missing_failures(ecs) -> None:
    ecs.create_cluster(clusterName="known")
    out = ecs.describe_clusters(clusters=["known", ARN.format("nope")])
    assert [c["clusterName"] for c in out["clusters"]] == ["known"]
    assert out["failures"] == [{"arn": ARN.format("nope"), "reason": "MISSING"}]


def test_describe_clusters_includes_tags_only_when_asked(ecs) -> None:
    ecs.create_cluster(clusterName="tagged", tags=[{"key": "k", "value": "v"}])
    plain = ecs.describe_clusters(clusters=["tagged"])["clusters"][0]
    assert plain.get("tags", []) == []
    tagged = ecs.describe_clusters(clusters=["tagged"], include=["TAGS"])["clusters"][0]
    assert tagged["tags"] == [{"key": "k", "value": "v"}]


def test_list_clusters_pages_with_next_token(ecs) -> None:
    for i in range(5):
        ecs.create_cluster(clusterName=f"page-{i}")
    seen, token = [], None
    while True:
        kwargs = {"maxResults": 2} | ({"nextToken": token} if token else {})
        page = ecs.list_clusters(**kwargs)
        assert len(page["clusterArns"]) <= 2
        seen += page["clusterArns"]
        token = page.get("nextToken")
        if not token:
            break
    assert {ARN.format(f"page-{i}") for i in range(5)} <= set(seen)
    assert len(seen) == len(set(seen))
    paginated = [a for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 3})
                 for a in p["clusterArns"]]
    assert sorted(paginated) == sorted(seen)


def test_delete_cluster_makes_it_inactive_and_unlisted(ecs) -> None:
    ecs.create_cluster(clusterName="doomed")
    deleted = ecs.delete_cluster(cluster="doomed")["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert ARN.format("doomed") not in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_clusters(clusters=["doomed"])["clusters"][0]["status"] == "INACTIVE"


def test_delete_unknown_cluster_is_cluster_not_found(ecs) -> None:
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster="never-was")
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    assert e.value.response["Error"]["Message"] == "Cluster not found."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bad_max_results_is_invalid_parameter(ecs) -> None:
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(maxResults=1000)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
