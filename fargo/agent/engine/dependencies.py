"""dependsOn, evaluated in one place: may a container start, must it keep waiting, or can it never start?"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(str, Enum):
    READY = "READY"
    WAIT = "WAIT"
    NEVER = "NEVER"


@dataclass(frozen=True)
class ContainerProgress:
    """What the agent knows of a dependency right now."""

    started: bool = False
    exited: bool = False
    exit_code: int | None = None
    health: str = "UNKNOWN"  # HEALTHY | UNHEALTHY | UNKNOWN
    failed_to_start: bool = False


def condition_verdict(condition: str, dep: ContainerProgress) -> tuple[Verdict, str]:
    """One dependency condition against one container's progress, with the reason when it is NEVER."""
    if dep.failed_to_start:
        return Verdict.NEVER, "failed to start"
    if condition == "START":
        return (Verdict.READY, "") if dep.started else (Verdict.WAIT, "")
    if condition == "COMPLETE":
        return (Verdict.READY, "") if dep.exited else (Verdict.WAIT, "")
    if condition == "SUCCESS":
        if not dep.exited:
            return Verdict.WAIT, ""
        return (Verdict.READY, "") if dep.exit_code == 0 else (
            Verdict.NEVER, f"exited with code {dep.exit_code} instead of 0")
    if condition == "HEALTHY":
        if dep.health == "HEALTHY":
            return Verdict.READY, ""
        if dep.health == "UNHEALTHY":
            return Verdict.NEVER, "became UNHEALTHY"
        if dep.exited:
            return Verdict.NEVER, "exited before it became HEALTHY"
        return Verdict.WAIT, ""
    return Verdict.NEVER, f"unknown condition {condition}"


def dependencies_verdict(depends_on: tuple[tuple[str, str], ...],
                         progress: dict[str, ContainerProgress]) -> tuple[Verdict, str]:
    """All of a container's dependsOn entries: NEVER wins over WAIT, WAIT over READY."""
    waiting = False
    for name, condition in depends_on:
        verdict, why = condition_verdict(condition, progress.get(name, ContainerProgress()))
        if verdict is Verdict.NEVER:
            return Verdict.NEVER, f"dependency {name} ({condition}) {why}"
        waiting = waiting or verdict is Verdict.WAIT
    return (Verdict.WAIT, "") if waiting else (Verdict.READY, "")


def stop_order(containers: dict[str, tuple[tuple[str, str], ...]]) -> list[list[str]]:
    """Waves of container names to stop: dependents before what they depend on (reverse start order)."""
    remaining = dict(containers)
    waves: list[list[str]] = []
    while remaining:
        needed = {dep for deps in remaining.values() for dep, _ in deps if dep in remaining}
        wave = sorted(n for n in remaining if n not in needed) or sorted(remaining)  # a cycle: stop the rest
        waves.append(wave)
        for n in wave:
            remaining.pop(n)
    return waves
