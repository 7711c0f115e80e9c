"""A container's mount points as ECS resolves them: its own `mountPoints`, then those of the containers named
in `volumesFrom` (readOnly there makes all of them read-only). Volume hooks ask this which of their volumes
go where; the definition's own semantics live here, the volumes themselves in their hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MountPoint:
    source_volume: str
    container_path: str
    read_only: bool = False


def container_mount_points(container: dict[str, Any], containers: list[dict[str, Any]]) -> list[MountPoint]:
    """Every mount point of `container` (by definition), its own first; a path is mounted once (its own wins)."""
    by_name = {c["name"]: c for c in containers}
    out: list[MountPoint] = []
    seen: set[str] = set()

    def add(point: MountPoint) -> None:
        if point.container_path not in seen:
            seen.add(point.container_path)
            out.append(point)

    for mp in container.get("mountPoints") or []:
        add(MountPoint(mp["sourceVolume"], mp["containerPath"], bool(mp.get("readOnly", False))))
    for source in container.get("volumesFrom") or []:
        other = by_name.get(source.get("sourceContainer", ""))
        if other is None:
            continue
        forced = bool(source.get("readOnly", False))
        for mp in other.get("mountPoints") or []:
            add(MountPoint(mp["sourceVolume"], mp["containerPath"], forced or bool(mp.get("readOnly", False))))
    return out
