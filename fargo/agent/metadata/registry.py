"""Which task owns which endpoint id and credentials id, and from where (VPC, source IP) it may ask."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fargo.agent.metadata.task_view import TaskView


@dataclass
class MetadataTask:
    task_id: str
    vpc_id: str
    ip: str  # the task ENI's address: requests are answered only from this VPC and this source IP
    endpoint_ids: dict[str, str]  # endpoint id (the container's DockerId) -> container name
    view: Callable[[], TaskView]  # a fresh snapshot
    stats: Callable[[str, int], dict[str, Any] | None]  # (docker id, 3 or 4) -> Docker stats JSON, None if none yet
    credentials_id: str | None = None


@dataclass
class TaskRegistry:
    _tasks: dict[str, MetadataTask] = field(default_factory=dict)
    _by_endpoint: dict[str, MetadataTask] = field(default_factory=dict)
    _by_credentials: dict[str, MetadataTask] = field(default_factory=dict)

    def register(self, task: MetadataTask) -> None:
        """Add the task, or replace what was registered under its id."""
        self.unregister(task.task_id)
        self._tasks[task.task_id] = task
        for endpoint_id in task.endpoint_ids:
            self._by_endpoint[endpoint_id] = task
        if task.credentials_id:
            self._by_credentials[task.credentials_id] = task

    def unregister(self, task_id: str) -> MetadataTask | None:
        task = self._tasks.pop(task_id, None)
        if task is None:
            return None
        for endpoint_id in task.endpoint_ids:
            if self._by_endpoint.get(endpoint_id) is task:
                del self._by_endpoint[endpoint_id]
        if task.credentials_id and self._by_credentials.get(task.credentials_id) is task:
            del self._by_credentials[task.credentials_id]
        return task

    def by_endpoint(self, vpc_id: str, peer_ip: str | None, endpoint_id: str) -> MetadataTask | None:
        """The task owning the id if the caller is that task; else None, as for an id nobody owns."""
        return _owned(self._by_endpoint.get(endpoint_id), vpc_id, peer_ip)

    def by_credentials(self, vpc_id: str, peer_ip: str | None, credentials_id: str) -> MetadataTask | None:
        return _owned(self._by_credentials.get(credentials_id), vpc_id, peer_ip)

    def tasks(self) -> list[MetadataTask]:
        return list(self._tasks.values())


def _owned(task: MetadataTask | None, vpc_id: str, peer_ip: str | None) -> MetadataTask | None:
    if task is None or task.vpc_id != vpc_id or task.ip != peer_ip:
        return None
    return task
