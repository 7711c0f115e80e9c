"""`/v2/` on the edge port: Fargo's registry as ECR serves it. Each request is checked (an ECR token as Basic
`AWS:<password>`; a repository made by CreateRepository) and then relayed to the registry's unix socket, bodies
streamed both ways (layer uploads are large), headers passed on but for hop-by-hop ones.

Manifest PUTs are read whole (at most 4 MiB, as a registry accepts): ECR records each push it accepted
(DescribeImages' digest, tags, size and pushedAt) and refuses moving a tag of an immutable repository.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from fargo.control.ecr import messages as msg
from fargo.control.ecr.manifests import MAX_MANIFEST_BYTES
from fargo.control.ecr.names import RegistryNames, is_digest
from fargo.control.ecr.pushes import RegistryPushes, RegistryRefusal
from fargo.control.ecr.tokens import EcrTokens, TokenCheck
from fargo.store.ecr_store import RepositoryRow

log = logging.getLogger("fargo.registry")

# RFC 9110 section 7.6.1: meaningful for one connection only, never relayed.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "trailers", "transfer-encoding", "upgrade"})
# Host is the socket's; the credentials were for the proxy (the registry behind it has no auth).
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "authorization"}
# aiohttp adds these unless told not to; the registry should see what the client sent.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_CHUNK = 1 << 16
# distribution's routes; a name has slashes, so it is the shortest prefix that leaves one of these.
_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests/(?P<reference>[^/]+)|blobs/uploads/[^/]*|blobs/[^/]+|tags/list)$")
_API_VERSION = {"Docker-Distribution-Api-Version": "registry/2.0"}


@dataclass(frozen=True)
class _Target:
    repository: str
    manifest_reference: str | None  # set for /v2/<name>/manifests/<reference>


def _target(path: str) -> _Target | None:
    found = _PATH.match(path)
    return _Target(found["name"], found["reference"]) if found else None


class RegistryProxy:
    def __init__(self, socket: Path, tokens: EcrTokens, pushes: RegistryPushes, names: RegistryNames) -> None:
        self.socket, self.tokens, self.pushes, self.names = socket, tokens, pushes, names
        self._client: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/v2/", self.relay), web.route("*", "/v2/{tail:.*}", self.relay)]

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def relay(self, request: web.Request) -> web.StreamResponse:
        check = self.tokens.check_authorization(request.headers.get("Authorization"))
        if check is not TokenCheck.VALID:
            return self._unauthorized(check)
        target = _target(request.path)
        try:
            if target is None:  # /v2/ itself (the login check), /v2/_catalog
                return await self._forward(request, self._body_stream(request))
            repository = await asyncio.to_thread(self.pushes.repository, target.repository)
            reference = target.manifest_reference
            if reference is not None and request.method == "PUT":
                return await self._put_manifest(request, target.repository, reference, repository)
            response = await self._forward(request, self._body_stream(request))
            if reference is not None and request.method == "DELETE" and response.status == 202 \
                    and is_digest(reference):
                await asyncio.to_thread(self.pushes.forget, target.repository, reference)
            return response
        except RegistryRefusal as refusal:
            return registry_error(refusal.status, refusal.code, refusal.message)

    # --- relaying ------------------------------------------------------------------------------

    async def _put_manifest(self, request: web.Request, name: str, reference: str,
                            repository: RepositoryRow) -> web.StreamResponse:
        body = await _read_at_most(request, MAX_MANIFEST_BYTES)
        if body is None:
            return registry_error(400, "MANIFEST_INVALID", msg.MANIFEST_TOO_LARGE)
        tag = None if is_digest(reference) else reference
        if tag is not None:
            await asyncio.to_thread(self.pushes.check_tag_push, repository, tag, body)
        async def record(status: int, headers: Mapping[str, str]) -> None:
            # Recorded before the client hears 201, so a DescribeImages right after the push sees it.
            if status == 201:
                await asyncio.to_thread(self.pushes.record_push, name, headers.get("Docker-Content-Digest"),
                                        tag, body, request.headers.get("Content-Type"))

        return await self._forward(request, body, before_answer=record)

    def _body_stream(self, request: web.Request):  # noqa: ANN202 - an async iterator of chunks, or None
        return request.content.iter_chunked(_CHUNK) if request.body_exists else None

    async def _forward(self, request: web.Request, body,  # noqa: ANN001
                       before_answer: Callable[[int, Mapping[str, str]], Awaitable[None]] | None = None,
                       ) -> web.StreamResponse:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
        if isinstance(body, bytes):  # read whole: aiohttp sets its length
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        url = URL("http://registry" + request.rel_url.raw_path_qs, encoded=True)
        try:
            async with self._session().request(request.method, url, headers=headers, data=body,
                                               allow_redirects=False, skip_auto_headers=_NO_AUTO_HEADERS) as upstream:
                if before_answer is not None:
                    await before_answer(upstream.status, upstream.headers)
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for key, value in upstream.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(_CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as e:
            if request.transport is None or request.transport.is_closing():
                raise  # the client went away; nothing to answer
            log.warning("the registry did not answer %s %s: %s", request.method, request.path, e)
            return registry_error(503, "UNAVAILABLE", msg.REGISTRY_UNAVAILABLE)

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._client

    def _unauthorized(self, check: TokenCheck) -> web.Response:
        message = {TokenCheck.EXPIRED: msg.TOKEN_EXPIRED, TokenCheck.INVALID: msg.TOKEN_INVALID}.get(
            check, msg.NOT_AUTHORIZED)
        response = registry_error(401, "UNAUTHORIZED", message)
        response.headers["WWW-Authenticate"] = (f'Basic realm="https://{self.names.aws_host}/",'
                                                'service="ecr.amazonaws.com"')
        return response


def registry_error(status: int, code: str, message: str) -> web.Response:
    """A registry-shaped error, as distribution and ECR answer: `{"errors": [{"code", "message"}]}`."""
    return web.Response(status=status, text=json.dumps({"errors": [{"code": code, "message": message}]}),
                        content_type="application/json", headers=_API_VERSION)


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
