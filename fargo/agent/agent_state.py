"""The agent's own state under DATA_DIR/agent/: each task's latest assignment and latest report.

A task's file is written before any host work is done for it (assignment) and, with its newest report,
before that report is sent (`write_reports`), so a restarted agent resumes from its own records and
containerd, never from the control plane's store, and never goes back to a seq the control plane has seen.
Reports saved between two sends are written once. The file goes once the STOPPED report is acked. Writes are
atomic renames.
"""
from __future__ import annotations

import json
import os
import secrets
import uuid
from pathlib import Path

from fargo.protocol.messages import TaskAssignment, TaskReport, from_json, to_json


class AgentState:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tasks = root / "tasks"
        self._tasks.mkdir(parents=True, exist_ok=True)
        # Each task's document as its two parts' JSON texts: a report rewrites the file, and encoding the
        # assignment (with its task definition) again each time was most of what that cost.
        self._docs: dict[str, dict[str, str]] = {}
        self._unwritten: dict[str, TaskReport] = {}  # by task: its newest report, not yet in its file

    def agent_id(self) -> str:
        """This agent's id, made once and kept (the control plane knows the agent by it)."""
        path = self.root / "agent-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            agent_id = "agent-" + uuid.uuid4().hex[:12]
            _write_atomic(path, agent_id + "\n")
            return agent_id

    def credentials_key(self) -> bytes:
        """A secret of this agent, made once and kept: task credentials ids are derived from it, so the id a
        running container holds in its environment still works after an agent restart."""
        path = self.root / "credentials.key"
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            tmp = path.with_name(f".{path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
            with os.fdopen(fd, "w") as f:
                f.write(key.hex() + "\n")
            os.replace(tmp, path)
            return key

    def load(self) -> list[tuple[TaskAssignment, TaskReport | None]]:
        tasks = []
        for path in sorted(self._tasks.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                assignment = from_json(TaskAssignment, doc["assignment"])
                report = from_json(TaskReport, doc["report"]) if doc.get("report") else None
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a file half written by a crash is left by _write_atomic's tmp, never here
            self._docs[assignment.task_id] = {key: _compact(value) for key, value in doc.items()
                                              if key in ("assignment", "report") and value}
            tasks.append((assignment, report))
        tasks.sort(key=lambda t: t[0].created_at)
        return tasks

    def save_assignment(self, assignment: TaskAssignment) -> None:
        doc = self._docs.setdefault(assignment.task_id, {})
        doc["assignment"] = _compact(to_json(assignment))
        report = self._unwritten.pop(assignment.task_id, None)
        if report is not None:
            doc["report"] = _compact(to_json(report))
        self._flush(assignment.task_id)

    def save_report(self, task_id: str, report: TaskReport) -> None:
        """Keep `report` as the task's newest; it reaches the file with the next `write_reports`."""
        if task_id in self._docs:  # else forgotten already
            self._unwritten[task_id] = report

    def write_reports(self) -> None:
        """Write every report saved since the last call (each task's newest): before they are sent."""
        unwritten, self._unwritten = self._unwritten, {}
        for task_id, report in unwritten.items():
            doc = self._docs.get(task_id)
            if doc is not None:
                doc["report"] = _compact(to_json(report))
                self._flush(task_id)

    def forget(self, task_id: str) -> None:
        self._docs.pop(task_id, None)
        self._unwritten.pop(task_id, None)
        (self._tasks / f"{task_id}.json").unlink(missing_ok=True)

    def known_task_ids(self) -> set[str]:
        return set(self._docs)

    def _flush(self, task_id: str) -> None:
        parts = ",".join(f'"{key}":{text}' for key, text in self._docs[task_id].items())
        _write_atomic(self._tasks / f"{task_id}.json", "{" + parts + "}")


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
