"""The edge port: every AWS service Fargo serves, plus Fargo's own `/_fargo/` routes, on one aiohttp app.

Requests outside `/_fargo/` go to the `ProtocolRouter`, whatever their path and method (REST protocols route by path).
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from fargo.api.aws_service import AwsService
from fargo.api.protocol_router import ProtocolRouter
from fargo.api.protocols.codec import WireRequest

MAX_API_BODY = 4 * 1024 * 1024  # far above any ECS request (a task definition is at most 64 KiB)
SMALL_BODY = 64 * 1024  # below aiohttp's own limit on `read()` (1 MiB)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict]]]


class EdgeServer:
    def __init__(self, services: Sequence[AwsService], health: HealthCheck) -> None:
        self.router = ProtocolRouter(services)
        self.health = health
        # Bodies are streamed (API requests up to MAX_API_BODY, image uploads whole), never read at once.
        self.app = web.Application()
        self.app.router.add_get("/_fargo/health", self._health)
        # Excluding /_fargo/ in the pattern keeps routes added later by add_routes reachable.
        self.app.router.add_route("*", r"/{path:(?!_fargo/).*}", self._aws)

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.router.add_routes(routes)

    async def _health(self, _request: web.Request) -> web.Response:
        ok, detail = await self.health()
        return web.json_response(dict(detail, status="ok" if ok else "starting"), status=200 if ok else 503)

    async def _aws(self, request: web.Request) -> web.Response:
        body = await _read_limited(request)
        wire = WireRequest(method=request.method, path=request.path,
                           headers={k.lower(): v for k, v in request.headers.items()},
                           body=body or b"", query_string=request.query_string, too_large=body is None)
        answer = await self.router.answer(wire)
        if answer is None:
            return json_error(404, "No AWS service or Fargo route answers this path.")
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type,
                            headers=answer.headers)


async def _read_limited(request: web.Request) -> bytes | None:
    if request.content_length is not None and request.content_length > MAX_API_BODY:
        return None
    if request.content_length is not None and request.content_length <= SMALL_BODY:
        return await request.read()  # most calls: in one piece (iterating over chunks took a tenth of a call)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_API_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def json_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"message": message}), content_type="application/json")
