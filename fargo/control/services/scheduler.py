"""The service scheduler: keeps each service's tasks as its deployments say, on the leader replica only.

Level-triggered: each pass reads a service and its tasks from the store, asks the planner
(`rollout.plan`) what to do, starts tasks through RunTask's path (group `service:NAME`, startedBy the
deployment id) and stops them through StopTask's (stopCode ServiceSchedulerInitiated), then writes the
deployments, counts and events back with the version it read. Nothing lives only in memory: after a
crash the next pass sees what exists, so no task is lost or started twice. Passes run every
FARGO_SCHEDULER_INTERVAL_SECONDS (1 s) and whenever a task stops or the API changes a service.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections import Counter
from dataclasses import dataclass

from fargo import clock
from fargo.control.capacity_providers import choose_providers
from fargo.control.context import ControlContext
from fargo.control.services import deployments, events, rollout
from fargo.control.services.leadership import Leadership
from fargo.control.services.rollout import DeploymentView, Plan, ServiceView, TaskView
from fargo.control.services.service_docs import add_events, private
from fargo.control.services.services import Services
from fargo.control.tasks import STOPPED_TASK_RETENTION_SECONDS, AwsvpcChoice, TaskNetworks, Tasks
from fargo.errors import AwsError
from fargo.protocol import stop_reasons as reasons
from fargo.store.services_store import ServiceRow

log = logging.getLogger("fargo.control")

INTERVAL_VARIABLE = "FARGO_SCHEDULER_INTERVAL_SECONDS"
_MAX_PER_RUN_TASK = 10
_REPEAT_SUPPRESSED_SECONDS = 6 * 3600  # ECS posts a repeated problem again after six hours


@dataclass
class _Pass:
    """What one pass read of one service."""

    row: ServiceRow
    tasks: list[dict]
    view: ServiceView
    task_views: list[TaskView]
    networks: dict[str, AwsvpcChoice | None]  # deployment id -> its resolved awsvpc (None: unusable now)


class ServiceScheduler:
    def __init__(self, ctx: ControlContext, services: Services, tasks: Tasks, network: TaskNetworks,
                 leadership: Leadership, interval: float | None = None) -> None:
        self.ctx = ctx
        self.services = services
        self.store = services.store
        self.tasks = tasks
        self.network = network
        self.leadership = leadership
        self.interval = interval if interval is not None else float(os.environ.get(INTERVAL_VARIABLE) or 1.0)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._health_checks: dict[str, bool] = {}  # task definition ARN -> has an essential health check
        self.leading = False  # as of the last pass: this replica holds the leadership (health reports it)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._run())
        def wake_from_any_thread() -> None:  # the API's handlers run in threads
            loop.call_soon_threadsafe(self._wake.set)
        self.services.on_change = wake_from_any_thread
        self.tasks.on_stopped.append(lambda _doc: self._wake.set())
        # A task reaching RUNNING or HEALTHY changes the counts and may complete a deployment: look at once.
        self.tasks.on_service_tasks_changed.append(self._wake.set)

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
        await asyncio.to_thread(self.leadership.close)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                now_leading, arns = await asyncio.to_thread(self._look)  # one thread hop a second, not two
                if now_leading != self.leading:
                    log.info("service scheduler %s", "leading" if now_leading else "standing by")
                    self.leading = now_leading
                if self.leading:
                    await self.run_pass(arns)
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("service scheduler pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    # --- one pass -------------------------------------------------------------------------------

    def _look(self) -> tuple[bool, list[str]]:
        leading = self.leadership.holds()
        return leading, self.store.scheduled_arns() if leading else []

    async def run_pass(self, arns: list[str] | None = None) -> None:
        """One pass over `arns` (the services to schedule; read from the store when None)."""
        if arns is None:
            arns = await asyncio.to_thread(self.store.scheduled_arns)
        for arn in arns:
            try:
                await self.reconcile(arn)
            except Exception:  # noqa: BLE001 - one service's trouble must not stop the others
                log.exception("scheduling service %s failed", arn)

    async def reconcile(self, arn: str) -> None:
        seen = await asyncio.to_thread(self._read, arn)
        if seen is None:
            return
        now = clock.now()
        plan = rollout.plan(seen.view, seen.task_views, now)
        notes: list[str] = []
        started = await self._start(seen, plan, notes)
        stopped = await self._stop(seen, plan)
        await asyncio.to_thread(self._write, arn, seen, plan, started, stopped, notes)

    def _read(self, arn: str) -> _Pass | None:
        row = self.store.get(arn)
        if row is None or row.doc["status"] not in ("ACTIVE", "DRAINING"):
            return None
        doc = row.doc
        state = private(doc)
        by_id = {d["id"]: d for d in doc["deployments"]}
        tasks = [t for t in self.store.tasks_of(doc["clusterArn"], list(by_id),
                                                clock.now() - STOPPED_TASK_RETENTION_SECONDS)
                 if t.get("group") == f"service:{doc['serviceName']}"
                 # a rollback deployment carries an old id: the tasks of that id's first life are not its own
                 and t["createdAt"] >= by_id[t["startedBy"]]["createdAt"] - 0.001]
        networks = {d["id"]: self._resolve(d) for d in doc["deployments"]}
        primary = doc["deployments"][0] if doc["deployments"] else None
        zones: list[str] = []
        if primary is not None and networks.get(primary["id"]) is not None:
            zones = list(dict.fromkeys(s.availability_zone for s in networks[primary["id"]].subnets))  # type: ignore[union-attr]
        known = {t["taskArn"] for t in tasks}
        config = doc["deploymentConfiguration"]
        breaker = config.get("deploymentCircuitBreaker") or {}
        last = state.get("lastCompleted")
        view = ServiceView(
            name=doc["serviceName"], desired_count=doc["desiredCount"], maximum_percent=config["maximumPercent"],
            minimum_healthy_percent=config["minimumHealthyPercent"],
            circuit_breaker_enable=bool(breaker.get("enable")), circuit_breaker_rollback=bool(breaker.get("rollback")),
            health_check_grace_seconds=doc.get("healthCheckGracePeriodSeconds", 0), zones=zones, status=doc["status"],
            deployments=[self._deployment_view(doc, d) for d in doc["deployments"]],
            last_completed_deployment_id=last["id"] if last else None,
            seen_stopped=frozenset(a for a in state["seenStopped"] if a in known),
            condition=state.get("condition"))
        return _Pass(row=row, tasks=tasks, view=view, task_views=[self._task_view(t) for t in tasks],
                     networks=networks)

    async def _start(self, seen: _Pass, plan: Plan, notes: list[str]) -> list[str]:
        """Start the plan's tasks, a RunTask per deployment and zone; the ids of those started."""
        doc = seen.row.doc
        wanted = Counter(plan.start)
        started: list[str] = []
        # each task's capacity provider by the strategy's base and weights, counting the service's live tasks
        on_provider = Counter(str(t.get("capacityProviderName")) for t in seen.tasks
                              if t["desiredStatus"] == "RUNNING" and t["lastStatus"] != "STOPPED")
        for (deployment_id, zone), count in sorted(wanted.items()):
            deployment = self._deployment_doc(doc, deployment_id)
            choice = seen.networks.get(deployment_id) if deployment_id in seen.networks else (
                self._resolve(deployment) if deployment is not None else None)
            if deployment is None or choice is None:
                notes.append(events.unable_to_place(doc["serviceName"], "the deployment's subnets are not usable."))
                continue
            subnets = [s.subnet_id for s in choice.subnets if s.availability_zone == zone] or \
                      [s.subnet_id for s in choice.subnets]
            tags = await asyncio.to_thread(self._task_tags, doc, deployment)
            strategy = deployment.get("capacityProviderStrategy")
            batches: Counter[str | None] = Counter([None] * count)
            if strategy:
                try:
                    chosen = choose_providers(strategy, count, dict(on_provider))
                except AwsError as e:
                    notes.append(events.unable_to_place(doc["serviceName"], e.message))
                    continue
                on_provider.update(chosen)
                batches = Counter(chosen)
            for provider, n_provider in batches.items():
                for first in range(0, n_provider, _MAX_PER_RUN_TASK):
                    n = min(_MAX_PER_RUN_TASK, n_provider - first)
                    request = self._run_request(doc, deployment, subnets, choice, n, tags, provider)
                    try:
                        out = await self.tasks.run_task(request, inactive_definition_ok=True)
                    except AwsError as e:
                        notes.append(events.unable_to_place(doc["serviceName"], f"{e.code}: {e.message}"))
                        break
                    started += [events.task_id(t["taskArn"]) for t in out["tasks"]]
                    for failure in out["failures"]:
                        notes.append(events.unable_to_place(
                            doc["serviceName"], f"{failure['reason']}: {failure.get('detail', '')}".rstrip(": ")))
        return started

    async def _stop(self, seen: _Pass, plan: Plan) -> list[str]:
        stopped = []
        cluster = seen.row.doc["clusterArn"]
        for task_arn, reason in plan.stop:
            try:
                await self.tasks.stop_task({"cluster": cluster, "task": task_arn, "reason": reason},
                                           stop_code=reasons.SERVICE_SCHEDULER_INITIATED)
            except AwsError as e:
                log.warning("service scheduler could not stop %s: %s", task_arn, e.message)
                continue
            stopped.append(events.task_id(task_arn))
        return stopped

    def _write(self, arn: str, seen: _Pass, plan: Plan, started: list[str], stopped: list[str],
               notes: list[str]) -> None:
        """Write the pass's outcome back. If the API changed the service meanwhile, only the events and counts
        are written (the next pass plans again from what the API wrote)."""
        name = seen.row.doc["serviceName"]
        messages = list(plan.events)
        if stopped:
            messages.append(events.stopped(name, stopped))
        if started:
            messages.append(events.replaced_unhealthy(name, started, plan.replaced_unhealthy)
                            if plan.replaced_unhealthy else events.started(name, started))
        messages += notes
        for _attempt in range(10):
            row = self.store.get(arn)
            if row is None:
                return
            doc = copy.deepcopy(row.doc)
            now = clock.now()
            if row.version == seen.row.version:
                self._apply(doc, seen, plan, now)
            add_events(doc, _without_repeats(doc, messages, now), now)
            fresh = self.store.tasks_of(doc["clusterArn"], [d["id"] for d in doc["deployments"]],
                                        now - STOPPED_TASK_RETENTION_SECONDS)
            deployments.write_counts(doc, [t for t in fresh if t.get("group") == f"service:{name}"])
            if doc == row.doc or self.store.save(doc, row.version):
                return
        log.warning("service %s: could not write the scheduler's pass (too many concurrent changes)", arn)

    def _apply(self, doc: dict, seen: _Pass, plan: Plan, now: float) -> None:
        """The plan's deployments (finished ones gone, a rollback added), throttle, counted stops, INACTIVE."""
        state = private(doc)
        old = {d["id"]: d for d in doc["deployments"]}
        kept: list[dict] = []
        for view in plan.deployments:
            d = old.get(view.id)
            if d is None or (plan.rollback_to == view.id and d["status"] != "PRIMARY" and view.status == "PRIMARY"):
                last = state.get("lastCompleted")
                source = d if d is not None else last if last and last["id"] == view.id else None
                if source is None:
                    log.warning("service %s: the planner named an unknown deployment %s", doc["serviceName"], view.id)
                    continue
                # a deployment still in the list keeps its tasks (and so its createdAt, by which they are its own)
                d = deployments.rollback(doc, source, now, keep_tasks=d is not None)
            before = dict(d)
            d["status"] = view.status
            d["desiredCount"] = doc["desiredCount"] if view.status == "PRIMARY" else view.desired_count
            d["failedTasks"] = view.failed_tasks
            d["rolloutState"] = view.rollout_state
            if view.rollout_state_reason:
                d["rolloutStateReason"] = view.rollout_state_reason
            if d != before:
                d["updatedAt"] = now
            state["throttle"][view.id] = {"nextAttemptAt": view.next_attempt_at,
                                          "consecutiveStartFailures": view.consecutive_start_failures}
            kept.append(d)
        doc["deployments"] = kept
        state["throttle"] = {k: v for k, v in state["throttle"].items() if k in {d["id"] for d in kept}}
        primary = kept[0] if kept and kept[0]["status"] == "PRIMARY" else None
        if primary is not None:
            if primary["rolloutState"] == "COMPLETED":
                state["lastCompleted"] = {k: copy.deepcopy(v) for k, v in primary.items()}
            if plan.rollback_to is not None:
                doc["taskDefinition"] = primary["taskDefinition"]
        state["condition"] = plan.condition
        known = {t["taskArn"] for t in seen.tasks}
        state["seenStopped"] = sorted((set(state["seenStopped"]) | plan.newly_counted_stops) & known)
        if plan.inactive and doc["status"] == "DRAINING":
            doc["status"] = "INACTIVE"
            log.info("service %s is INACTIVE", doc["serviceName"])

    # --- helpers -------------------------------------------------------------------------------

    def _deployment_doc(self, doc: dict, deployment_id: str) -> dict | None:
        for d in doc["deployments"]:
            if d["id"] == deployment_id:
                return d
        last = private(doc).get("lastCompleted")
        return last if last and last["id"] == deployment_id else None

    def _deployment_view(self, doc: dict, d: dict) -> DeploymentView:
        throttle = private(doc)["throttle"].get(d["id"]) or {}
        return DeploymentView(id=d["id"], status=d["status"], desired_count=d["desiredCount"],
                              rollout_state=d["rolloutState"], failed_tasks=d.get("failedTasks", 0),
                              created_at=d["createdAt"], next_attempt_at=throttle.get("nextAttemptAt", 0.0),
                              consecutive_start_failures=throttle.get("consecutiveStartFailures", 0),
                              rollout_state_reason=d.get("rolloutStateReason", ""))

    def _task_view(self, t: dict) -> TaskView:
        return TaskView(task_arn=t["taskArn"], deployment_id=t["startedBy"], last_status=t["lastStatus"],
                        desired_status=t["desiredStatus"], health=t.get("healthStatus") or "UNKNOWN",
                        has_health_checks=self._has_health_checks(t["taskDefinitionArn"]),
                        availability_zone=t.get("availabilityZone", ""), running_since=t.get("startedAt"),
                        created_at=t["createdAt"], stopped_reason=t.get("stoppedReason"),
                        stop_code=t.get("stopCode"), reached_running=t.get("startedAt") is not None)

    def _has_health_checks(self, td_arn: str) -> bool:
        if td_arn not in self._health_checks:  # a revision never changes: read once
            family, _, revision = td_arn.rsplit("/", 1)[-1].partition(":")
            td = self.ctx.store.get_task_definition(family, int(revision)) or {}
            self._health_checks[td_arn] = any(c.get("healthCheck") and c.get("essential", True)
                                              for c in td.get("containerDefinitions", []))
        return self._health_checks[td_arn]

    def _resolve(self, deployment: dict) -> AwsvpcChoice | None:
        try:
            return self.network.resolve_awsvpc((deployment.get("networkConfiguration") or {})
                                               .get("awsvpcConfiguration"))
        except AwsError as e:
            log.warning("deployment %s: its network configuration is not usable now: %s", deployment["id"], e.message)
            return None

    def _task_tags(self, doc: dict, deployment: dict) -> list[dict]:
        """The tags a new task gets: propagated from the service or its definition, and ECS's managed ones."""
        tags: list[dict] = []
        if doc.get("propagateTags") == "SERVICE":
            tags = self.ctx.store.get_tags(doc["serviceArn"])
        elif doc.get("propagateTags") == "TASK_DEFINITION":
            tags = self.ctx.store.get_tags(deployment["taskDefinition"])
        if doc.get("enableECSManagedTags"):
            tags = [t for t in tags if not t["key"].startswith("aws:ecs:")] + [
                {"key": "aws:ecs:clusterName", "value": doc["clusterArn"].rsplit("/", 1)[-1]},
                {"key": "aws:ecs:serviceName", "value": doc["serviceName"]}]
        return tags

    @staticmethod
    def _run_request(doc: dict, deployment: dict, subnets: list[str], choice: AwsvpcChoice, count: int,
                     tags: list[dict], provider: str | None) -> dict:
        request: dict = {
            "cluster": doc["clusterArn"], "taskDefinition": deployment["taskDefinition"], "count": count,
            "startedBy": deployment["id"], "group": f"service:{doc['serviceName']}",
            "platformVersion": deployment["platformVersion"],
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": subnets, "securityGroups": list(choice.security_groups),
                "assignPublicIp": "ENABLED" if choice.assign_public_ip else "DISABLED"}},
            "enableExecuteCommand": bool(doc.get("enableExecuteCommand")),
        }
        if provider is not None:  # chosen by the service's strategy: this RunTask uses that provider only
            request["capacityProviderStrategy"] = [{"capacityProvider": provider, "weight": 1}]
        else:
            request["launchType"] = deployment.get("launchType", "FARGATE")
        if tags:
            request["tags"] = tags
        return request


def _without_repeats(doc: dict, messages: list[str], now: float) -> list[str]:
    """Problems already posted in the last six hours are not posted again (ECS omits duplicates so)."""
    recent = {e["message"] for e in doc.get("events", []) if now - e["createdAt"] < _REPEAT_SUPPRESSED_SECONDS}
    name = doc["serviceName"]
    problems = {events.unable_to_start(name), events.deployment_configuration_blocked(name)}
    return [m for m in messages
            if not ((m in problems or m.startswith(events.unable_to_place(name, ""))) and m in recent)]
