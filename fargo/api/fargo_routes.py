"""Fargo's own routes on the edge port, for the `fargo` CLI: images and task output."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aiohttp import web

from fargo.agent.agent import Agent
from fargo.api.server import json_error
from fargo.control.tasks import Tasks
from fargo.runtime.client import Containerd
from fargo.runtime.errors import ContainerRuntimeError
from fargo.runtime.records import Image

MAX_LOG_CHUNK = 4 * 1024 * 1024


class FargoRoutes:
    def __init__(self, data_dir: Path, runtime: Containerd, tasks: Tasks, agent: Agent) -> None:
        self.data_dir, self.runtime, self.tasks, self.agent = data_dir, runtime, tasks, agent

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/_fargo/images", self.list_images),
                web.post("/_fargo/images", self.import_image),
                web.get("/_fargo/tasks/{task_id}/logs", self.task_logs)]

    async def list_images(self, _request: web.Request) -> web.Response:
        return web.json_response({"images": [_image_json(i) for i in await self.runtime.list_images()]})

    async def import_image(self, request: web.Request) -> web.Response:
        """The tarball is streamed to a file under the data dir (it may be large), then imported."""
        tmp_dir = self.data_dir / "tmp"
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

    async def task_logs(self, request: web.Request) -> web.Response:
        """What each container of a task wrote, from the byte offsets the caller already has."""
        task_id = request.match_info["task_id"].rsplit("/", 1)[-1]
        task = await self.tasks.find_task(task_id)
        cluster = request.query.get("cluster", "default").rsplit("/", 1)[-1]
        if task is None or task["clusterArn"].rsplit("/", 1)[-1] != cluster:
            return json_error(404, "The referenced task was not found.")
        wanted = request.query.get("container")
        names = [c["name"] for c in task["containers"]]
        if wanted is not None and wanted not in names:
            return json_error(404, f"The task has no container named {wanted}.")
        out = []
        for name in names if wanted is None else [wanted]:
            try:
                offset = max(0, int(request.query.get(f"offset.{name}", "0") or 0))
            except ValueError:
                return json_error(400, f"offset.{name} must be a number.")
            path = self.agent.log_path(task_id, name)
            data = b""
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(MAX_LOG_CHUNK)
            out.append({"name": name, "output": data.decode(errors="replace"), "offset": offset + len(data)})
        return web.json_response({"lastStatus": task["lastStatus"], "containers": out})


def _image_json(image: Image) -> dict:
    return {"name": image.name, "digest": image.digest, "size": image.size,
            "createdAt": image.created.timestamp() if image.created else None}
