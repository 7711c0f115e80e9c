"""The agent's own state under DATA_DIR/agent/: each task's latest assignment and latest report.

A task's file (`tasks/<id>.json`) is written before any host work is done for it (assignment). Its newest
report is written before that report is sent (`write_reports`), so a restarted agent resumes from its own
records and containerd, never from the control plane's store, and never goes back to a seq the control plane
has seen. Reports saved between two sends are written once, all of a send in one append to `reports.log`
(one file per report was most of what a burst of starts cost the agent); the newest report of each task wins
when the state is loaded. The log is folded into the task files when it grows large and at each load. A task
file goes once the STOPPED report is acked. Task files are written by atomic renames; a log line cut short by
a crash is ignored (its report was never sent).
"""
from __future__ import annotations

import json
import os
import secrets
import uuid
from pathlib import Path

from fargo.protocol.messages import TaskAssignment, TaskReport, from_json, to_json


LOG_FOLD_BYTES = 4 << 20  # the report log is folded into the task files past this size


class AgentState:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tasks = root / "tasks"
        self._tasks.mkdir(parents=True, exist_ok=True)
        # Each task's document as its two parts' JSON texts: a report rewrites the file, and encoding the
        # assignment (with its task definition) again each time was most of what that cost.
        self._docs: dict[str, dict[str, str]] = {}
        self._unwritten: dict[str, TaskReport] = {}  # by task: its newest report, not yet in its file
        self._log = root / "reports.log"
        self._log_size = 0
        self._only_in_log: set[str] = set()  # tasks whose newest report is in the log, not yet in their file

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
        logged = self._logged_reports()
        tasks = []
        for path in sorted(self._tasks.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                assignment = from_json(TaskAssignment, doc["assignment"])
                report_doc = doc.get("report") or None
                newer = logged.get(assignment.task_id)
                if newer is not None and (report_doc is None or newer["seq"] > report_doc["seq"]):
                    report_doc = newer
                report = from_json(TaskReport, report_doc) if report_doc else None
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a file half written by a crash is left by _write_atomic's tmp, never here
            self._docs[assignment.task_id] = {"assignment": _compact(doc["assignment"])}
            if report_doc:
                self._docs[assignment.task_id]["report"] = _compact(report_doc)
            if report_doc is newer:
                self._only_in_log.add(assignment.task_id)
            tasks.append((assignment, report))
        self._fold_log()
        tasks.sort(key=lambda t: t[0].created_at)
        return tasks

    def _logged_reports(self) -> dict[str, dict]:
        """The newest report of each task in the log (by seq); lines a crash cut short are skipped."""
        newest: dict[str, dict] = {}
        try:
            lines = self._log.read_bytes().splitlines()
        except FileNotFoundError:
            return newest
        for line in lines:
            try:
                entry = json.loads(line)
                task_id, report = entry["task"], entry["report"]
                if task_id not in newest or report["seq"] > newest[task_id]["seq"]:
                    newest[task_id] = report
            except (ValueError, KeyError, TypeError):
                continue
        return newest

    def _fold_log(self) -> None:
        """Every task file gets its newest report; only then is the log emptied (a crash in between leaves
        reports in the log that are no newer than the files': harmless)."""
        for task_id in list(self._only_in_log & set(self._docs)):
            self._flush(task_id)
        self._only_in_log.clear()
        with open(self._log, "wb"):
            pass
        self._log_size = 0

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
        """Write every report saved since the last call (each task's newest), in one append: before they are
        sent."""
        unwritten, self._unwritten = self._unwritten, {}
        lines = []
        for task_id, report in unwritten.items():
            doc = self._docs.get(task_id)
            if doc is not None:
                doc["report"] = _compact(to_json(report))
                lines.append(f'{{"task":{json.dumps(task_id)},"report":{doc["report"]}}}\n')
                self._only_in_log.add(task_id)
        if not lines:
            return
        data = "".join(lines).encode()
        with open(self._log, "ab") as f:
            f.write(data)
        self._log_size += len(data)
        if self._log_size > LOG_FOLD_BYTES:
            self._fold_log()

    def forget(self, task_id: str) -> None:
        self._docs.pop(task_id, None)
        self._unwritten.pop(task_id, None)
        (self._tasks / f"{task_id}.json").unlink(missing_ok=True)

    def known_task_ids(self) -> set[str]:
        return set(self._docs)

    def _flush(self, task_id: str) -> None:
        parts = ",".join(f'"{key}":{text}' for key, text in self._docs[task_id].items())
        _write_atomic(self._tasks / f"{task_id}.json", "{" + parts + "}")
        self._only_in_log.discard(task_id)


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
