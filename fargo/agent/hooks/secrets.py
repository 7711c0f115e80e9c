"""The secrets hook: in PENDING, before any pull, the task's execution resources are fetched as Fargate 1.4.0
fetches them: container `secrets` become environment variables, `logConfiguration.secretOptions` options of
the log driver, `repositoryCredentials` and Fargo's ECR auth (one token, kept while it is good) the credentials
of the image pull. A failure stops the task with Fargate's ResourceInitializationError text (1.3.0: the ECS
agent's own texts).

Values stay in memory (ContainerRun); the container's own environment is the only place they are written.
"""
from __future__ import annotations

import logging

from fargo.agent.execution.aws_calls import ServiceEndpoint
from fargo.agent.execution.paths import execution_path
from fargo.agent.execution.registry_hosts import is_fargo_registry
from fargo.agent.execution.retrieval import EcrAuthorization, RetrievalFailed, fetch_values, registry_credentials
from fargo.agent.hooks.base import (ContainerRun, ContainerSpecContribution, HookPhase, HostFacilities,
                                    TaskCannotStart, TaskContext, TaskHook, resumed_past_pending)
from fargo.protocol import stop_reasons as reasons

log = logging.getLogger(__name__)


class SecretsHook(TaskHook):
    name = "secrets"
    phase = HookPhase.PENDING

    def __init__(self, host: HostFacilities) -> None:
        super().__init__(host)
        self._ecr = EcrAuthorization()  # shared by the tasks of this platform

    async def prestart(self, task: TaskContext) -> None:
        wanted = [c for c in task.containers.values() if _needs_fetch(c, self.host)]
        if not wanted:
            return
        path = execution_path(task.platform, task.task_id, task.assignment.eni,
                              network_prefix=self.host.network_prefix, region=self.host.region,
                              edge=self.host.edge_address)
        try:
            await self._fetch(task, wanted, path.api)
        except RetrievalFailed as failed:
            if resumed_past_pending(task):
                # Resumed after an agent restart: the containers hold their values already.
                log.warning("task %s: execution resources not fetched again: %s", task.task_id, failed.step)
                return
            raise TaskCannotStart(reasons.execution_resource_failed(
                task.platform, failed.step, failed.detail, failed.attempts, network=failed.network,
                region=self.host.region)) from None

    async def _fetch(self, task: TaskContext, containers: list[ContainerRun], api: ServiceEndpoint) -> None:
        value_froms = [s["valueFrom"] for c in containers for s in _secrets(c)]
        values = await fetch_values(api, value_froms) if value_froms else {}
        ecr = None
        for container in containers:
            container.secret_environment = {s["name"]: values[s["valueFrom"]]
                                            for s in container.definition.get("secrets") or []}
            container.log_secret_options = {s["name"]: values[s["valueFrom"]] for s in _log_secrets(container)}
            credentials = (container.definition.get("repositoryCredentials") or {}).get("credentialsParameter")
            if credentials:
                container.registry_credentials = await registry_credentials(api, credentials)
            elif is_fargo_registry(container.definition["image"], self.host):
                ecr = ecr or await self._ecr.credentials(api)
                container.registry_credentials = ecr

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        spec.environment.update(container.secret_environment)

    async def stop(self, task: TaskContext) -> None:
        for container in task.containers.values():  # nothing outlives the task in memory either
            container.secret_environment, container.log_secret_options = {}, {}
            container.registry_credentials = None


def _secrets(container: ContainerRun) -> list[dict]:
    return [*(container.definition.get("secrets") or []), *_log_secrets(container)]


def _log_secrets(container: ContainerRun) -> list[dict]:
    return list((container.definition.get("logConfiguration") or {}).get("secretOptions") or [])


def _needs_fetch(container: ContainerRun, host: HostFacilities) -> bool:
    definition = container.definition
    return bool(_secrets(container) or definition.get("repositoryCredentials")
                or is_fargo_registry(definition["image"], host))
