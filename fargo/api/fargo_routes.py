"""Fargo's own routes on the edge port, for the `fargo` CLI: images (list, import, pull, remove, prune),
task output, and Fargate Spot interruptions.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import cast
from pathlib import Path

from aiohttp import web

from fargo.agent.agent import Agent
from fargo.api.server import json_error
from fargo.control.spot import interrupt_spot_tasks
from fargo.control.tasks import Tasks
from fargo.errors import AwsError
from fargo.runtime.client import Containerd
from fargo.runtime.errors import ContainerRuntimeError, ImageNotFound
from fargo.runtime.image_pull import PulledImage, PullProgress
from fargo.runtime.platforms import Platform
from fargo.runtime.records import Image
from fargo.runtime.registry import Credentials, RegistryAccess, split_reference

_log = logging.getLogger(__name__)
MAX_LOG_CHUNK = 4 * 1024 * 1024
PROGRESS_INTERVAL_S = 0.1  # at most ten progress lines a second

CredentialsProvider = Callable[[str], "Credentials | None"]  # registry host -> credentials for it


class FargoRoutes:
    """`credentials` gives the credentials of a registry host (Fargo's own registry) when a pull brings none;
    `access` how to reach registries from the host (plain-HTTP hosts, Fargo's own names mapped to the edge port).
    A `--no-agent` replica has no runtime and no agent: its image and task-output routes say so."""

    def __init__(self, data_dir: Path, runtime: Containerd | None, tasks: Tasks, agent: Agent | None, *,
                 credentials: CredentialsProvider | None = None, access: RegistryAccess | None = None) -> None:
        self.data_dir, self.tasks = data_dir, tasks
        self.has_agent = runtime is not None and agent is not None
        self.runtime, self.agent = cast(Containerd, runtime), cast(Agent, agent)  # routed to only when has_agent
        self.credentials = credentials or (lambda _host: None)
        self.access = access

    def routes(self) -> list[web.RouteDef]:
        spot = web.post("/_fargo/spot/interrupt", self.interrupt_spot)
        if not self.has_agent:
            return [web.route("*", "/_fargo/images{rest:.*}", _no_agent),
                    web.get("/_fargo/tasks/{task_id}/logs", _no_agent), spot]
        return [web.get("/_fargo/images", self.list_images),
                web.post("/_fargo/images", self.import_image),
                web.delete("/_fargo/images", self.remove_images),
                web.post("/_fargo/images/pull", self.pull_image),
                web.post("/_fargo/images/prune", self.prune_images),
                web.get("/_fargo/tasks/{task_id}/logs", self.task_logs), spot]

    async def interrupt_spot(self, request: web.Request) -> web.Response:
        """Interrupt FARGATE_SPOT tasks as AWS does. Body: {"cluster"?, "service"?, "count"? | "fraction"?}."""
        try:
            body = await request.json()
            count = None if body.get("count") is None else int(body["count"])
            fraction = None if body.get("fraction") is None else float(body["fraction"])
        except (ValueError, TypeError, AttributeError) as exc:
            return json_error(400, f"cannot interrupt: {exc}")
        try:
            stopped = await interrupt_spot_tasks(self.tasks, body.get("cluster"), body.get("service"), count, fraction)
        except AwsError as exc:
            return json_error(400, exc.message)
        return web.json_response({"interrupted": stopped})

    async def pull_image(self, request: web.Request) -> web.StreamResponse:
        """Pull an image, answering NDJSON: progress lines, then one `{"image": ...}` or `{"error": ...}` line.

        Body: {"ref", "platform"?, "username"?, "password"?}. A client that goes away cancels its pull.
        """
        try:
            body = await request.json()
            ref = str(body["ref"])
            platform = Platform.parse(str(body.get("platform") or "linux/amd64"))
            reference = split_reference(ref)
        except (ValueError, KeyError, TypeError) as exc:
            return json_error(400, f"cannot pull: {exc}")
        if body.get("username"):
            credentials: Credentials | None = Credentials(str(body["username"]), str(body.get("password") or ""))
        else:
            credentials = self.credentials(reference.host)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        last = [0.0]
        lines: list[PullProgress] = []

        def on_progress(progress: PullProgress) -> None:
            lines.append(progress)

        async def flush(force: bool = False) -> None:
            now = time.monotonic()
            if lines and (force or now - last[0] >= PROGRESS_INTERVAL_S):
                last[0] = now
                await _send_line(response, {"progress": _progress_json(lines[-1])})
            lines.clear()

        pull = self.runtime.pull_image(ref, platform=platform, access=self.access, credentials=credentials,
                                       progress=on_progress)
        task = asyncio.ensure_future(pull)
        try:
            while not task.done():
                await asyncio.wait([task], timeout=PROGRESS_INTERVAL_S)
                await flush()
            await flush(force=True)
            await _send_line(response, {"image": _pulled_json(task.result())})
        except ContainerRuntimeError as exc:
            await _send_line(response, {"error": exc.message})
        except Exception as exc:  # the stream has begun: a 500 can no longer be sent, so say it in the stream
            _log.exception("pull of %s failed", ref)
            await _send_line(response, {"error": f"cannot pull {ref}: {type(exc).__name__}"})
        finally:
            task.cancel()
        await response.write_eof()
        return response

    async def remove_images(self, request: web.Request) -> web.Response:
        """Remove the images named by `ref` (repeatable); an image a container uses is refused."""
        refs = request.query.getall("ref", [])
        if not refs:
            return json_error(400, "give at least one image reference (ref=...)")
        in_use = {c.image: c.id for c in await self.runtime.list_containers()}
        removed, errors = [], []
        for ref in refs:
            try:
                name = split_reference(ref).name
            except ValueError as exc:
                errors.append(f"{ref}: {exc}")
                continue
            if name in in_use:
                errors.append(f"{ref}: image is in use by container {in_use[name]}")
                continue
            try:
                await self.runtime.delete_image(name, sync=False)
                removed.append(name)
            except ImageNotFound:
                errors.append(f"{ref}: no such image")
            except ContainerRuntimeError as exc:
                errors.append(f"{ref}: {exc.message}")
        return web.json_response({"removed": removed, "errors": errors})

    async def prune_images(self, _request: web.Request) -> web.Response:
        try:
            removed, freed = await self.runtime.prune_images()
        except ContainerRuntimeError as exc:
            return json_error(400, f"cannot prune images: {exc.message}")
        return web.json_response({"removed": removed, "freedBytes": freed})

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


async def _no_agent(_request: web.Request) -> web.Response:
    return json_error(409, "this Fargo runs no agent (fargo up --no-agent): images and task output are on the "
                           "replica that runs the agent")


async def _send_line(response: web.StreamResponse, document: dict) -> None:
    await response.write(json.dumps(document).encode() + b"\n")


def _progress_json(progress: PullProgress) -> dict:
    return {"status": progress.status, "downloaded": progress.downloaded, "total": progress.total,
            "cached": progress.cached, "layers": progress.layers, "layersUnpacked": progress.layers_unpacked}


def _pulled_json(image: PulledImage) -> dict:
    return {"name": image.name, "digest": image.digest, "mediaType": image.media_type,
            "manifestDigest": image.manifest_digest, "platform": image.platform, "size": image.size,
            "fetched": image.fetched}


def _image_json(image: Image) -> dict:
    return {"name": image.name, "digest": image.digest, "size": image.size,
            "createdAt": image.created.timestamp() if image.created else None}
