"""The control plane's side of the agent protocol, in process: what `fargo up`'s embedded agent talks to.

Everything it hands out is built fresh from the store as protocol messages (JSON values only), so the
embedded agent holds nothing the control plane also holds, exactly as a remote agent over HTTP would.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from fargo.control.context import ControlContext
from fargo.control.task_assignments import build_assignment
from fargo.control.task_reports import merge_reports
from fargo.control.tasks import Tasks
from fargo.protocol.control_plane import ControlPlane
from fargo.protocol.messages import (AgentHello, AssignmentBatch, Lease, ReportAck, TaskAssignment, TaskReport,
                                     VpcPolicy, from_json, to_json)

log = logging.getLogger("fargo.control")

LEASE_SECONDS = 30.0
# Another replica's changes ring no bell here: a waiting agent looks at the store this often as well. On
# SQLite one process owns the store, so 5 s (each look costs a thread hop and a query, the idle CPU of a
# quiet Fargo); on PostgreSQL a `--no-agent` replica's RunTask and StopTask reach the agent within 1 s.
STORE_POLL_SECONDS = 5.0
SHARED_STORE_POLL_SECONDS = 1.0


class AgentNetworks(Protocol):
    """The VPC side an agent needs (fargo.control.vpcs.Network)."""

    def vpc_ids_of_agent(self, agent_id: str) -> list[str]: ...

    def vpc_policies(self, vpc_ids: list[str]) -> list[VpcPolicy]: ...


class InProcessControlPlane(ControlPlane):
    def __init__(self, ctx: ControlContext, tasks: Tasks, network: AgentNetworks,
                 poll_seconds: float | None = None) -> None:
        self.ctx = ctx
        self.tasks = tasks
        self.network = network
        if poll_seconds is None:
            shared = not ctx.config.database_url.startswith("sqlite")
            poll_seconds = SHARED_STORE_POLL_SECONDS if shared else STORE_POLL_SECONDS
        self.poll_seconds = poll_seconds
        self._loop = asyncio.get_running_loop()
        self._networks_sent: dict[str, list[VpcPolicy]] = {}  # by agent: the policies of its last batch
        self._policy_cache: dict[str, tuple[int, list[VpcPolicy]]] = {}  # by agent: (store generation, policies)
        # by agent: (generation, changes count before the read) of the last batch handed out
        self._sent_at: dict[str, tuple[int, int]] = {}
        self.agents: dict[str, AgentHello] = {}  # by agent id, as each last said hello
        self.last_seen: dict[str, float] = {}  # agent id -> monotonic time of its last call

    async def hello(self, hello: AgentHello) -> Lease:
        hello = from_json(AgentHello, to_json(hello))
        self.agents[hello.agent_id] = hello
        self._seen(hello.agent_id)
        log.info("agent %s says hello (zones %s, version %s)", hello.agent_id,
                 ",".join(hello.availability_zones), hello.version)
        return Lease(agent_id=hello.agent_id, ttl_seconds=LEASE_SECONDS)

    async def assignments(self, agent_id: str, since: int | None, timeout: float) -> AssignmentBatch:
        self._seen(agent_id)
        deadline = time.monotonic() + max(0.0, timeout)
        seen = self.tasks.changes.count(agent_id)
        if since is not None and self._sent_at.get(agent_id) == (since, seen):
            # Nothing rang since the read behind the batch the agent just took: its next look at the store
            # waits for a change (or the poll), instead of a query that would find nothing, in the middle of
            # the new tasks' start.
            await self.tasks.changes.wait(agent_id, seen, min(deadline - time.monotonic(), self.poll_seconds))
        while True:
            seen = self.tasks.changes.count(agent_id)
            batch = await asyncio.to_thread(self._batch, agent_id, since)
            remaining = deadline - time.monotonic()
            if batch.assignments or batch.full or remaining <= 0 \
                    or batch.networks != self._networks_sent.get(agent_id):
                self._networks_sent[agent_id] = batch.networks
                self._sent_at[agent_id] = (batch.generation, seen)
                return batch
            await self.tasks.changes.wait(agent_id, seen, min(remaining, self.poll_seconds))

    async def report(self, agent_id: str, reports: list[TaskReport]) -> ReportAck:
        self._seen(agent_id)
        reports = [from_json(TaskReport, to_json(r)) for r in reports]
        outcome = await asyncio.to_thread(merge_reports, self.ctx.store, reports)
        for changed in sorted(outcome.desired_changed):
            await self.tasks.changes.changed(changed)
        if outcome.stopped:
            self.tasks.notify_stopped(outcome.stopped)
        if outcome.service_tasks_changed:
            self.tasks.notify_service_tasks_changed()
        return ReportAck(acked=dict(outcome.acked))

    def network_changed(self) -> None:
        """Security groups or rules changed (from any thread): every agent's waiting poll looks again, so a
        rule reaches running tasks within a poll's round trip."""
        for agent_id in list(self.agents):
            asyncio.run_coroutine_threadsafe(self.tasks.changes.changed(agent_id), self._loop)

    # --- helpers -------------------------------------------------------------------------------

    def _batch(self, agent_id: str, since: int | None) -> AssignmentBatch:
        generation, rows = self.ctx.store.assigned_tasks(agent_id, since)
        store_generation = generation
        if since is not None and since > generation:  # the agent's generation is from another store (reset?): send it all again
            log.warning("agent %s asked for generations above %d, the store has %d: sending its whole set",
                        agent_id, since, generation)
            since = None
            generation, rows = self.ctx.store.assigned_tasks(agent_id, None)
            store_generation = generation
        assignments: list[TaskAssignment] = []
        for record, definition in rows:
            if definition is None:
                log.error("task %s: its task definition %s is gone; it cannot be assigned",
                          record.doc["taskArn"], record.doc.get("taskDefinitionArn"))
                continue
            assignments.append(build_assignment(record.doc, record.generation, definition))
            generation = max(generation, record.generation)
        return AssignmentBatch(generation=generation, assignments=assignments, full=since is None,
                               networks=self._networks_of(agent_id, store_generation))

    def _networks_of(self, agent_id: str, generation: int) -> list[VpcPolicy]:
        """The agent's VPC policies, built again only when the store's generation moved: a rule change and a
        new ENI (RunTask) both bump it. (A stopped task's address leaves its groups' member sets with the next
        bump; before one, no new task can hold that address.)"""
        cached = self._policy_cache.get(agent_id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        policies = self.network.vpc_policies(self.network.vpc_ids_of_agent(agent_id))
        networks = from_json(list[VpcPolicy], to_json(policies))
        self._policy_cache[agent_id] = (generation, networks)
        return networks

    def _seen(self, agent_id: str) -> None:
        self.last_seen[agent_id] = time.monotonic()
