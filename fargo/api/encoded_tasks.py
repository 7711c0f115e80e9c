"""DescribeTasks' task documents as last encoded, by task ARN and version.

A waiter, a service scheduler or a dashboard asks for the same tasks again and again, and most of them have
not changed since: shaping and encoding each document was most of the cost of a DescribeTasks of 100 tasks.
Every change to a task document raises its `version` (RunTask, StopTask, each applied agent report), so a
document of a known ARN and version is encoded once.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from botocore.model import Shape

from fargo.api.protocols.json_bodies import EncodedJson, encoded

CACHED_TASKS = 4096  # far more than a host runs; a document is a few KiB


class EncodedTasks:
    def __init__(self, task_shape: Shape, size: int = CACHED_TASKS) -> None:
        self._shape = task_shape
        self._size = size
        self._held: OrderedDict[str, tuple[Any, EncodedJson]] = OrderedDict()

    def __call__(self, task: dict[str, Any]) -> EncodedJson:
        arn, version = task.get("taskArn"), task.get("version")
        held = self._held.get(arn) if isinstance(arn, str) else None
        if held is not None and version is not None and held[0] == version:
            self._held.move_to_end(arn)  # type: ignore[arg-type]
            return held[1]
        body = encoded(task, self._shape)
        if isinstance(arn, str) and version is not None:
            self._held[arn] = (version, body)
            self._held.move_to_end(arn)
            while len(self._held) > self._size:
                self._held.popitem(last=False)
        return body

    def describe_tasks(self, answer: dict[str, Any], with_tags: bool) -> dict[str, Any]:
        """DescribeTasks' answer with its tasks encoded (from the cache when unchanged). Tags come from
        another table than the document: an answer that includes them is encoded afresh."""
        if with_tags:
            return answer
        return {**answer, "tasks": [self(task) for task in answer["tasks"]]}
