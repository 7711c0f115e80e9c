"""What RunTask asks of EFS: one read of everything a task definition's EFS volumes depend on, then a plan per
task (`volume_plans.plan_volumes`), which RunTask keeps in the task's private part for the agent."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fargo.control.context import ControlContext
from fargo.control.efs.volume_plans import EfsView, TaskPlacement, plan_volumes, referenced_ids
from fargo.protocol.messages import EfsVolumePlan
from fargo.store.efs_store import EfsStore


class TaskVolumes:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx
        self.store = EfsStore(ctx.store)

    def read(self, definition: Mapping[str, Any], task_groups: Sequence[str]) -> EfsView | None:
        """The view the definition's EFS volumes are planned from; None when it has no EFS volume (sync)."""
        file_system_ids, access_point_ids = referenced_ids(definition)
        if not file_system_ids:
            return None
        with self.store.reading() as r:
            file_systems = {f.file_system_id: f for f in r.file_systems(file_system_ids)}
            access_points = {a.access_point_id: a for a in r.access_points(access_point_ids)}
            targets = r.mount_targets(file_system_ids)
            enis = {e.eni_id: e for e in r.network.enis(eni_ids=[m.eni_id for m in targets])}
            groups = {m.mount_target_id: list(enis[m.eni_id].group_ids) if m.eni_id in enis else []
                      for m in targets}
            wanted = sorted({*task_groups, *(g for gs in groups.values() for g in gs)})
            rules = r.network.rules(group_ids=wanted)
        return EfsView(file_systems=file_systems, access_points=access_points, mount_targets=targets,
                       mount_target_groups=groups, rules=rules)

    def plan(self, definition: Mapping[str, Any], view: EfsView | None, task: TaskPlacement) -> list[EfsVolumePlan]:
        if view is None:
            return []
        return plan_volumes(definition, view, task, self.ctx.config.region)
