"""The store keeps what the API promises: stopped tasks for an hour, revisions unique, tags in order."""
from __future__ import annotations

from pathlib import Path

from fargo.store.database import Store


def _task(task_id: str, stopped_at: float | None) -> dict:
    return {"taskArn": f"arn:aws:ecs:us-east-1:000000000000:task/default/{task_id}",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default", "desiredStatus": "STOPPED",
            "lastStatus": "STOPPED" if stopped_at else "RUNNING", "createdAt": 1.0, "stoppedAt": stopped_at}


def test_only_tasks_stopped_before_the_cutoff_are_purged_with_their_tags(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    now = 10_000.0
    for task_id, stopped in (("old", now - 3601), ("recent", now - 60), ("running", None)):
        store.insert_task(_task(task_id, stopped), task_id, "fam", None)
        store.put_tags(_task(task_id, stopped)["taskArn"], [{"key": "k", "value": task_id}])
    assert store.purge_stopped_tasks(now - 3600) == ["old"]
    assert store.get_task("old") is None and store.get_tags(_task("old", 1)["taskArn"]) == []
    assert store.get_task("recent") is not None and store.get_task("running") is not None


def test_a_taken_revision_is_refused_so_the_caller_takes_the_next(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    doc = {"taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1", "family": "f",
           "revision": 1, "status": "ACTIVE"}
    assert store.insert_task_definition(doc) is True
    assert store.insert_task_definition(dict(doc, taskDefinitionArn=doc["taskDefinitionArn"] + "x")) is False
    assert store.latest_revision("f") == 1
