"""`fargo up` in one process: store, containerd, control plane, the embedded agent and the edge port.

Stopping Fargo stops serving; containerd and the tasks it runs keep going and are picked up on the next start.
"""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from fargo.api.ec2 import Ec2Api
from fargo.api.ecs import EcsApi
from fargo.agent.agent import Agent
from fargo.api.server import EdgeServer, json_error
from fargo.config import CONTAINERD_NAMESPACE, Config
from fargo.control.context import ControlContext
from fargo.control.tasks import Tasks
from fargo.runtime.client import Containerd
from fargo.runtime.containerd_daemon import ensure_containerd
from fargo.runtime.errors import ContainerRuntimeError
from fargo.runtime.records import Image
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
        edge.add_routes([
            web.get("/_fargo/images", self._list_images),
            web.post("/_fargo/images", self._import_image),
            web.get("/_fargo/tasks/{task_id}/logs", self._task_logs),
        ])
        edge.app._client_max_size = 0  # image uploads are streamed, not read whole
        self._runner = web.AppRunner(edge.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.listen_host, cfg.listen_port, reuse_address=True)
        await site.start()
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

    async def _list_images(self, _request: web.Request) -> web.Response:
        assert self.runtime is not None
        images = await self.runtime.list_images()
        return web.json_response({"images": [_image_json(i) for i in images]})

    async def _import_image(self, request: web.Request) -> web.Response:
        assert self.runtime is not None
        tmp_dir = self.config.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=tmp_dir, suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    f.write(chunk)
            images = await self.runtime.import_image(Path(path), request.query.get("name"))
        except ContainerRuntimeError as e:
            return json_error(400, f"cannot import image: {e}")
        finally:
            os.unlink(path)
        return web.json_response({"images": [_image_json(i) for i in images]})

    async def _task_logs(self, request: web.Request) -> web.Response:
        """What each container of a task wrote, from the byte offsets the caller already has."""
        task_id = request.match_info["task_id"].rsplit("/", 1)[-1]
        task = self.store.get_task(task_id) if self.tasks is not None else None
        if task is not None and self.tasks is not None:
            task = self.tasks.live.get(task_id, task)
        cluster = request.query.get("cluster", "default")
        if task is None or self.agent is None or task["clusterArn"].rsplit("/", 1)[-1] != cluster.rsplit("/", 1)[-1]:
            return json_error(404, "The referenced task was not found.")
        wanted = request.query.get("container")
        names = [c["name"] for c in task["containers"]]
        if wanted is not None and wanted not in names:
            return json_error(404, f"The task has no container named {wanted}.")
        out = []
        for name in names if wanted is None else [wanted]:
            offset = int(request.query.get(f"offset.{name}", "0") or 0)
            path = self.agent.log_path(task_id, name)
            data = b""
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(4 * 1024 * 1024)
            out.append({"name": name, "output": data.decode(errors="replace"), "offset": offset + len(data)})
        return web.json_response({"lastStatus": task["lastStatus"], "containers": out})


def _image_json(image: Image) -> dict:
    return {"name": image.name, "digest": image.digest, "size": image.size,
            "createdAt": image.created.timestamp() if image.created else None}
