"""A service's deployments: ids, a new PRIMARY from the service's configuration, the rollback one, and the
running/pending counts the scheduler writes back to the service and to each deployment."""
from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable

from fargo.control.services import events
from fargo.control.services.service_docs import private, remember_deployment

_PENDING = ("PROVISIONING", "PENDING", "ACTIVATING")


def new_id() -> str:
    """`ecs-svc/` and 19 digits, as recent ECS ids look (random, zero-padded)."""
    return f"ecs-svc/{secrets.randbelow(10 ** 19):019d}"


def from_service(service: dict, deployment_id: str, platform_version: str, now: float) -> dict:
    """A PRIMARY deployment of what the service says now: definition, launch, platform, network."""
    d = {
        "id": deployment_id, "status": "PRIMARY", "taskDefinition": service["taskDefinition"],
        "desiredCount": service["desiredCount"], "pendingCount": 0, "runningCount": 0, "failedTasks": 0,
        "createdAt": now, "updatedAt": now, "platformVersion": platform_version, "platformFamily": "Linux",
        "rolloutState": "IN_PROGRESS", "rolloutStateReason": events.in_progress(deployment_id),
    }
    if "capacityProviderStrategy" in service:
        d["capacityProviderStrategy"] = copy.deepcopy(service["capacityProviderStrategy"])
    else:
        d["launchType"] = service.get("launchType", "FARGATE")
    if "networkConfiguration" in service:
        d["networkConfiguration"] = copy.deepcopy(service["networkConfiguration"])
    return d


def start(service: dict, platform_version: str, now: float) -> dict:
    """A new PRIMARY first in `deployments`; the one before becomes ACTIVE (the scheduler drains it). A new
    deployment starts with no throttle (the reference: a new definition returns it to normal at once)."""
    for old in service["deployments"]:
        if old["status"] == "PRIMARY":
            old["status"], old["updatedAt"] = "ACTIVE", now
    deployment = from_service(service, new_id(), platform_version, now)
    service["deployments"].insert(0, deployment)
    remember_deployment(service, deployment["id"])
    private(service)["throttle"] = {}
    return deployment


def rollback(service: dict, to: dict, now: float, keep_tasks: bool) -> dict:
    """The PRIMARY that rolls back to `to` (the last COMPLETED deployment): its id and its configuration.
    `keep_tasks`: `to` is still in the list and its live tasks stay its own; else the tasks of that id's
    first life (created before now) are not the new deployment's."""
    deployment = copy.deepcopy(to)
    deployment.update({"status": "PRIMARY", "desiredCount": service["desiredCount"], "failedTasks": 0,
                       "createdAt": to["createdAt"] if keep_tasks else now, "updatedAt": now,
                       "rolloutState": "IN_PROGRESS", "rolloutStateReason": events.rolling_back_reason(to["id"])})
    remember_deployment(service, deployment["id"])
    return deployment


def write_counts(service: dict, tasks: Iterable[dict]) -> None:
    """runningCount (tasks RUNNING) and pendingCount (tasks on their way there) of the service and of each
    of its deployments (by the tasks' startedBy)."""
    running: dict[str, int] = {}
    pending: dict[str, int] = {}
    for task in tasks:
        by = task.get("startedBy") or ""
        if task["lastStatus"] == "RUNNING":
            running[by] = running.get(by, 0) + 1
        elif task["lastStatus"] in _PENDING and task["desiredStatus"] == "RUNNING":
            pending[by] = pending.get(by, 0) + 1
    ids = {d["id"] for d in service["deployments"]}
    service["runningCount"] = sum(n for by, n in running.items() if by in ids)
    service["pendingCount"] = sum(n for by, n in pending.items() if by in ids)
    for d in service["deployments"]:
        d["runningCount"], d["pendingCount"] = running.get(d["id"], 0), pending.get(d["id"], 0)
