"""`fargo up` in one process: store, containerd, control plane, the embedded agent and the edge port.

This is the one place that knows both sides: the control plane and the agent meet only here, through the
in-process `ControlPlane` (`fargo.control.agent_gateway`), which carries the same messages a remote agent
will get over HTTP. Stopping Fargo stops serving; containerd and its tasks keep going and are picked up
on the next start.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from fargo.agent.agent import Agent, AgentSettings
from fargo.agent.execution.registry_hosts import ecr_host, edge_host_names
from fargo.api.ec2 import Ec2Api
from fargo.api.ecr import EcrApi
from fargo.api.ecs import EcsApi
from fargo.api.efs import EfsApi
from fargo.api.fargo_routes import FargoRoutes
from fargo.api.registry_proxy import RegistryProxy
from fargo.api.secretsmanager import SecretsManagerApi
from fargo.api.server import EdgeServer
from fargo.api.ssm import SsmApi
from fargo.config import CONTAINERD_NAMESPACE, ENDPOINT_FILE, Config
from fargo.control.agent_gateway import InProcessControlPlane
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.ecr.ecr import Ecr
from fargo.control.efs.efs import Efs
from fargo.control.secrets.secrets import Secrets
from fargo.control.services.leadership import leadership_for
from fargo.control.services.scheduler import ServiceScheduler
from fargo.control.services.services import Services
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.control.tasks import EMBEDDED_AGENT_ID, Tasks
from fargo.control.vpcs.network import Network
from fargo.runtime.client import Containerd
from fargo.runtime.registry import Credentials, RegistryAccess
from fargo.runtime.containerd_daemon import ensure_containerd
from fargo import gc_pauses, process_memory
from fargo.network.vpc_resolver import parse_upstream
from fargo.registry.daemon import RegistryDaemon
from fargo.store.database import Store

log = logging.getLogger("fargo")
PURGE_EVERY_SECONDS = 60
TRIM_EVERY_SECONDS = 20


class Fargo:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.database_url)
        self.ctx = ControlContext(config, self.store)
        self.network = Network(self.ctx)
        self.efs = Efs(self.ctx)
        self.ecr = Ecr(self.ctx)
        self.secrets = Secrets(self.ctx)
        self.registry = RegistryDaemon(config.data_dir)
        self._registry_proxy: RegistryProxy | None = None
        self.tasks = Tasks(self.ctx, Clusters(self.ctx), TaskDefinitionRegistry(self.ctx), self.network)
        self.services = Services(self.ctx, self.tasks, self.network)
        self.tasks.services = self.services  # ListTasks by serviceName
        self.scheduler: ServiceScheduler | None = None
        self.runtime: Containerd | None = None
        self.agent: Agent | None = None
        self._runner: web.AppRunner | None = None
        self._purge: asyncio.Task[None] | None = None
        self._trim: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.store.migrate_apart)
        await asyncio.to_thread(self.network.ensure_default)
        await asyncio.to_thread(self.efs.resume)
        await self.registry.start()
        if cfg.run_agent:
            await self._start_agent()
        else:
            log.info("a control-plane replica (--no-agent): no agent, no containerd")
        self._purge = asyncio.create_task(self._purge_stopped_tasks())
        self.scheduler = ServiceScheduler(self.ctx, self.services, self.tasks, self.network,
                                          leadership_for(cfg.database_url))
        self.scheduler.start()
        self._trim = asyncio.create_task(self._trim_memory())

        ecs = EcsApi(self.ctx, self.tasks, self.services)
        ec2 = Ec2Api(self.network)
        edge = EdgeServer([ecs.service(), ec2.service(), EfsApi(self.efs).service(),
                            EcrApi(self.ecr).service(), SecretsManagerApi(self.secrets).service(),
                            SsmApi(self.secrets).service()], self._health)
        # `fargo image pull` from the host: Fargo's own registry names go to the edge port, with a fresh token.
        own = edge_host_names(cfg.listen_host, cfg.listen_port) | {ecr_host(cfg.account_id, cfg.region)}
        access = RegistryAccess(plain_http=cfg.insecure_registries,
                                endpoints={name: f"http://{cfg.listen_host}:{cfg.listen_port}" for name in own})
        edge.add_routes(FargoRoutes(cfg.data_dir, self.runtime, self.tasks, self.agent, access=access,
                                    credentials=lambda host: self._own_registry_login(host, own)).routes())
        self._registry_proxy = RegistryProxy(self.registry.socket, self.ecr.tokens, self.ecr.pushes, self.ecr.names)
        edge.add_routes(self._registry_proxy.routes())
        self._runner = web.AppRunner(edge.app, access_log=None)
        await self._runner.setup()
        gc_pauses.freeze_what_start_loaded()  # (its one collection comes before the port takes requests)
        site = web.TCPSite(self._runner, cfg.listen_host, cfg.listen_port, reuse_address=True)
        await site.start()
        (cfg.data_dir / ENDPOINT_FILE).write_text(f"http://{cfg.listen}\n")
        log.info("Fargo is serving on http://%s", cfg.listen)

    async def _start_agent(self) -> None:
        """containerd and the embedded agent, which long-polls this process's control plane."""
        cfg = self.config
        address = await asyncio.to_thread(ensure_containerd, cfg.data_dir, cfg.containerd_address)
        self.runtime = await Containerd.connect(address, CONTAINERD_NAMESPACE)
        log.info("containerd at %s (namespace %s)", address, CONTAINERD_NAMESPACE)
        settings = AgentSettings(
            data_dir=cfg.data_dir, region=cfg.region, vpc_cidr=cfg.network.cidr,
            availability_zones=sorted({s.availability_zone for s in cfg.network.subnets}),
            containerd_address=cfg.containerd_address, agent_id=EMBEDDED_AGENT_ID,
            dns_upstreams=tuple(parse_upstream(u) for u in cfg.dns_upstreams), network_prefix=cfg.network_prefix,
            efs_root=cfg.efs_data_root, edge_address=(cfg.listen_host, cfg.listen_port), account_id=cfg.account_id,
            insecure_registries=frozenset(cfg.insecure_registries))
        gateway = InProcessControlPlane(self.ctx, self.tasks, self.network)
        self.network.on_change = gateway.network_changed  # a rule change wakes the agents' polls
        self.efs.on_change = gateway.network_changed  # so does a mount target's (group members change)
        self.agent = Agent(self.runtime, settings, gateway)
        await self.agent.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        for task in (self._purge, self._trim):
            if task is not None:
                task.cancel()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.agent is not None:
            await self.agent.close()
        if self.runtime is not None:
            await self.runtime.close()
        await self.efs.close()
        if self._registry_proxy is not None:
            await self._registry_proxy.close()
        await self.registry.stop()
        self.store.close()

    def _own_registry_login(self, host: str, own: frozenset[str]) -> Credentials | None:
        if host not in own:
            return None
        return Credentials("AWS", self.ecr.tokens.issue().password)

    async def _trim_memory(self) -> None:
        while True:
            await asyncio.sleep(TRIM_EVERY_SECONDS)
            process_memory.trim()  # what bursts of work freed goes back to the system (a few ms)

    async def _purge_stopped_tasks(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                await self.tasks.purge_old()
            except Exception:  # noqa: BLE001 - retried next round
                log.exception("purging stopped tasks failed")


    async def _health(self) -> tuple[bool, dict]:
        detail: dict = {"controlPlane": "ok", "agent": "ok" if self.agent is not None else "absent"}
        # which replica runs the service scheduler (on PostgreSQL one at a time; on SQLite always this one)
        detail["scheduler"] = "leader" if self.scheduler is not None and self.scheduler.leading else "standby"
        ok = True
        try:
            await asyncio.to_thread(self._ping_store)
        except Exception as e:  # noqa: BLE001 - health reports any failure as not ready
            ok, detail["controlPlane"] = False, f"store: {e}"
        if self.config.run_agent:  # a `--no-agent` replica has no containerd
            try:
                assert self.runtime is not None
                detail["containerd"] = await self.runtime.version()
            except Exception as e:  # noqa: BLE001
                ok, detail["containerd"] = False, f"unavailable: {e}"
        else:
            detail["containerd"] = "absent"
        if self.agent is not None and not self.agent.ready:
            ok, detail["agent"] = False, "not ready (starting, or its loop has ended)"
        # A registry being restarted makes pushes and pulls of Fargo's ECR wait, so Fargo is not ready then.
        why = await self.registry.health()
        detail["registry"] = "ok" if why is None else why
        ok = ok and why is None
        return ok, detail

    def _ping_store(self) -> None:
        with self.store.engine.connect() as c:
            c.execute(text("SELECT 1"))
