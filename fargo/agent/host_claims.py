"""Which Fargo on this host owns a task's host-wide resources (ENI, cgroups): `/run/fargo/claims/<task id>`
holds the owner's data dir. Network namespaces and cgroups are host-wide, so an agent cleaning up after a
crash must tell its own leftovers (or nobody's) from the live tasks of another Fargo on the same host.
"""
from __future__ import annotations

import os
from pathlib import Path

CLAIMS_DIR = Path(os.environ.get("FARGO_CLAIMS_DIR", "/run/fargo/claims"))


def claim(task_id: str, data_dir: Path) -> None:
    CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CLAIMS_DIR / f".{task_id}.tmp"
    tmp.write_text(str(data_dir.resolve()))
    os.replace(tmp, CLAIMS_DIR / task_id)


def release(task_id: str) -> None:
    (CLAIMS_DIR / task_id).unlink(missing_ok=True)


def is_ours_or_nobodys(task_id: str, data_dir: Path) -> bool:
    """True unless another Fargo whose data dir still exists claims the task."""
    try:
        owner = Path((CLAIMS_DIR / task_id).read_text().strip())
    except OSError:
        return True
    return owner == data_dir.resolve() or not owner.exists()


def claimed_by(data_dir: Path) -> list[str]:
    """Task ids this data dir's Fargo claims."""
    mine = str(data_dir.resolve())
    found = []
    for path in CLAIMS_DIR.glob("*") if CLAIMS_DIR.exists() else []:
        if path.name.startswith("."):
            continue
        try:
            if path.read_text().strip() == mine:
                found.append(path.name)
        except OSError:
            pass
    return found
