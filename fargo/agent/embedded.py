"""`fargo up`'s own agent: in the same process as the control plane, linked to it directly."""
from __future__ import annotations

from fargo.agent.agent import Agent, AgentSettings
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.task_definition_registry import TaskDefinitionRegistry
from fargo.control.tasks import Tasks
from fargo.runtime.client import Containerd


async def start_embedded_agent(ctx: ControlContext, runtime: Containerd) -> tuple[Tasks, Agent]:
    tasks = Tasks(ctx, Clusters(ctx), TaskDefinitionRegistry(ctx))
    agent = Agent(tasks, runtime, AgentSettings(data_dir=ctx.config.data_dir, region=ctx.config.region,
                                                vpc_cidr=ctx.config.network.cidr,
                                                containerd_address=ctx.config.containerd_address))
    tasks.agent = agent
    await agent.start()
    return tasks, agent
