"""What an agent asks of the control plane; `fargo up` links them in process, a remote agent over HTTP.

Agent-initiated, level-triggered (after Nomad's client and the ECS agent): the agent says hello, then
waits for assignments newer than the generation it holds, and sends its reports in batches until acked.
"""
from __future__ import annotations

from typing import Protocol

from fargo.protocol.messages import AgentHello, AssignmentBatch, Lease, ReportAck, TaskReport


class ControlPlaneUnavailable(Exception):
    """The control plane did not answer; the agent keeps running its tasks and tries again."""


class ControlPlane(Protocol):
    async def hello(self, hello: AgentHello) -> Lease:
        """Register (idempotent by agent id) and get a lease the agent renews with its next calls."""
        ...

    async def assignments(self, agent_id: str, since: int | None, timeout: float) -> AssignmentBatch:
        """Assignments with a generation above `since`, waiting up to `timeout` seconds for one to appear.

        since=None returns the agent's whole desired set (`full`) at once: what a (re)connecting agent asks."""
        ...

    async def report(self, agent_id: str, reports: list[TaskReport]) -> ReportAck:
        """Apply what is new in `reports`; the ack names, per task, the seq that is now safe to forget."""
        ...
