"""ECS clusters: create (idempotent), describe with live task counts, list, delete when empty."""
from __future__ import annotations

import re
from typing import Any

from fargo import clock
from fargo.errors import (ClusterContainsTasksException, ClusterNotFoundException,
                              InvalidParameterException)
from fargo.arns import name_from_cluster_ref
from fargo.control.context import ControlContext

DEFAULT_CLUSTER = "default"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ACTIVE_TASK_STATES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
                       "DEPROVISIONING")


class Clusters:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx

    def create(self, name: str | None, settings: list[dict] | None, tags: list[dict] | None) -> dict:
        name = name or DEFAULT_CLUSTER
        if not _NAME.match(name):
            raise InvalidParameterException(
                "Cluster name can only contain letters, numbers, hyphens and underscores, up to 255 characters.")
        existing = self.ctx.store.get_cluster(name)
        if existing and existing["status"] == "ACTIVE":
            return self.describe_one(existing, include_tags=True)
        doc: dict[str, Any] = {
            "clusterArn": self.ctx.arns.cluster(name),
            "clusterName": name,
            "status": "ACTIVE",
            "settings": settings or [{"name": "containerInsights", "value": "disabled"}],
            "capacityProviders": [],
            "defaultCapacityProviderStrategy": [],
        }
        self.ctx.store.put_cluster(doc, clock.now())
        if tags:
            self.ctx.store.put_tags(doc["clusterArn"], tags)
        return self.describe_one(doc, include_tags=True)

    def get_active(self, ref: str | None) -> dict:
        """The cluster a task call names (default when omitted), or ClusterNotFoundException."""
        doc = self.ctx.store.get_cluster(name_from_cluster_ref(ref or DEFAULT_CLUSTER))
        if doc is None or doc["status"] != "ACTIVE":
            raise ClusterNotFoundException("Cluster not found.")
        return doc

    def describe(self, refs: list[str] | None, include: list[str]) -> dict:
        clusters, failures = [], []
        for ref in refs or [DEFAULT_CLUSTER]:
            name = name_from_cluster_ref(ref)
            doc = self.ctx.store.get_cluster(name)
            if doc is None:
                failures.append({"arn": self.ctx.arns.cluster(name), "reason": "MISSING"})
                continue
            clusters.append(self.describe_one(doc, include_tags="TAGS" in include,
                                              include_settings="SETTINGS" in include))
        return {"clusters": clusters, "failures": failures}

    def describe_one(self, doc: dict, include_tags: bool = False, include_settings: bool = True) -> dict:
        store = self.ctx.store
        arn = doc["clusterArn"]
        out = dict(doc)
        active = doc["status"] == "ACTIVE"
        out.update({
            "registeredContainerInstancesCount": 0,
            "runningTasksCount": store.count_tasks(arn, ["RUNNING"]) if active else 0,
            "pendingTasksCount": store.count_tasks(arn, ["PROVISIONING", "PENDING", "ACTIVATING"]) if active else 0,
            "activeServicesCount": 0,
            "statistics": [],
            "tags": store.get_tags(arn) if include_tags else [],
        })
        if not include_settings:
            out.pop("settings", None)
        return out

    def list_arns(self, offset: int, limit: int) -> list[str]:
        return self.ctx.store.list_cluster_arns(offset, limit)

    def delete(self, ref: str) -> dict:
        doc = self.ctx.store.get_cluster(name_from_cluster_ref(ref))
        if doc is None or doc["status"] != "ACTIVE":
            raise ClusterNotFoundException("Cluster not found.")
        if self.ctx.store.count_tasks(doc["clusterArn"], list(_ACTIVE_TASK_STATES)):
            raise ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")
        doc = dict(doc, status="INACTIVE")
        self.ctx.store.put_cluster(doc, clock.now())
        return self.describe_one(doc)
