"""Every text a service shows of its scheduler's work, in one place: the service events (API form, always
`(service NAME) ...`) and the deployments' rolloutStateReason. Texts as the reference records them (section 2);
the ones it marks UNVERIFIED say so here.
"""
from __future__ import annotations

from collections.abc import Sequence

_TROUBLESHOOTING = "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."


def task_id(task_arn: str) -> str:
    """The 32-hex id at the end of a task ARN, as events name tasks."""
    return task_arn.rsplit("/", 1)[-1]


def _tasks(task_ids: Sequence[str]) -> str:
    return " ".join(f"(task {i})" for i in task_ids)


# --- service events ---

def steady_state(name: str) -> str:
    return f"(service {name}) has reached a steady state."


def deployment_completed(name: str, deployment_id: str) -> str:
    return f"(service {name}) (deployment {deployment_id}) deployment completed."


def started(name: str, task_ids: Sequence[str]) -> str:
    return f"(service {name}) has started {len(task_ids)} tasks: {_tasks(task_ids)}."


def replaced_unhealthy(name: str, task_ids: Sequence[str], replaced: int) -> str:
    """The started event of a pass that replaced `replaced` tasks which failed their health checks."""
    return f"{started(name, task_ids)} Amazon ECS replaced {replaced} tasks due to an unhealthy status."


def stopped(name: str, task_ids: Sequence[str]) -> str:
    return f"(service {name}) has stopped {len(task_ids)} running tasks: {_tasks(task_ids)}."


def failed_health_checks(name: str, task_id: str) -> str:
    return f"(service {name}) (task {task_id}) failed container health checks."


def circuit_breaker_failed(name: str, deployment_id: str) -> str:
    return f"(service {name}) (deployment {deployment_id}) deployment failed: tasks failed to start."


def rolling_back(name: str, deployment_id: str) -> str:
    return f"(service {name}) rolling back to deployment {deployment_id}."


def unable_to_start(name: str) -> str:
    """The throttle's event: tasks keep stopping before they reach RUNNING."""
    return f"(service {name}) is unable to consistently start tasks successfully. {_TROUBLESHOOTING}"


def unable_to_place(name: str, reason: str) -> str:
    """A launch the scheduler could not make; `reason` verbatim (AWS's capacity text ends with the
    Troubleshooting sentence, a start error's does not)."""
    return f"(service {name}) was unable to place a task. Reason: {reason}"


def deployment_configuration_blocked(name: str) -> str:
    """The developer guide prints `service (NAME)`; the API's `(service NAME)` form here is UNVERIFIED."""
    return (f"(service {name}) was unable to stop or start tasks during a deployment because of the service "
            "deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.")


# --- rolloutStateReason ---

CIRCUIT_BREAKER_FAILED = "ECS deployment circuit breaker: tasks failed to start."


def in_progress(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} in progress."


def completed(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} completed."


def rolling_back_reason(deployment_id: str) -> str:
    return f"ECS deployment circuit breaker: rolling back to deploymentId {deployment_id}."
