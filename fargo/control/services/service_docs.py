"""The AWS shapes of a service and its events, and the scheduler's private part of the stored document.

A service row holds the document DescribeServices returns plus `_scheduler` (never shown): every deployment
id the service ever had (ListTasks by serviceName, the scheduler's reads of tasks), the stops the planner
already counted, the throttle state per deployment, the last COMPLETED deployment (for rollback) and the
hash of the CreateService request (clientToken idempotency).
"""
from __future__ import annotations

import copy
import uuid
from typing import Any

PRIVATE = "_scheduler"
MAX_EVENTS = 100
MAX_DEPLOYMENT_IDS = 500  # the ids remembered for ListTasks; the oldest tasks are purged long before
ROLE_ARN = "arn:aws:iam::{account}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"


def public(doc: dict, tags: list[dict] | None = None) -> dict:
    """The document as DescribeServices shows it; tags only when asked for (include TAGS)."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k != PRIVATE}
    out.pop("tags", None)
    if tags is not None:
        out["tags"] = tags
    return out


def private(doc: dict) -> dict[str, Any]:
    """The scheduler's part, created empty on first use."""
    state = doc.setdefault(PRIVATE, {})
    state.setdefault("deploymentIds", [])
    state.setdefault("seenStopped", [])
    state.setdefault("throttle", {})
    state.setdefault("lastCompleted", None)
    return state


def new_service(*, arn: str, name: str, cluster_arn: str, account_id: str, p: dict, task_definition_arn: str,
                platform_version: str, network_configuration: dict | None, deployment_configuration: dict,
                now: float) -> dict:
    """A new ACTIVE service (no deployment yet: `deployments.start` adds the first)."""
    doc: dict[str, Any] = {
        "serviceArn": arn, "serviceName": name, "clusterArn": cluster_arn,
        "loadBalancers": p.get("loadBalancers") or [], "serviceRegistries": p.get("serviceRegistries") or [],
        "status": "ACTIVE", "desiredCount": p.get("desiredCount", 0), "runningCount": 0, "pendingCount": 0,
        "platformVersion": platform_version, "platformFamily": "Linux", "taskDefinition": task_definition_arn,
        "deploymentConfiguration": deployment_configuration, "deployments": [],
        "roleArn": ROLE_ARN.format(account=account_id), "events": [], "createdAt": now,
        "placementConstraints": p.get("placementConstraints") or [],
        "placementStrategy": p.get("placementStrategy") or [],
        "healthCheckGracePeriodSeconds": p.get("healthCheckGracePeriodSeconds", 0),
        "schedulingStrategy": "REPLICA", "deploymentController": {"type": "ECS"},
        "createdBy": f"arn:aws:iam::{account_id}:root",
        "enableECSManagedTags": bool(p.get("enableECSManagedTags", False)),
        "propagateTags": p.get("propagateTags") or "NONE",
        "enableExecuteCommand": bool(p.get("enableExecuteCommand", False)),
        "availabilityZoneRebalancing": p.get("availabilityZoneRebalancing") or "ENABLED",
    }
    if p.get("capacityProviderStrategy"):
        doc["capacityProviderStrategy"] = copy.deepcopy(p["capacityProviderStrategy"])
    else:
        doc["launchType"] = p.get("launchType") or "FARGATE"
    if network_configuration is not None:
        doc["networkConfiguration"] = network_configuration
    private(doc)
    return doc


def add_events(doc: dict, messages: list[str], now: float) -> None:
    """Post `messages` (oldest first) as service events: newest first, at most 100 kept; each a millisecond
    after the one before, so their order shows in createdAt as AWS's does."""
    events = doc.setdefault("events", [])
    for i, message in enumerate(messages):
        events.insert(0, {"id": str(uuid.uuid4()), "createdAt": round(now + i / 1000, 3), "message": message})
    del events[MAX_EVENTS:]


def remember_deployment(doc: dict, deployment_id: str) -> None:
    ids = private(doc)["deploymentIds"]
    if deployment_id not in ids:
        ids.append(deployment_id)
        del ids[:-MAX_DEPLOYMENT_IDS]
