"""The task files hook: the task's /etc/hosts (its own name and address) and /etc/resolv.conf (its VPC's
resolver, as EC2's DHCP options give it), bind-mounted into each container."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskContext, TaskHook
from fargo.network.vpc_resolver import resolv_conf_text
from fargo.runtime.oci_spec import BindMount


class TaskFilesHook(TaskHook):
    name = "task-files"

    def _run_dir(self, task: TaskContext) -> Path:
        return self.host.task_dir(task.task_id) / "run"

    async def prestart(self, task: TaskContext) -> None:
        eni = task.assignment.eni
        short = eni.private_dns_name.split(".")[0]
        hosts = (f"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                 f"{eni.ip} {eni.private_dns_name} {short}\n")
        run_dir = self._run_dir(task)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "hosts").write_text(hosts)
        (run_dir / "resolv.conf").write_text(resolv_conf_text(eni.vpc_cidr, self.host.region))

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.mounts.append(BindMount(str(self._run_dir(task) / "hosts"), "/etc/hosts", readonly=False))
        spec.mounts.append(BindMount(str(self._run_dir(task) / "resolv.conf"), "/etc/resolv.conf", readonly=False))

    async def stop(self, task: TaskContext) -> None:
        await asyncio.to_thread(shutil.rmtree, self._run_dir(task), True)
