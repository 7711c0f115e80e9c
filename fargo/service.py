"""`fargo up` in one process: store, containerd, control plane, the embedded agent and the edge port.

Stopping Fargo stops serving; containerd and the tasks it runs keep going and are picked up on the next start.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from fargo.api.ec2 import Ec2Api
from fargo.api.ecs import EcsApi
from fargo.agent.agent import Agent
from fargo.api.fargo_routes import FargoRoutes
from fargo.api.server import EdgeServer
from fargo.config import CONTAINERD_NAMESPACE, ENDPOINT_FILE, Config
from fargo.control.context import ControlContext
from fargo.control.tasks import Tasks
from fargo.runtime.client import Containerd
from fargo.runtime.containerd_daemon import ensure_containerd
from fargo.store.database import Store

log = logging.getLogger("fargo")


class Fargo:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.database_url)
        self.ctx = ControlContext(config, self.store)
        self.runtime: Containerd | None = None
        self.agent: Agent | None = None
        self.tasks: Tasks | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.store.migrate)
        address = await asyncio.to_thread(ensure_containerd, cfg.data_dir, cfg.containerd_address)
        self.runtime = await Containerd.connect(address, CONTAINERD_NAMESPACE)
        log.info("containerd at %s (namespace %s)", address, CONTAINERD_NAMESPACE)
        await self._start_agent()

        ecs = EcsApi(self.ctx, self.tasks)
        ec2 = Ec2Api(cfg, self._used_ips)
        edge = EdgeServer([ecs.service()], {"ec2": ec2.service()}, self._health)
        assert self.tasks is not None and self.agent is not None
        edge.add_routes(FargoRoutes(cfg.data_dir, self.runtime, self.tasks, self.agent).routes())
        self._runner = web.AppRunner(edge.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.listen_host, cfg.listen_port, reuse_address=True)
        await site.start()
        (cfg.data_dir / ENDPOINT_FILE).write_text(f"http://{cfg.listen}\n")
        log.info("Fargo is serving on http://%s", cfg.listen)

    async def _start_agent(self) -> None:
        from fargo.agent.embedded import start_embedded_agent

        assert self.runtime is not None
        self.tasks, self.agent = await start_embedded_agent(self.ctx, self.runtime)

    def _used_ips(self, subnet_id: str) -> int:
        return self.tasks.used_ip_count(subnet_id) if self.tasks is not None else 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.agent is not None:
            await self.agent.close()
        if self.runtime is not None:
            await self.runtime.close()
        self.store.close()

    async def _health(self) -> tuple[bool, dict]:
        detail: dict = {"controlPlane": "ok", "agent": "ok" if self.agent is not None else "absent"}
        ok = True
        try:
            await asyncio.to_thread(self._ping_store)
        except Exception as e:  # noqa: BLE001 - health reports any failure as not ready
            ok, detail["controlPlane"] = False, f"store: {e}"
        try:
            assert self.runtime is not None
            detail["containerd"] = await self.runtime.version()
        except Exception as e:  # noqa: BLE001
            ok, detail["containerd"] = False, f"unavailable: {e}"
        if self.agent is not None and not self.agent.ready:
            ok, detail["agent"] = False, "starting"
        return ok, detail

    def _ping_store(self) -> None:
        with self.store.engine.connect() as c:
            c.execute(text("SELECT 1"))
