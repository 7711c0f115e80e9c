"""The metadata environment hook: the variables every Fargate container finds (execution environment,
region, and the task metadata endpoint's URIs for this container).
"""
from __future__ import annotations

from fargo.agent.hooks.base import ContainerRun, ContainerSpecContribution, TaskContext, TaskHook

METADATA_URI = "http://169.254.170.2"


class MetadataEnvHook(TaskHook):
    name = "metadata-env"

    def contribute(self, task: TaskContext, container: ContainerRun, spec: ContainerSpecContribution) -> None:
        rid = container.runtime_id
        spec.environment.update({
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
            "AWS_REGION": self.host.region,
            "AWS_DEFAULT_REGION": self.host.region,
            "ECS_CONTAINER_METADATA_URI": f"{METADATA_URI}/v3/{rid}",
            "ECS_AGENT_URI": f"{METADATA_URI}/api/{rid}",
        })
        if task.platform.metadata_v4:  # v4 arrived with platform 1.4.0
            spec.environment["ECS_CONTAINER_METADATA_URI_V4"] = f"{METADATA_URI}/v4/{rid}"
