"""ECS clusters: create (idempotent), update their settings, configuration, Service Connect default and
capacity providers, describe with live task counts, list, delete when empty."""
from __future__ import annotations

import base64
import copy
import hashlib
import re
from typing import Any

from fargo import clock
from fargo.arns import name_from_cluster_ref
from fargo.control import capacity_messages as msg
from fargo.control.account_settings import AccountSettings
from fargo.control.capacity_providers import check_cluster_providers, check_strategy
from fargo.control.context import ControlContext
from fargo.errors import (ClusterContainsServicesException, ClusterContainsTasksException, ClusterNotFoundException,
                          InvalidParameterException, ResourceInUseException)
from fargo.store.services_store import ServicesStore

DEFAULT_CLUSTER = "default"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ACTIVE_TASK_STATES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
                       "DEPROVISIONING")
_CONTAINER_INSIGHTS = ("enhanced", "enabled", "disabled")
# What DescribeClusters shows only when `include` asks for it (the document member for each).
_INCLUDED = {"SETTINGS": "settings", "CONFIGURATIONS": "configuration"}
ALL_INCLUDES = frozenset({"SETTINGS", "CONFIGURATIONS", "TAGS"})  # what create and update calls answer with


class Clusters:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx
        self.account_settings = AccountSettings(ctx)
        self.services = ServicesStore(ctx.store)

    def create(self, name: str | None, settings: list[dict] | None, tags: list[dict] | None,
               p: dict | None = None) -> dict:
        """CreateCluster; `p` holds the rest of the request (capacityProviders, configuration, ...)."""
        p = p or {}
        name = name or DEFAULT_CLUSTER
        if not _NAME.match(name):
            raise InvalidParameterException(
                "Cluster name can only contain letters, numbers, hyphens and underscores, up to 255 characters.")
        providers = check_cluster_providers(p.get("capacityProviders") or [])
        strategy = check_strategy(p.get("defaultCapacityProviderStrategy") or [], providers)
        existing = self.ctx.store.get_cluster(name)
        if existing and existing["status"] == "ACTIVE":
            asked = [("capacityProviders", providers), ("defaultCapacityProviderStrategy", strategy)]
            if any(p.get(key) is not None and existing.get(key, []) != value for key, value in asked):
                raise InvalidParameterException("Arguments on this idempotent request are inconsistent with "
                                                "arguments used in previous request(s).")
            return self.describe_one(existing, ALL_INCLUDES)
        # a cluster created without the setting takes the account's containerInsights setting
        insights = self.account_settings.effective("containerInsights")
        doc: dict[str, Any] = {
            "clusterArn": self.ctx.arns.cluster(name),
            "clusterName": name,
            "status": "ACTIVE",
            "settings": _merge_settings([{"name": "containerInsights", "value": insights}], settings or []),
            "capacityProviders": providers,
            "defaultCapacityProviderStrategy": strategy,
        }
        if p.get("configuration") is not None:
            doc["configuration"] = _merge_configuration({}, p["configuration"])
        if p.get("serviceConnectDefaults") is not None:
            self._set_service_connect_defaults(doc, p["serviceConnectDefaults"])
        self.ctx.store.put_cluster(doc, clock.now())
        if tags:
            self.ctx.store.put_tags(doc["clusterArn"], tags)
        return self.describe_one(doc, ALL_INCLUDES)

    def update(self, p: dict) -> dict:
        """UpdateCluster: what the call names changes (settings by name, configuration by part)."""
        if p.get("settings") is None and p.get("configuration") is None and p.get("serviceConnectDefaults") is None:
            raise InvalidParameterException(msg.UPDATE_NEEDS_SOMETHING)
        doc = copy.deepcopy(self.get_active(p["cluster"]))
        if p.get("settings") is not None:
            doc["settings"] = _merge_settings(doc.get("settings") or [], p["settings"])
        if p.get("configuration") is not None:
            doc["configuration"] = _merge_configuration(doc.get("configuration") or {}, p["configuration"])
        if p.get("serviceConnectDefaults") is not None:
            self._set_service_connect_defaults(doc, p["serviceConnectDefaults"])
        self.ctx.store.put_cluster(doc, clock.now())
        return self.describe_one(doc, ALL_INCLUDES)

    def update_settings(self, p: dict) -> dict:
        """UpdateClusterSettings: the settings named change, the others stay."""
        if not p["settings"]:
            raise InvalidParameterException(msg.SETTINGS_EMPTY)
        doc = copy.deepcopy(self.get_active(p["cluster"]))
        doc["settings"] = _merge_settings(doc.get("settings") or [], p["settings"])
        self.ctx.store.put_cluster(doc, clock.now())
        return self.describe_one(doc, ALL_INCLUDES)

    def put_capacity_providers(self, p: dict) -> dict:
        """PutClusterCapacityProviders: the whole list and default strategy replace the old ones; a provider
        that live tasks of the cluster run on cannot leave it."""
        doc = copy.deepcopy(self.get_active(p["cluster"]))
        providers = check_cluster_providers(p["capacityProviders"])
        strategy = check_strategy(p["defaultCapacityProviderStrategy"], providers)
        removed = set(doc.get("capacityProviders") or []) - set(providers)
        if removed and any(t.get("capacityProviderName") in removed
                           for t in self.ctx.store.live_task_docs(doc["clusterArn"])):
            raise ResourceInUseException(msg.PROVIDER_IN_USE)
        doc["capacityProviders"], doc["defaultCapacityProviderStrategy"] = providers, strategy
        self.ctx.store.put_cluster(doc, clock.now())
        return self.describe_one(doc, ALL_INCLUDES)

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
            clusters.append(self.describe_one(doc, frozenset(include)))
        return {"clusters": clusters, "failures": failures}

    def describe_one(self, doc: dict, include: frozenset[str] = frozenset({"SETTINGS"})) -> dict:
        store = self.ctx.store
        arn = doc["clusterArn"]
        out = dict(doc)
        active = doc["status"] == "ACTIVE"
        out.update({
            "registeredContainerInstancesCount": 0,
            "runningTasksCount": store.count_tasks(arn, ["RUNNING"]) if active else 0,
            "pendingTasksCount": store.count_tasks(arn, ["PROVISIONING", "PENDING", "ACTIVATING"]) if active else 0,
            "activeServicesCount": self.services.count_active(arn, ("ACTIVE",)) if active else 0,
            "statistics": [],
            "tags": store.get_tags(arn) if "TAGS" in include else [],
        })
        out.setdefault("capacityProviders", [])
        out.setdefault("defaultCapacityProviderStrategy", [])
        for field, member in _INCLUDED.items():
            if field not in include:
                out.pop(member, None)
        return out

    def list_arns(self, offset: int, limit: int) -> list[str]:
        return self.ctx.store.list_cluster_arns(offset, limit)

    def delete(self, ref: str) -> dict:
        doc = self.ctx.store.get_cluster(name_from_cluster_ref(ref))
        if doc is None or doc["status"] != "ACTIVE":
            raise ClusterNotFoundException("Cluster not found.")
        # A service's tasks are active too: the services are what the caller must delete first.
        if self.services.count_active(doc["clusterArn"]):
            raise ClusterContainsServicesException("The Cluster cannot be deleted while Services are active.")
        if self.ctx.store.count_tasks(doc["clusterArn"], list(_ACTIVE_TASK_STATES)):
            raise ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")
        doc = dict(doc, status="INACTIVE")
        self.ctx.store.put_cluster(doc, clock.now())
        return self.describe_one(doc)

    def _set_service_connect_defaults(self, doc: dict, defaults: dict) -> None:
        """A namespace name stands for the Cloud Map namespace of that name (ECS makes an HTTP one when there
        is none; Fargo has no Cloud Map, so the name's ARN is derived from it); "" removes the default."""
        namespace = defaults.get("namespace")
        if namespace is None:
            raise InvalidParameterException(msg.NAMESPACE_EMPTY)
        if namespace == "":
            doc.pop("serviceConnectDefaults", None)
            return
        if not namespace.startswith("arn:"):
            namespace_id = "ns-" + _base32(hashlib.sha256(namespace.encode()).digest())[:16]
            namespace = self.ctx.arns.cloud_map_namespace(namespace_id)
        doc["serviceConnectDefaults"] = {"namespace": namespace}


def _merge_settings(current: list[dict], given: list[dict]) -> list[dict]:
    """The cluster's settings with those given replacing the ones of the same name (containerInsights only)."""
    out = {s["name"]: dict(s) for s in current}
    for setting in given:
        value = setting.get("value")
        if value not in _CONTAINER_INSIGHTS:
            raise InvalidParameterException(msg.CONTAINER_INSIGHTS_VALUE.format(value=value))
        out[setting.get("name") or "containerInsights"] = {"name": setting.get("name") or "containerInsights",
                                                           "value": value}
    return list(out.values())


def _merge_configuration(current: dict, given: dict) -> dict:
    """Each part given (executeCommandConfiguration, managedStorageConfiguration) replaces the old one."""
    out = copy.deepcopy(current)
    out.update(copy.deepcopy(given))
    return out


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode().lower()
