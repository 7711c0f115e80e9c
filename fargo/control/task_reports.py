"""Known state coming up: merging an agent's `TaskReport`s into the task documents the API shows.

A report is applied only when its seq is above the last one applied and its status is not behind the
task's: a replayed, late or out-of-order report changes nothing, and is acked all the same (it is done).
A stop asked by either side keeps the first stop code and reason given; desired status never goes back.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from fargo import clock
from fargo.protocol.messages import DESIRED_RUNNING, DESIRED_STOPPED, ContainerReport, TaskReport
from fargo.protocol.task_states import TaskState
from fargo.store.database import Store

log = logging.getLogger("fargo.control")

_TASK_ORDER = {state.value: rank for rank, state in enumerate(TaskState)}
_CONTAINER_ORDER = {"PENDING": 0, "RUNNING": 1, "STOPPED": 2}
_MAX_REASON = 1024  # ECS keeps at most this much of a stoppedReason

# report field -> task document key, set whenever the report has a value
_TASK_FIELDS = (
    ("connectivity", "connectivity"), ("connectivity_at", "connectivityAt"),
    ("pull_started_at", "pullStartedAt"), ("pull_stopped_at", "pullStoppedAt"), ("started_at", "startedAt"),
    ("execution_stopped_at", "executionStoppedAt"), ("stopped_at", "stoppedAt"),
)
_CONTAINER_FIELDS = (
    ("last_status", "lastStatus"), ("exit_code", "exitCode"), ("reason", "reason"),
    ("health_status", "healthStatus"), ("runtime_id", "runtimeId"), ("image_digest", "imageDigest"),
)


def is_forward(current: str, reported: str) -> bool:
    """A report may keep the task's status or move it on, never back (it may skip states it missed)."""
    return _TASK_ORDER[reported] >= _TASK_ORDER[current]


def apply_report(doc: dict, report: TaskReport, *, applied_seq: int) -> bool:
    """Merge `report` into the task document `doc` (in place) when it is newer than `applied_seq` and
    does not move the task backwards; True when it was applied. `version` counts the changes it made."""
    if report.seq <= applied_seq or report.known_status not in _TASK_ORDER:
        return False
    if not is_forward(doc["lastStatus"], report.known_status):
        return False
    before = json.dumps(doc)  # a C-speed snapshot: deepcopy was most of a merge's cost
    doc["lastStatus"] = report.known_status
    doc["healthStatus"] = report.health_status
    for attr, key in _TASK_FIELDS:
        value = getattr(report, attr)
        if value is not None:
            doc[key] = value
    if report.stopping_at is not None:  # the moment the stop began: StopTask's, when it came first
        doc.setdefault("stoppingAt", report.stopping_at)
    by_name = {c["name"]: c for c in doc.get("containers", [])}
    for container in report.containers:
        if container.name in by_name:
            _merge_container(by_name[container.name], container)
    if report.attachment is not None:
        _merge_attachment(doc, report)
    if report.desired_status == DESIRED_STOPPED or report.known_status == TaskState.STOPPED.value:
        raise_desired_stop(doc, report.stop_code, report.stopped_reason)
    if doc["lastStatus"] == TaskState.STOPPED.value:
        doc.setdefault("stoppedAt", report.execution_stopped_at or clock.now())
    if json.dumps(doc) != before:
        doc["version"] = doc.get("version", 0) + 1
    return True


def raise_desired_stop(doc: dict, stop_code: str | None, stopped_reason: str | None,
                       stopping_at: float | None = None) -> bool:
    """Desired status to STOPPED, keeping the first stop code and reason given; True when it was RUNNING."""
    raised = doc["desiredStatus"] == DESIRED_RUNNING
    doc["desiredStatus"] = DESIRED_STOPPED
    if stop_code is not None:
        doc.setdefault("stopCode", stop_code)
    if stopped_reason is not None:
        doc.setdefault("stoppedReason", stopped_reason[:_MAX_REASON])
    if stopping_at is not None:
        doc.setdefault("stoppingAt", stopping_at)
    return raised


def _merge_container(doc: dict, report: ContainerReport) -> None:
    current = _CONTAINER_ORDER.get(doc.get("lastStatus", "PENDING"), 0)
    for attr, key in _CONTAINER_FIELDS:
        value = getattr(report, attr)
        if value is None:
            continue
        if key == "lastStatus" and _CONTAINER_ORDER.get(value, 0) < current:
            continue  # a container does not come back from STOPPED either
        doc[key] = value


def _merge_attachment(doc: dict, report: TaskReport) -> None:
    assert report.attachment is not None
    attachments = doc.get("attachments") or []
    target = next((a for a in attachments if a.get("id") == report.attachment.attachment_id),
                  attachments[0] if attachments else None)
    if target is None:
        return
    target["status"] = report.attachment.status
    if report.attachment.details:
        target["details"] = [dict(d) for d in report.attachment.details]


# --- the store transaction ---------------------------------------------------------------------

@dataclass
class MergeOutcome:
    """What one `merge_reports` call did: the acks, and what the control plane must tell others."""

    acked: dict[str, int] = field(default_factory=dict)
    # agents whose desired set changed (an agent asked to stop its own task): their waiters wake
    desired_changed: set[str] = field(default_factory=set)
    # documents (with the private part) of tasks that reached STOPPED in this call
    stopped: list[dict] = field(default_factory=list)
    # a service's task changed its status or health: its scheduler looks again at once
    service_tasks_changed: bool = False


def merge_reports(store: Store, reports: list[TaskReport]) -> MergeOutcome:
    """Apply a batch of reports in one transaction (sync: call it through asyncio.to_thread)."""
    outcome = MergeOutcome()
    if not reports:
        return outcome
    with store.task_writes() as w:
        records = w.lock(r.task_arn for r in reports)
        desired_before = {arn: record.doc["desiredStatus"] for arn, record in records.items()}
        applied: set[str] = set()
        for report in sorted(reports, key=lambda r: (r.task_arn, r.seq)):
            arn, record = report.task_arn, records.get(report.task_arn)
            if record is None:
                log.warning("report for unknown task %s (seq %d) dropped", arn, report.seq)
                outcome.acked[arn] = max(report.seq, outcome.acked.get(arn, 0))
                continue
            was_stopped = record.doc["lastStatus"] == TaskState.STOPPED.value
            seen = (record.doc["lastStatus"], record.doc.get("healthStatus"))
            if apply_report(record.doc, report, applied_seq=record.report_seq):
                record.report_seq = report.seq
                applied.add(arn)
                if str(record.doc.get("group", "")).startswith("service:") and \
                        seen != (record.doc["lastStatus"], record.doc.get("healthStatus")):
                    outcome.service_tasks_changed = True
                if not was_stopped and record.doc["lastStatus"] == TaskState.STOPPED.value:
                    w.release_ip(arn)
                    outcome.stopped.append(record.doc)
            else:
                log.debug("report %d of task %s not applied (held %d, %s)", report.seq, arn, record.report_seq,
                          record.doc["lastStatus"])
            # stale, duplicate and backward reports will never apply: they are done too
            outcome.acked[arn] = max(report.seq, record.report_seq, outcome.acked.get(arn, 0))
        for arn in sorted(applied):
            record = records[arn]
            if desired_before[arn] == DESIRED_RUNNING and record.doc["desiredStatus"] == DESIRED_STOPPED:
                record.generation = w.next_generation()  # the assignment changed: desired is STOPPED now
                if record.agent_id is not None:
                    outcome.desired_changed.add(record.agent_id)
            w.save(record)
    return outcome
