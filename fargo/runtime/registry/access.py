"""How Fargo reaches each registry: the scheme (https unless the operator lists the host as plain HTTP, or it is
loopback, as containerd does), the address to dial (Fargo's own registry names map to its edge port), the aiohttp
connector (sockets in a task's network namespace on 1.4.0), and the per-request timeout and attempts of a pull.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp

ConnectorFactory = Callable[[], aiohttp.BaseConnector]

DEFAULT_TIMEOUT_SECONDS = 30.0  # connect and read, per request
DEFAULT_ATTEMPTS = 5  # tries of a step that fails on the network (Fargate shows "retried 5 time(s)")


@dataclass(frozen=True)
class RegistryEndpoint:
    scheme: str  # "https" or "http"
    address: str  # host[:port] to dial

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.address}"


def is_loopback(host: str) -> bool:
    """Whether host[:port] names this machine: localhost, 127.0.0.0/8 or ::1."""
    name = host
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _env_number(name: str, default: float, minimum: float) -> float:
    try:
        return max(minimum, float(os.environ.get(name, "") or default))
    except ValueError:
        return default


class RegistryAccess:
    """Where and how to dial each registry host.

    `plain_http`: hosts spoken to over plain HTTP. `endpoints`: host -> "scheme://address" (or "address") to dial
    instead, e.g. an ECR name -> Fargo's edge port. `connector`: makes the aiohttp connector of one pull (default
    a plain TCPConnector in the host's namespace); `connectors` does so per registry host. `timeout` (seconds,
    connect and read) and `attempts` default to $FARGO_PULL_TIMEOUT_SECONDS / $FARGO_PULL_ATTEMPTS.
    `network` names the network path these connectors use ("host", a subnet): concurrent pulls of one image
    share a download only when their paths are the same, so no task gets an image its own network cannot reach.
    """

    def __init__(
        self,
        *,
        plain_http: Iterable[str] = (),
        endpoints: Mapping[str, str] | None = None,
        connector: ConnectorFactory | None = None,
        connectors: Mapping[str, ConnectorFactory] | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        network: str = "host",
    ) -> None:
        self.network = network
        self.plain_http = frozenset(h.lower() for h in plain_http)
        self.endpoints = {k.lower(): v for k, v in (endpoints or {}).items()}
        self._connector = connector
        self._connectors = {k.lower(): v for k, v in (connectors or {}).items()}
        self.timeout = timeout if timeout is not None else _env_number(
            "FARGO_PULL_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, 0.01)
        self.attempts = attempts if attempts is not None else int(_env_number("FARGO_PULL_ATTEMPTS", DEFAULT_ATTEMPTS, 1))

    def endpoint(self, host: str) -> RegistryEndpoint:
        host = host.lower()
        mapped = self.endpoints.get(host)
        if mapped:
            scheme, sep, address = mapped.partition("://")
            if sep:
                return RegistryEndpoint(scheme, address.rstrip("/"))
            address = mapped.rstrip("/")
            return RegistryEndpoint("http" if self._listed(host) else self._scheme(address.lower()), address)
        return RegistryEndpoint(self._scheme(host), host)

    def _scheme(self, host: str) -> str:
        return "http" if self._listed(host) or is_loopback(host) else "https"

    def _listed(self, host: str) -> bool:
        """Listed as plain HTTP: as host:port, or as a bare host (any of its ports)."""
        bare = host.rpartition(":")[0] if host.count(":") == 1 else host
        return host in self.plain_http or bare in self.plain_http

    def connector(self, host: str) -> aiohttp.BaseConnector:
        factory = self._connectors.get(host.lower()) or self._connector
        return factory() if factory else aiohttp.TCPConnector(limit=16, ttl_dns_cache=10)
