"""ECS services, the API: CreateService, UpdateService, DeleteService, DescribeServices, ListServices.

The API writes what the user asked for (the service, a new PRIMARY deployment when the tasks must change)
and wakes the scheduler (`scheduler.py`), which does the rest: start and stop tasks, count them, complete,
fail and roll back deployments, and make a deleted service INACTIVE once its tasks are gone.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fargo import clock
from fargo.arns import parse_ecs_arn
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.pagination import next_token, page_bounds
from fargo.control.services import deployments
from fargo.control.services import messages as msg
from fargo.control.services.service_docs import new_service, private, public
from fargo.control.task_definitions.registration import check_platform_supports
from fargo.control.tasks import TaskNetworks, Tasks
from fargo.control.threaded_handlers import Handler, in_thread
from fargo.errors import (InvalidParameterException, ServiceNotActiveException, ServiceNotFoundException)
from fargo.platform import resolve_platform_version
from fargo.store.services_store import ServiceRow, ServicesStore

log = logging.getLogger("fargo.control")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_MAX_GRACE = 2_147_483_647
_WRITE_ATTEMPTS = 20  # optimistic writes: the scheduler may save between our read and our write


class Services:
    def __init__(self, ctx: ControlContext, tasks: Tasks, network: TaskNetworks) -> None:
        self.ctx = ctx
        self.tasks = tasks
        self.clusters: Clusters = tasks.clusters
        self.network = network
        self.store = ServicesStore(ctx.store)
        self.on_change: Callable[[], None] = lambda: None  # the scheduler's wake-up

    def handlers(self) -> dict[str, Handler]:
        changed = self._changed
        return {"CreateService": in_thread(self._create, changed=changed),
                "UpdateService": in_thread(self._update, changed=changed),
                "DeleteService": in_thread(self._delete, changed=changed),
                "DescribeServices": in_thread(self._describe),
                "ListServices": in_thread(self._list)}

    # --- for the rest of Fargo -----------------------------------------------------------------

    def task_arns(self, cluster_arn: str, service_ref: str, desired_status: str, family: str | None,
                  started_by: str | None, offset: int, limit: int) -> list[str]:
        """ListTasks with serviceName (sync): the tasks of the service's deployments, past ones too."""
        row = self._row(cluster_arn, service_ref)
        return self.store.task_arns(cluster_arn, private(row.doc)["deploymentIds"], desired_status, family,
                                    started_by, offset, limit)

    def exists(self, service_arn: str) -> bool:
        """For tagging: a service that is not INACTIVE."""
        row = self.store.get(service_arn)
        return row is not None and row.doc["status"] != "INACTIVE"

    # --- API -----------------------------------------------------------------------------------

    def _create(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        name = p["serviceName"]
        if not _NAME.match(name):
            raise InvalidParameterException(msg.SERVICE_NAME)
        token = p.get("clientToken")
        if token is not None and (not 1 <= len(token) <= 36 or not all(33 <= ord(ch) <= 126 for ch in token)):
            raise InvalidParameterException(msg.CLIENT_TOKEN)
        if p.get("schedulingStrategy", "REPLICA") != "REPLICA":
            raise InvalidParameterException(msg.DAEMON_ON_FARGATE)
        if (p.get("deploymentController") or {}).get("type", "ECS") != "ECS":
            raise InvalidParameterException(msg.DEPLOYMENT_CONTROLLER)
        strategy = self._check_launch(p)
        if not p.get("taskDefinition"):
            raise InvalidParameterException(msg.TASK_DEFINITION_REQUIRED)
        _check_desired_count(p.get("desiredCount", 0))
        _check_grace(p.get("healthCheckGracePeriodSeconds", 0))
        _check_tags(p.get("tags") or [])
        platform_name = p.get("platformVersion") or "LATEST"
        td, resolved = self._definition_on_platform(p["taskDefinition"], platform_name)
        network = self._network_configuration(p.get("networkConfiguration"))
        arn = self.ctx.arns.service(cluster["clusterName"], name)
        request_hash = _request_hash(p)
        existing = self.store.get(arn)
        if existing is not None and existing.doc["status"] != "INACTIVE":
            return {"service": self._same_request(existing, token, request_hash)}
        now = clock.now()
        launch = {"capacityProviderStrategy": strategy} if strategy else {"launchType": "FARGATE"}
        doc = new_service(arn=arn, name=name, cluster_arn=cluster["clusterArn"], account_id=self.ctx.config.account_id,
                          p={**p, **launch}, task_definition_arn=td["taskDefinitionArn"], platform_version=platform_name,
                          network_configuration=network,
                          deployment_configuration=_deployment_configuration(p.get("deploymentConfiguration"), None),
                          now=now)
        private(doc)["requestHash"] = request_hash
        deployments.start(doc, resolved, now)
        if not self.store.create(doc, token, existing.version if existing is not None else None):
            raced = self.store.get(arn)  # another replica (or a retry of this request) created it just now
            if raced is None:
                raise InvalidParameterException(msg.NOT_IDEMPOTENT)
            return {"service": self._same_request(raced, token, request_hash)}
        if p.get("tags"):
            self.ctx.store.put_tags(arn, p["tags"])
        log.info("service %s created in %s (deployment %s)", name, cluster["clusterName"], doc["deployments"][0]["id"])
        return {"service": public(doc)}

    def _update(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        if "desiredCount" in p:
            _check_desired_count(p["desiredCount"])
        if "healthCheckGracePeriodSeconds" in p:
            _check_grace(p["healthCheckGracePeriodSeconds"])
        if (p.get("deploymentController") or {}).get("type", "ECS") != "ECS":
            raise InvalidParameterException(msg.DEPLOYMENT_CONTROLLER)
        strategy = None
        if "capacityProviderStrategy" in p:
            strategy = self._check_launch({"cluster": cluster["clusterArn"],
                                           "capacityProviderStrategy": p["capacityProviderStrategy"]})
        # what the checks need of the store is read before the write, once
        network = self._network_configuration(p["networkConfiguration"]) if "networkConfiguration" in p else None
        td_arn: str | None = None
        for _attempt in range(_WRITE_ATTEMPTS):
            row = self._row(cluster["clusterArn"], p["service"])
            doc = copy.deepcopy(row.doc)
            if doc["status"] != "ACTIVE":
                raise ServiceNotActiveException(msg.SERVICE_NOT_ACTIVE)
            platform_name = p.get("platformVersion") or doc["platformVersion"]
            td, resolved = self._definition_on_platform(p.get("taskDefinition") or doc["taskDefinition"], platform_name)
            td_arn = td["taskDefinitionArn"]
            redeploy = bool(p.get("forceNewDeployment"))
            primary = doc["deployments"][0] if doc["deployments"] else None
            redeploy |= td_arn != doc["taskDefinition"] or (primary is not None and resolved != primary["platformVersion"])
            doc["taskDefinition"], doc["platformVersion"] = td_arn, platform_name
            if network is not None:
                redeploy |= network != doc.get("networkConfiguration")
                doc["networkConfiguration"] = network
            if "capacityProviderStrategy" in p:
                redeploy |= strategy != doc.get("capacityProviderStrategy")
                doc.pop("launchType", None)
                doc["capacityProviderStrategy"] = strategy
            for key in ("propagateTags", "enableECSManagedTags", "enableExecuteCommand"):
                if key in p:
                    redeploy |= p[key] != doc.get(key)
                    doc[key] = p[key]
            for key in ("desiredCount", "healthCheckGracePeriodSeconds", "availabilityZoneRebalancing"):
                if key in p:
                    doc[key] = p[key]
            if "deploymentConfiguration" in p:
                doc["deploymentConfiguration"] = _deployment_configuration(p["deploymentConfiguration"],
                                                                          doc["deploymentConfiguration"])
            now = clock.now()
            if redeploy or primary is None:
                deployments.start(doc, resolved, now)
            else:  # desiredCount alone does not start a deployment: the PRIMARY scales
                primary["desiredCount"], primary["updatedAt"] = doc["desiredCount"], now
            if self.store.save(doc, row.version):
                return {"service": public(doc)}
        raise InvalidParameterException("The service is being changed by another request; try again.")

    def _delete(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        for _attempt in range(_WRITE_ATTEMPTS):
            row = self._row(cluster["clusterArn"], p["service"])
            doc = copy.deepcopy(row.doc)
            if doc["status"] != "ACTIVE":
                raise ServiceNotActiveException(msg.SERVICE_NOT_ACTIVE)
            if doc["desiredCount"] > 0 and not p.get("force"):
                raise InvalidParameterException(msg.SCALED_ABOVE_ZERO)
            now = clock.now()
            doc["status"], doc["desiredCount"] = "DRAINING", 0
            for d in doc["deployments"]:
                d["desiredCount"], d["updatedAt"] = 0, now
            if self.store.save(doc, row.version):
                return {"service": public(doc)}
        raise InvalidParameterException("The service is being changed by another request; try again.")

    def _describe(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        refs = p["services"]
        if not refs:
            raise InvalidParameterException(msg.NO_SERVICES)
        if len(refs) > 10:
            raise InvalidParameterException(msg.TOO_MANY_SERVICES)
        with_tags = "TAGS" in (p.get("include") or [])
        arns = [self._arn(cluster["clusterArn"], ref) for ref in refs]
        found = self.store.get_many(arns)
        services, failures = [], []
        for arn in arns:
            row = found.get(arn)
            if row is None:
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            services.append(public(row.doc, self.ctx.store.get_tags(arn) if with_tags else None))
        return {"services": services, "failures": failures}

    def _list(self, p: dict) -> dict:
        cluster = self.clusters.get_active(p.get("cluster"))
        offset, limit = page_bounds(p, default_limit=10)
        arns = self.store.list_arns(cluster["clusterArn"], p.get("launchType"), offset, limit + 1)
        return {"serviceArns": arns[:limit], "nextToken": next_token(offset, limit, len(arns))}

    # --- helpers -------------------------------------------------------------------------------

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:  # noqa: BLE001 - the change is committed; the scheduler also polls
            log.exception("waking the service scheduler failed")

    def _arn(self, cluster_arn: str, ref: str) -> str:
        """A service named by name or ARN (long `service/CLUSTER/NAME` or old `service/NAME`), in the cluster."""
        parsed = parse_ecs_arn(ref)
        name = parsed.resource.rsplit("/", 1)[-1] if parsed is not None and parsed.kind == "service" else ref
        return self.ctx.arns.service(cluster_arn.rsplit("/", 1)[-1], name)

    def _row(self, cluster_arn: str, ref: str) -> ServiceRow:
        row = self.store.get(self._arn(cluster_arn, ref))
        if row is None:
            raise ServiceNotFoundException(msg.SERVICE_NOT_FOUND)
        return row

    @staticmethod
    def _same_request(row: ServiceRow, token: str | None, request_hash: str) -> dict:
        """A retry of the request that created the service gets the service; anything else is refused."""
        if token is not None and row.client_token == token and private(row.doc).get("requestHash") == request_hash:
            return public(row.doc)
        raise InvalidParameterException(msg.NOT_IDEMPOTENT)

    def _check_launch(self, p: dict) -> list[dict] | None:
        if p.get("launchType") == "FARGATE_SPOT":
            raise InvalidParameterException(msg.SPOT_NEEDS_STRATEGY)
        return self.tasks.check_launch(p)

    def _definition_on_platform(self, ref: str, platform_name: str) -> tuple[dict, str]:
        """The task definition (as RunTask finds it), checked for Fargate on the platform; the platform's
        resolved version (LATEST stays on the service, the deployment shows what it means)."""
        td = self.tasks.definition_for_run(ref)
        if "FARGATE" not in td.get("compatibilities", []):
            raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
        platform = resolve_platform_version(platform_name, self.ctx.config.latest_platform)
        check_platform_supports(td, platform, cpu=td.get("cpu"))
        return td, platform.version

    def _network_configuration(self, given: dict | None) -> dict:
        """networkConfiguration checked as RunTask checks it; shown with the groups and public-IP choice made."""
        awsvpc = (given or {}).get("awsvpcConfiguration")
        choice = self.network.resolve_awsvpc(awsvpc)
        assert awsvpc is not None
        return {"awsvpcConfiguration": {"subnets": [s.subnet_id for s in choice.subnets],
                                        "securityGroups": list(choice.security_groups),
                                        "assignPublicIp": "ENABLED" if choice.assign_public_ip else "DISABLED"}}


def _deployment_configuration(given: dict | None, current: dict | None) -> dict:
    out: dict[str, Any] = copy.deepcopy(current) if current else {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200, "minimumHealthyPercent": 100}
    given = given or {}
    for key in ("maximumPercent", "minimumHealthyPercent", "alarms", "strategy", "bakeTimeInMinutes"):
        if key in given:
            out[key] = copy.deepcopy(given[key])
    if "deploymentCircuitBreaker" in given:
        cb = given["deploymentCircuitBreaker"]
        if "enable" not in cb or "rollback" not in cb:
            raise InvalidParameterException(msg.CIRCUIT_BREAKER_MEMBERS)
        out["deploymentCircuitBreaker"] = {"enable": bool(cb["enable"]), "rollback": bool(cb["rollback"])}
    if out["maximumPercent"] < 100:
        raise InvalidParameterException(msg.MAXIMUM_PERCENT)
    if not 0 <= out["minimumHealthyPercent"] <= 100:
        raise InvalidParameterException(msg.MINIMUM_HEALTHY_PERCENT)
    return out


def _check_desired_count(n: int) -> None:
    if not 0 <= n <= 5000:
        raise InvalidParameterException(msg.DESIRED_COUNT)


def _check_grace(seconds: int) -> None:
    if not 0 <= seconds <= _MAX_GRACE:
        raise InvalidParameterException(msg.GRACE_PERIOD)


def _check_tags(tags: list[dict]) -> None:
    if len(tags) > 50:
        raise InvalidParameterException(msg.TAGS)
    for tag in tags:
        if tag.get("key", "").lower().startswith("aws:"):
            raise InvalidParameterException("Tag keys may not begin with the reserved prefix 'aws:'.")


def _request_hash(p: dict) -> str:
    """What makes two CreateService calls the same request: every member but the token."""
    body = {k: v for k, v in p.items() if k != "clientToken"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
