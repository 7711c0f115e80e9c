"""The routes of 169.254.170.2 for one VPC: task metadata v4 and v3, and container credentials v1 and v2.

Each request is answered for the task that sent it: the id in the path must belong to a task of this VPC
whose ENI address is the request's source. Anything else reads exactly as an unknown id does.
"""
from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from fargo.agent.metadata import documents, messages
from fargo.agent.metadata.clock_drift import read_clock_drift
from fargo.agent.metadata.credentials import TaskCredentials
from fargo.agent.metadata.rate_limit import RequestLimiter
from fargo.agent.metadata.registry import MetadataTask, TaskRegistry
from fargo.agent.metadata.task_view import ContainerView, TaskView

VPC_ID = web.AppKey("vpc_id", str)
_ID = "{id:[^/]*}"  # gorilla's AnythingButSlash: an empty id is routed too (and then not found)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_log = logging.getLogger(__name__)


def build_app(vpc_id: str, registry: TaskRegistry, credentials: TaskCredentials, limiter: RequestLimiter) -> web.Application:
    endpoints = _Endpoints(registry, credentials)
    app = web.Application(middlewares=[_gate(limiter)])
    app[VPC_ID] = vpc_id
    for version in (4, 3):
        base = f"/v{version}/{_ID}"
        app.router.add_get(base, endpoints.container(version))
        app.router.add_get(base + "/task", endpoints.task(version, with_tags=False))
        app.router.add_get(base + "/taskWithTags", endpoints.task(version, with_tags=True))
        app.router.add_get(base + "/stats", endpoints.container_stats(version))
        app.router.add_get(base + "/task/stats", endpoints.task_stats(version))
    app.router.add_get("/v2/credentials", endpoints.credentials_v2)
    app.router.add_get("/v2/credentials/" + _ID, endpoints.credentials_v2)
    app.router.add_get("/v1/credentials", endpoints.credentials_v1)
    return app


def json_response(status: int, value: Any) -> web.Response:
    """Go's json.Marshal as the agent writes it: compact, <>& escaped, `Content-Type: application/json`."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return web.Response(status=status, body=text.encode(), headers={"Content-Type": "application/json"})


def _text_response(status: int, text: str) -> web.Response:
    return web.Response(
        status=status,
        body=text.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def peer_ip(request: web.Request) -> str | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return peer[0] if peer else None


def _gate(limiter: RequestLimiter) -> Middleware:
    @web.middleware
    async def gate(request: web.Request, handler: _Handler) -> web.StreamResponse:
        # The limiter sits in front of the router, as tollbooth wraps the agent's mux: every path counts.
        if not limiter.allow((request.app[VPC_ID], peer_ip(request))):
            return _text_response(429, messages.TOO_MANY_REQUESTS)
        cleaned = _clean_path(request.rel_url.raw_path)
        if cleaned != request.rel_url.raw_path:
            # gorilla's path cleaning (SkipClean false): //v2/x and /a/../b are redirected, not served.
            location = cleaned + (f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else "")
            return web.Response(status=301, headers={"Location": location})
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _text_response(404, messages.PAGE_NOT_FOUND)
        except web.HTTPMethodNotAllowed:
            return _text_response(405, messages.METHOD_NOT_ALLOWED)

    return gate


def _clean_path(path: str) -> str:
    """Go's path.Clean, keeping a trailing slash as gorilla's cleanPath does."""
    if not path:
        return "/"
    cleaned = posixpath.normpath(re.sub(r"/+", "/", path if path.startswith("/") else "/" + path))
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


# For each version and route, the answer when the id is not the caller's: (status, message).
_NOT_FOUND: dict[tuple[int, str], tuple[int, str]] = {
    (4, "container"): (404, messages.V4_CONTAINER_NOT_FOUND),
    (4, "task"): (404, messages.V4_TASK_NOT_FOUND),
    (4, "container_stats"): (404, messages.V4_CONTAINER_STATS_TASK_NOT_FOUND),
    (4, "stats_container"): (404, messages.V4_CONTAINER_STATS_CONTAINER_NOT_FOUND),
    (4, "task_stats"): (404, messages.V4_TASK_STATS_NOT_FOUND),
    (3, "container"): (500, messages.V3_CONTAINER_NOT_FOUND),
    (3, "task"): (500, messages.V3_TASK_NOT_FOUND),
    (3, "container_stats"): (400, messages.V3_CONTAINER_STATS_TASK_NOT_FOUND),
    (3, "stats_container"): (400, messages.V3_CONTAINER_STATS_CONTAINER_NOT_FOUND),
    (3, "task_stats"): (400, messages.V3_TASK_STATS_NOT_FOUND),
}
# A container known but without stats yet: the v4 handler's fetch failure is a 500, v2/v3's a 400.
_NO_STATS_STATUS = {4: 500, 3: 400}


def _not_found(version: int, route: str, endpoint_id: str) -> web.Response:
    status, message = _NOT_FOUND[(version, route)]
    return json_response(status, message.format(id=endpoint_id))


class _Endpoints:
    def __init__(self, registry: TaskRegistry, credentials: TaskCredentials) -> None:
        self._registry = registry
        self._credentials = credentials

    def _caller_task(self, request: web.Request) -> tuple[str, MetadataTask | None]:
        endpoint_id = request.match_info["id"]
        return endpoint_id, self._registry.by_endpoint(request.app[VPC_ID], peer_ip(request), endpoint_id)

    def container(self, version: int) -> _Handler:
        async def handle(request: web.Request) -> web.Response:
            endpoint_id, task = self._caller_task(request)
            if task is None:
                return _not_found(version, "container", endpoint_id)
            view = _snapshot(task)
            if view is None:
                return json_response(500, messages.CONTAINER_METADATA_FAILED)
            container = _container_of(task, view, endpoint_id)
            if container is None:
                return _not_found(version, "container", endpoint_id)
            build = documents.container_v4 if version == 4 else documents.container_v3
            return json_response(200, build(view, container))

        return handle

    def task(self, version: int, with_tags: bool) -> _Handler:
        async def handle(request: web.Request) -> web.Response:
            endpoint_id, task = self._caller_task(request)
            if task is None:
                return _not_found(version, "task", endpoint_id)
            view = _snapshot(task)
            if view is None:
                failed = messages.V4_TASK_METADATA_FAILED if version == 4 else messages.V3_TASK_METADATA_FAILED
                return json_response(500, failed.format(task=task.task_id))
            if version == 4:
                clock = read_clock_drift()
                body = documents.task_with_tags_v4(view, clock) if with_tags else documents.task_v4(view, clock)
            else:
                body = documents.task_with_tags_v3(view) if with_tags else documents.task_v3(view)
            return json_response(200, body)

        return handle

    def container_stats(self, version: int) -> _Handler:
        async def handle(request: web.Request) -> web.Response:
            endpoint_id, task = self._caller_task(request)
            if task is None:
                return _not_found(version, "container_stats", endpoint_id)
            view = _snapshot(task)
            container = _container_of(task, view, endpoint_id) if view is not None else None
            if container is None:
                return _not_found(version, "stats_container", endpoint_id)
            stats = task.stats(container.docker_id, version)
            if stats is None:
                message = messages.CONTAINER_STATS_UNAVAILABLE.format(docker_id=container.docker_id)
                return json_response(_NO_STATS_STATUS[version], message)
            return json_response(200, stats)

        return handle

    def task_stats(self, version: int) -> _Handler:
        async def handle(request: web.Request) -> web.Response:
            endpoint_id, task = self._caller_task(request)
            if task is None:
                return _not_found(version, "task_stats", endpoint_id)
            view = _snapshot(task)
            if view is None:
                return _not_found(version, "task_stats", endpoint_id)
            # A container without stats yet: v4 writes {} under its DockerId, v2/v3 write null.
            missing: dict[str, Any] | None = {} if version == 4 else None
            body = {}
            for container in view.containers:
                stats = task.stats(container.docker_id, version)
                body[container.docker_id] = stats if stats is not None else missing
            return json_response(200, body)

        return handle

    async def credentials_v2(self, request: web.Request) -> web.Response:
        return self._credentials_answer(request, request.match_info.get("id", ""), "V2")

    async def credentials_v1(self, request: web.Request) -> web.Response:
        return self._credentials_answer(request, request.query.get("id", ""), "V1")

    def _credentials_answer(self, request: web.Request, credentials_id: str, version: str) -> web.Response:
        if not credentials_id:
            return _credentials_error(400, messages.CREDENTIALS_NO_ID, version)
        owner = self._registry.by_credentials(request.app[VPC_ID], peer_ip(request), credentials_id)
        body = self._credentials.get(credentials_id) if owner is not None else None
        if body is None:
            return _credentials_error(400, messages.CREDENTIALS_NOT_FOUND, version)
        return json_response(200, body)


def _credentials_error(status: int, error: tuple[str, str], version: str) -> web.Response:
    code, message = error
    return json_response(status, {"code": code, "message": message.format(version=version), "HTTPErrorCode": status})


def _snapshot(task: MetadataTask) -> TaskView | None:
    try:
        return task.view()
    except Exception:
        _log.exception("metadata snapshot of task %s failed", task.task_id)
        return None


def _container_of(task: MetadataTask, view: TaskView, endpoint_id: str) -> ContainerView | None:
    name = task.endpoint_ids.get(endpoint_id)
    return next((container for container in view.containers if container.name == name), None)
