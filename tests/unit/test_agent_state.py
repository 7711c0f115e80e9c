"""The agent's own state on disk: what a restarted agent loads is each task's newest report written, also from
the report log, a log line cut short by a crash is skipped, and the log is folded into the task files."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from fargo.agent import agent_state
from fargo.agent.agent_state import AgentState
from fargo.protocol.messages import TaskReport
from tests.unit.engine_fakes import TASK_ARN, assignment


def _report(seq: int, status: str = "RUNNING") -> TaskReport:
    return TaskReport(task_arn=TASK_ARN, seq=seq, known_status=status, containers=[])


def _written(state: AgentState, *reports: TaskReport) -> None:
    for report in reports:
        state.save_report(assignment().task_id, report)
        state.write_reports()


def test_a_restarted_agent_loads_the_newest_report_written_to_the_log(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    _written(state, _report(1, "PROVISIONING"), _report(3, "PENDING"), _report(5))
    assert (tmp_path / "reports.log").stat().st_size > 0  # appended to the log, not to the task file
    [(loaded, report)] = AgentState(tmp_path).load()
    assert loaded == assignment() and report == _report(5)
    assert (tmp_path / "reports.log").stat().st_size == 0  # folded into the task file at load
    assert AgentState(tmp_path).load()[0][1] == _report(5)


def test_a_log_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    _written(state, _report(2))
    with open(tmp_path / "reports.log", "ab") as f:
        f.write(b'{"task":"' + assignment().task_id.encode() + b'","report":{"seq":9,')
    assert AgentState(tmp_path).load()[0][1] == _report(2)


def test_the_log_is_folded_into_the_task_files_when_it_grows(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(agent_state, "LOG_FOLD_BYTES", 300)
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    _written(state, *(_report(seq) for seq in range(1, 6)))
    assert (tmp_path / "reports.log").stat().st_size < 300
    assert AgentState(tmp_path).load()[0][1] == _report(5)


def test_a_forgotten_task_does_not_come_back_from_the_log(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    _written(state, _report(7, "STOPPED"))
    state.forget(assignment().task_id)
    assert AgentState(tmp_path).load() == []


def test_an_assignment_saved_after_a_report_keeps_that_report(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    _written(state, _report(4))
    state.save_assignment(dataclasses.replace(assignment(), generation=2, desired_status="STOPPED"))
    (tmp_path / "reports.log").unlink()  # even without the log, the task file has it
    [(loaded, report)] = AgentState(tmp_path).load()
    assert loaded.generation == 2 and report == _report(4)


def test_folding_rewrites_only_the_task_files_whose_newest_report_is_in_the_log(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.save_assignment(assignment())
    other = dataclasses.replace(assignment(), task_arn=TASK_ARN[:-4] + "beef")
    state.save_assignment(other)
    _written(state, _report(2))  # the first task only
    files = {p.name: p.stat().st_ino for p in (tmp_path / "tasks").glob("*.json")}
    state._fold_log()  # (a rewrite is an atomic rename: a new inode)
    after = {p.name: p.stat().st_ino for p in (tmp_path / "tasks").glob("*.json")}
    changed = {name for name in files if after[name] != files[name]}
    assert changed == {f"{assignment().task_id}.json"}
