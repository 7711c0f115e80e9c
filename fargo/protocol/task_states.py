"""The life of a Fargate task, as ECS reports it in `lastStatus`, and the moves allowed between states.

    PROVISIONING ──► PENDING ──► ACTIVATING ──► RUNNING ──► DEACTIVATING ──► STOPPING ──► DEPROVISIONING ──► STOPPED
         │             │            │                                        ▲
         └─────────────┴────────────┴──── (cannot start / stop requested) ───┘

PROVISIONING: task ENI and cgroup.  PENDING: images resolved.  ACTIVATING: containers created and started
in dependsOn order.  RUNNING: the essential containers run.  DEACTIVATING/STOPPING: SIGTERM, stopTimeout,
SIGKILL.  DEPROVISIONING: ENI, cgroup and containers removed.  STOPPED: nothing of the task left on the host.
"""
from __future__ import annotations

from enum import Enum


class TaskState(str, Enum):
    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    ACTIVATING = "ACTIVATING"
    RUNNING = "RUNNING"
    DEACTIVATING = "DEACTIVATING"
    STOPPING = "STOPPING"
    DEPROVISIONING = "DEPROVISIONING"
    STOPPED = "STOPPED"


S = TaskState
LEGAL_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    S.PROVISIONING: frozenset({S.PENDING, S.STOPPING, S.DEPROVISIONING}),
    S.PENDING: frozenset({S.ACTIVATING, S.STOPPING, S.DEPROVISIONING}),
    S.ACTIVATING: frozenset({S.RUNNING, S.DEACTIVATING, S.STOPPING}),
    S.RUNNING: frozenset({S.DEACTIVATING}),
    S.DEACTIVATING: frozenset({S.STOPPING}),
    S.STOPPING: frozenset({S.DEPROVISIONING}),
    S.DEPROVISIONING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset(),
}

ACTIVE_STATES = tuple(s.value for s in TaskState if s is not S.STOPPED)


class IllegalTransition(Exception):
    pass


def check_transition(current: TaskState, target: TaskState) -> None:
    if target not in LEGAL_TRANSITIONS[current]:
        raise IllegalTransition(f"a task cannot go from {current.value} to {target.value}")
