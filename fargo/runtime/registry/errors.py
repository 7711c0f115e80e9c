"""What goes wrong talking to a registry, each error carrying the text containerd 1.6 gives for it (Fargate 1.4.0
shows these after `CannotPullContainerError: <step> has been retried N time(s): `), and whether a retry may help.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

ACCESS_DENIED = "pull access denied, repository does not exist or may require authorization"
OPEN_FAILED = "failed to copy: httpReaderSeeker: failed open"  # as Fargate prints containerd's blob open errors


class RegistryError(Exception):
    """A failed registry exchange; `text` is containerd's message, `retryable` true for network failures."""

    retryable = False

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class NetworkFailure(RegistryError):
    """Timeout, refused, reset, no route, no such host: tried again with a short backoff."""

    retryable = True


class NotFound(RegistryError):
    """The tag, digest or repository does not exist (404 from the registry)."""


class AccessDenied(RegistryError):
    """Authentication was refused, or the registry wants credentials we do not have."""


class UnexpectedStatus(RegistryError):
    """Any other HTTP status; 408 and 429 (and 5xx, which containerd does not retry) say so in `status`."""

    def __init__(self, text: str, status: int) -> None:
        super().__init__(text)
        self.status = status


class DigestMismatch(RegistryError):
    """What arrived does not hash to (or is not the size of) the digest asked for."""


class InvalidManifest(RegistryError):
    """A manifest or index we cannot use: too large, not JSON, schema 1, layers and diff ids that disagree."""


class NoPlatformMatch(RegistryError):
    """The index has no manifest for the wanted platform. `text` is containerd's; `fargate_text` Fargate's own."""

    def __init__(self, platform: str) -> None:
        super().__init__("no match for platform in manifest: not found")
        self.fargate_text = f"image Manifest does not contain descriptor matching platform '{platform}'."


def request_failed(method: str, url: str, error: BaseException, address: str) -> NetworkFailure:
    """containerd's `failed to do request: Head "<url>": <Go net error>` for an aiohttp or asyncio failure."""
    return NetworkFailure(f'failed to do request: {method.capitalize()} "{url}": {go_net_error(error, address)}')


def go_net_error(error: BaseException, address: str) -> str:
    """How Go's net package words this failure to dial (or read from) `address` (host:port)."""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        asked = str(error.os_error or "")
        if asked.startswith("lookup "):  # the task dialer's lookup names the resolver it asked, as Go does
            return f"dial tcp: {asked}"
        return f"dial tcp: lookup {address.rpartition(':')[0] or address}: no such host"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(error, aiohttp.ClientConnectorError):
        os_error = error.os_error
        dialed = _dialed(os_error) or address
        reason = _errno_text(os_error)
        return f"dial tcp {dialed}: connect: {reason}"
    if isinstance(error, (aiohttp.SocketTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return "net/http: timeout awaiting response headers"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "EOF"
    if isinstance(error, (aiohttp.ClientOSError, OSError)):
        return f"read tcp {address}: {_errno_text(error)}"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "unexpected EOF"
    return str(error) or type(error).__name__


def _dialed(error: Any) -> str | None:
    # asyncio words a refused connect "Connect call failed ('127.0.0.1', 1)": the address actually dialed.
    match = re.search(r"\('([^']+)', (\d+)", str(error))
    if not match:
        return None
    host = match.group(1)
    return f"[{host}]:{match.group(2)}" if ":" in host else f"{host}:{match.group(2)}"


_ERRNO_TEXTS = {111: "connection refused", 104: "connection reset by peer", 113: "no route to host",
                101: "network is unreachable", 110: "i/o timeout", 32: "broken pipe"}


def _errno_text(error: Any) -> str:
    errno = getattr(error, "errno", None)
    if errno in _ERRNO_TEXTS:
        return _ERRNO_TEXTS[errno]
    text = getattr(error, "strerror", None) or str(error)
    return str(text).lower()


def server_message(body: bytes) -> str | None:
    """`<code>: <message>` of a registry's JSON error body ({"errors":[{code,message}]}), as docker prints it."""
    import json

    try:
        errors = json.loads(body).get("errors") or []
        first = errors[0]
        return f"{str(first.get('code', '')).lower()}: {first.get('message', '')}"
    except (ValueError, AttributeError, IndexError, TypeError):
        return None
