"""One pull's conversation with one registry: authorize (anonymous, Basic, or a Bearer token fetched from the
challenge's realm), resolve the reference to a descriptor, fetch manifests and stream blobs, with every digest
checked here (a registry's Docker-Content-Digest header is not trusted).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from fargo.runtime.platforms import INDEX_TYPES, MANIFEST_TYPES
from fargo.runtime.registry.access import RegistryAccess
from fargo.runtime.registry.auth import Challenge, Credentials, TokenCache, parse_www_authenticate, token_key
from fargo.runtime.registry.errors import (
    ACCESS_DENIED,
    OPEN_FAILED,
    AccessDenied,
    DigestMismatch,
    InvalidManifest,
    NetworkFailure,
    NotFound,
    RegistryError,
    UnexpectedStatus,
    go_net_error,
    request_failed,
    server_message,
)
from fargo.runtime.registry.reference import RegistryReference

# The Accept list containerd 1.6 resolves with, in its order.
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "*/*",
])
MAX_MANIFEST_BYTES = 4 << 20  # containerd refuses manifests over about 4 MiB
USER_AGENT = "containerd/1.6.20"
CHUNK = 1 << 20  # a blob goes to containerd in pieces of about 1 MiB (protobuf copies larger ones slowly)
_THREAD_HASH_BYTES = 256 << 10  # smaller pieces are hashed on the loop
_SCHEMA1 = {"application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws", "text/plain"}


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Descriptor:
        try:
            return cls(str(entry["mediaType"]), str(entry["digest"]), int(entry["size"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidManifest(f"invalid descriptor {json.dumps(entry)[:200]}") from None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """Requests to the registry of `ref`, through `session` (whose connector dials as `access` says)."""

    def __init__(self, ref: RegistryReference, access: RegistryAccess, session: aiohttp.ClientSession,
                 credentials: Credentials | None, tokens: TokenCache) -> None:
        self.ref, self._access, self._session = ref, access, session
        self._credentials, self._tokens = credentials, tokens
        self._endpoint = access.endpoint(ref.host)
        self._scope = f"repository:{ref.repository}:pull"
        # Sent with every request once a challenge was answered (from the first, for a registry known to want Basic).
        self._authorization: str | None = None
        if credentials is not None and tokens.wants_basic(self._endpoint.base_url, credentials.username):
            self._authorization = credentials.basic()
        self._manifests: dict[str, bytes] = {}  # bodies a resolve had to GET already
        self.requests = 0

    def url(self, path: str) -> str:
        return f"{self._endpoint.base_url}/v2/{self.ref.repository}/{path}"

    @property
    def _address(self) -> str:
        address = self._endpoint.address
        if address.startswith("[") and "]:" in address or (address.count(":") == 1):
            return address
        return f"{address}:{443 if self._endpoint.scheme == 'https' else 80}"

    # -- resolve ---------------------------------------------------------------------------------

    async def resolve(self) -> Descriptor:
        """The descriptor the reference names: HEAD the manifest (GET when the headers do not tell), then for a
        digest the blob path too, as containerd does. NotFound when no path has it."""
        obj = self.ref.object
        paths = [f"manifests/{obj}"] + ([f"blobs/{obj}"] if self.ref.digest else [])
        for path in paths:
            descriptor = await self._resolve_path(path, obj)
            if descriptor is not None:
                return descriptor
        raise NotFound(f"{self.ref.name}: not found")

    async def _resolve_path(self, path: str, obj: str) -> Descriptor | None:
        headers = {"Accept": MANIFEST_ACCEPT}
        method = "HEAD"
        while True:
            async with await self._send(method, path, headers) as response:
                if response.status == 405 and method == "HEAD":
                    method = "GET"  # some registries do not HEAD manifests
                    continue
                if response.status == 404:
                    return None
                if response.status >= 400:
                    body = await _limited_body(response)
                    raise _status_error(response, f"[{path.partition('/')[0]} {obj}]", body)
                media_type = (response.headers.get("Content-Type") or "").partition(";")[0].strip()
                digest = response.headers.get("Docker-Content-Digest") or self.ref.digest
                length = response.headers.get("Content-Length")
                if method == "HEAD" and (not media_type or not digest or length is None or media_type in _SCHEMA1):
                    method = "GET"  # the headers do not tell: fetch the manifest and hash it
                    continue
                if method == "GET":
                    body = await self._read_manifest(response, self.url(path))
                    actual = sha256_digest(body)
                    if self.ref.digest and actual != self.ref.digest:
                        raise _commit_mismatch(f"manifest-{self.ref.digest}", actual, self.ref.digest)
                    media_type = _manifest_media_type(media_type, body)
                    self._manifests[actual] = body
                    return Descriptor(media_type, actual, len(body))
                if media_type in _SCHEMA1:
                    raise InvalidManifest("schema 1 manifests are not supported")
                return Descriptor(media_type, digest, int(length or 0))

    # -- manifests and blobs ---------------------------------------------------------------------

    async def manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest or index by digest, verified."""
        cached = self._manifests.get(descriptor.digest)
        if cached is not None:
            return cached
        if descriptor.size > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"manifest {descriptor.digest} is {descriptor.size} bytes, over the limit of "
                                  f"{MAX_MANIFEST_BYTES}")
        path = f"manifests/{descriptor.digest}"
        async with await self._send("GET", path, {"Accept": f"{descriptor.media_type}, */*"}) as response:
            if response.status == 404:
                raise NotFound(f"content at {self.url(path)} not found: not found")
            if response.status >= 400:
                raise _status_error(response, self.url(path), await _limited_body(response))
            body = await self._read_manifest(response, self.url(path))
        actual = sha256_digest(body)
        if actual != descriptor.digest:
            raise _commit_mismatch(f"manifest-{descriptor.digest}", actual, descriptor.digest)
        self._manifests[actual] = body  # the puller parses it, then stores these very bytes
        return body

    async def blob(self, descriptor: Descriptor, *, kind: str = "layer") -> AsyncIterator[bytes]:
        """The blob's bytes in chunks. The digest and size are checked before the last chunk is given back, so a
        caller that commits after the loop never commits bad content (DigestMismatch instead)."""
        path = f"blobs/{descriptor.digest}"
        ref = f"{kind}-{descriptor.digest}"
        try:
            response = await self._send("GET", path, {"Accept": "*/*"})
        except NetworkFailure as failure:
            raise NetworkFailure(f"{OPEN_FAILED}: {failure.text}") from None
        async with response:
            if response.status == 404:
                raise NotFound(f"{OPEN_FAILED}: content at {self.url(path)} not found: not found")
            if response.status >= 400:
                error = _status_error(response, self.url(path), await _limited_body(response))
                raise type(error)(f"{OPEN_FAILED}: {error.text}", error.status)  # type: ignore[call-arg]
            hasher, received = _Hasher(), 0
            parts: list[bytes] = []
            pending = 0
            try:
                # Whatever the socket has is gathered into CHUNK-sized pieces: one content write per MiB, not one
                # per 64 KiB read; each piece is hashed in a thread while the next one arrives.
                async for chunk in response.content.iter_any():
                    received += len(chunk)
                    if received > descriptor.size:
                        raise DigestMismatch(f'failed commit on ref "{ref}": unexpected commit size {received}, '
                                             f"expected {descriptor.size}: failed precondition")
                    if pending >= CHUNK:  # what came last is always kept back, for after the digest check
                        out = b"".join(parts)
                        parts, pending = [], 0
                        await hasher.update(out)
                        yield out
                    parts.append(chunk)
                    pending += len(chunk)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise NetworkFailure(f"failed to copy: {go_net_error(error, self._address)}") from None
            rest = b"".join(parts)
            await hasher.update(rest)
            actual = "sha256:" + await hasher.hexdigest()
            if received != descriptor.size:
                raise DigestMismatch(f'failed commit on ref "{ref}": unexpected commit size {received}, '
                                     f"expected {descriptor.size}: failed precondition")
            if actual != descriptor.digest:
                raise _commit_mismatch(ref, actual, descriptor.digest)
            if rest:
                yield rest

    # -- requests and auth -----------------------------------------------------------------------

    async def _send(self, method: str, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """The response to `method path`, after answering at most a few auth challenges."""
        url = self.url(path)
        answered: set[str] = set()
        for _ in range(4):
            sent = dict(headers, **{"User-Agent": USER_AGENT})
            if self._authorization:
                sent["Authorization"] = self._authorization
            self.requests += 1
            try:
                response = await self._session.request(method, url, headers=sent, allow_redirects=True,
                                                       max_redirects=10)
            except aiohttp.TooManyRedirects:
                raise UnexpectedStatus(f'failed to do request: {method.capitalize()} "{url}": stopped after 10 '
                                       "redirects", 310) from None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise request_failed(method, url, error, self._address) from None
            if response.status != 401:
                return response
            body = await _limited_body(response)
            response.release()
            challenges = parse_www_authenticate(", ".join(response.headers.getall("WWW-Authenticate", [])))
            self._authorization = await self._answer(challenges, answered, body)
        raise AccessDenied(f"{ACCESS_DENIED}: authorization failed")

    async def _answer(self, challenges: list[Challenge], answered: set[str], body: bytes) -> str:
        """The Authorization header that answers the registry's challenge, or AccessDenied."""
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            scope = bearer.params.get("scope") or self._scope
            if "bearer" in answered:  # our token was refused
                error = bearer.params.get("error")
                if error:
                    raise AccessDenied(f"{ACCESS_DENIED}: server message: {error}: authorization failed")
                raise AccessDenied(f"{ACCESS_DENIED}: server message: {server_message(body) or 'authorization failed'}")
            answered.add("bearer")
            return "Bearer " + await self._token(bearer, scope)
        if basic is not None:
            if self._credentials is None:
                raise AccessDenied(f"{ACCESS_DENIED}: authorization failed: no basic auth credentials")
            if "basic" in answered:
                message = server_message(body) or "unauthorized: authentication required"
                raise AccessDenied(f"{ACCESS_DENIED}: server message: {message}")
            answered.add("basic")
            self._tokens.saw_basic(self._endpoint.base_url, self._credentials.username)
            return self._credentials.basic()
        raise AccessDenied(f"{ACCESS_DENIED}: server message: {server_message(body) or 'authorization failed'}")

    async def _token(self, challenge: Challenge, scope: str) -> str:
        key = token_key(challenge, scope, self._credentials)
        cached = self._tokens.get(key)
        if cached:
            return cached
        if not challenge.realm:
            raise AccessDenied(f"{ACCESS_DENIED}: failed to authorize: no realm in the bearer challenge")
        query = {k: v for k, v in (("service", challenge.params.get("service", "")), ("scope", scope)) if v}
        url = challenge.realm + ("&" if "?" in challenge.realm else "?") + urlencode(query)
        headers = {"User-Agent": USER_AGENT}
        if self._credentials:
            headers["Authorization"] = self._credentials.basic()
        what = "oauth" if self._credentials else "anonymous"
        self.requests += 1
        try:
            async with self._session.get(url, headers=headers, allow_redirects=True) as response:
                if response.status != 200:
                    raise AccessDenied(f"failed to authorize: failed to fetch {what} token: unexpected status: "
                                       f"{response.status} {response.reason}")
                document = json.loads(await response.read() or b"{}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            address = url.split("/")[2]
            failure = request_failed("GET", url.partition("?")[0], error, address if ":" in address else
                                     f"{address}:{443 if url.startswith('https') else 80}")
            raise NetworkFailure(f"failed to authorize: failed to fetch {what} token: {failure.text}") from None
        except ValueError:
            raise AccessDenied(f"failed to authorize: failed to fetch {what} token: invalid JSON") from None
        token = document.get("token") or document.get("access_token")
        if not token:
            raise AccessDenied(f"failed to authorize: failed to fetch {what} token: no token in the response")
        self._tokens.put(key, str(token), float(document.get("expires_in") or 0))
        return str(token)

    async def _read_manifest(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        length = response.content_length
        if length is not None and length > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"manifest at {url} is {length} bytes, over the limit of {MAX_MANIFEST_BYTES}")
        try:
            body = await response.content.read(MAX_MANIFEST_BYTES + 1)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise NetworkFailure(f"failed to copy: {go_net_error(error, self._address)}") from None
        if len(body) > MAX_MANIFEST_BYTES:
            raise InvalidManifest(f"manifest at {url} is over the limit of {MAX_MANIFEST_BYTES} bytes")
        return body


class _Hasher:
    """SHA-256 of a blob computed in a worker thread (hashlib lets go of the GIL), one piece at a time: the
    event loop goes on receiving while a piece is hashed."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._busy: asyncio.Future[None] | None = None

    async def update(self, data: bytes) -> None:
        """Start hashing `data` once the piece before it is done (pieces are hashed in order)."""
        await self.settle()
        if len(data) < _THREAD_HASH_BYTES:
            self._hash.update(data)  # a thread's hand-off would cost more
        else:
            self._busy = asyncio.get_running_loop().run_in_executor(None, self._hash.update, data)

    async def settle(self) -> None:
        if self._busy is not None:
            busy, self._busy = self._busy, None
            await busy

    async def hexdigest(self) -> str:
        await self.settle()
        return self._hash.hexdigest()


def _manifest_media_type(header: str, body: bytes) -> str:
    if header in MANIFEST_TYPES | INDEX_TYPES:
        return header
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidManifest("the manifest is not JSON") from None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if declared in MANIFEST_TYPES | INDEX_TYPES:
        return str(declared)
    if isinstance(document, dict) and document.get("schemaVersion") == 1:
        raise InvalidManifest("schema 1 manifests are not supported")
    if isinstance(document, dict) and "manifests" in document:
        return "application/vnd.oci.image.index.v1+json"
    if isinstance(document, dict) and "layers" in document:
        return "application/vnd.oci.image.manifest.v1+json"
    raise InvalidManifest(f"unsupported manifest media type {header!r}")


async def _limited_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.content.read(64 << 10)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return b""


def _status_error(response: aiohttp.ClientResponse, where: str, body: bytes) -> UnexpectedStatus:
    status = f"{response.status} {response.reason or ''}".rstrip()
    text = f"unexpected status code {where}: {status}"
    message = server_message(body)
    if message and response.status != 403:
        text += f" - Server message: {message}"
    return UnexpectedStatus(text, response.status)


def _commit_mismatch(ref: str, actual: str, expected: str) -> DigestMismatch:
    return DigestMismatch(f'failed commit on ref "{ref}": unexpected commit digest {actual}, expected {expected}: '
                          "failed precondition")
