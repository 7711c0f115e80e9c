"""The edge port: every AWS protocol Fargo speaks, plus Fargo's own `/_fargo/` routes, on one aiohttp app."""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from fargo.errors import RequestEntityTooLarge, SerializationException
from fargo.api.json_protocol import CONTENT_TYPE, JsonService, dispatch_json, error_body
from fargo.api.query_protocol import QueryService, dispatch_query

log = logging.getLogger(__name__)

MAX_API_BODY = 4 * 1024 * 1024  # far above any ECS request (a task definition is at most 64 KiB)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict]]]


class EdgeServer:
    def __init__(self, json_services: list[JsonService], query_services: dict[str, QueryService],
                 health: HealthCheck) -> None:
        self.json_services = {s.target_prefix: s for s in json_services}
        self.query_services = query_services  # by botocore service name; EC2 is the only one today
        self.health = health
        # Bodies are streamed (API requests up to MAX_API_BODY, image uploads whole), never read at once.
        self.app = web.Application()
        self.app.router.add_get("/_fargo/health", self._health)
        self.app.router.add_post("/", self._aws)

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.router.add_routes(routes)

    async def _health(self, _request: web.Request) -> web.Response:
        ok, detail = await self.health()
        return web.json_response(dict(detail, status="ok" if ok else "starting"), status=200 if ok else 503)

    async def _aws(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        target = request.headers.get("X-Amz-Target")
        body = await _read_limited(request)
        if target is not None:
            if body is None:
                status, payload = 413, error_body(RequestEntityTooLarge("Request body is too large."))
            else:
                status, payload = await dispatch_json(self.json_services, target, body)
            return web.Response(status=status, body=payload, content_type=CONTENT_TYPE,
                                headers={"x-amzn-RequestId": request_id})
        if body is None:
            return web.Response(status=413, text="<Response><Errors><Error><Code>RequestEntityTooLarge</Code>"
                                "<Message>Request body is too large.</Message></Error></Errors></Response>",
                                content_type="text/xml")
        service = self._query_service(request)
        if service is not None:
            status, payload = await dispatch_query(service, body)
            return web.Response(status=status, body=payload, content_type="text/xml")
        err = SerializationException("Missing X-Amz-Target header or Action parameter.")
        return web.Response(status=400, body=error_body(err), content_type=CONTENT_TYPE,
                            headers={"x-amzn-RequestId": request_id})

    def _query_service(self, request: web.Request) -> QueryService | None:
        # SigV4 names the service in the credential scope: .../<region>/<service>/aws4_request
        auth = request.headers.get("Authorization", "")
        for name, service in self.query_services.items():
            if f"/{name}/aws4_request" in auth:
                return service
        if request.content_type == "application/x-www-form-urlencoded":
            return self.query_services.get("ec2")
        return None


async def _read_limited(request: web.Request) -> bytes | None:
    if request.content_length is not None and request.content_length > MAX_API_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_API_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def json_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"message": message}), content_type="application/json")
