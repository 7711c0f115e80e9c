"""The agent's calls to Secrets Manager, SSM and ECR (JSON 1.1, as the Fargate agent makes them with its
execution role), through a connector that decides the network path: the task ENI on 1.4.0, the host on 1.3.0.

Failures come out as the Go SDK words them, since Fargate quotes them in stoppedReason: an AWS error as
`Code: message`, a network failure as `RequestError: send request failed caused by: Post "<url>": dial tcp ...`.
Retries are counted, because the reason says how many were made.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from fargo.runtime.registry.errors import go_net_error

# Each call's deadline and how many times a network failure is tried (Fargate's texts show up to 5).
CALL_TIMEOUT_SECONDS = float(os.environ.get("FARGO_PULL_TIMEOUT_SECONDS", 10))
CALL_ATTEMPTS = int(os.environ.get("FARGO_PULL_ATTEMPTS", 5))
_BACKOFF_SECONDS = 0.2
_TARGETS = {"secretsmanager": "secretsmanager", "ssm": "AmazonSSM", "ecr": "AmazonEC2ContainerRegistry_V20150921"}
_HOSTS = {"secretsmanager": "secretsmanager", "ssm": "ssm", "ecr": "api.ecr"}  # AWS's endpoint host per service

ConnectorFactory = Callable[[], aiohttp.BaseConnector]


class CallFailed(Exception):
    """A call that did not succeed; `text` is the Go SDK's wording, `attempts` how many calls were made."""

    def __init__(self, text: str, attempts: int, *, network: bool = False, code: str = "") -> None:
        super().__init__(text)
        self.text, self.attempts, self.network, self.code = text, attempts, network, code


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where the agent reaches Fargo's AWS APIs: `url` to post to, and the connector that picks the path."""

    url: str
    region: str
    connector: ConnectorFactory

    def shown_url(self, service: str) -> str:
        """The URL a reason names: AWS's endpoint of the service, as the Fargate agent would have called it."""
        return f"https://{_HOSTS[service]}.{self.region}.amazonaws.com/"


async def call(endpoint: ServiceEndpoint, service: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """One JSON 1.1 call, retried on network failures only (an AWS error is an answer)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            return await _post(endpoint, service, operation, body)
        except CallFailed as failed:
            if not failed.network or attempts >= CALL_ATTEMPTS:
                failed.attempts = attempts
                raise
        await asyncio.sleep(_BACKOFF_SECONDS * attempts)


async def _post(endpoint: ServiceEndpoint, service: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-Amz-Target": f"{_TARGETS[service]}.{operation}", "Content-Type": "application/x-amz-json-1.1"}
    # A dial that times out is Go's `i/o timeout`; an answer that never comes, `timeout awaiting response headers`.
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS, sock_connect=CALL_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(connector=endpoint.connector(), timeout=timeout) as session:
            async with session.post(endpoint.url, data=json.dumps(body), headers=headers) as response:
                payload = await response.read()
                status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        raise CallFailed(f'RequestError: send request failed caused by: Post "{endpoint.shown_url(service)}": '
                         f"{go_net_error(e, _address(endpoint.url))}", 1, network=True) from None
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:
        answer = {}
    if status == 200 and isinstance(answer, dict):
        return answer
    code = str(answer.get("__type", "")).rpartition("#")[2] if isinstance(answer, dict) else ""
    message = str(answer.get("message") or answer.get("Message") or "") if isinstance(answer, dict) else ""
    if not code:
        code = "InternalFailure" if status >= 500 else "UnknownError"
    raise CallFailed(f"{code}: {message}" if message else f"{code}: ", 1, network=status >= 500, code=code)


def _address(url: str) -> str:
    """host:port of a URL, as Go's net errors name what was dialed."""
    host = url.split("//", 1)[-1].split("/", 1)[0]
    return host if ":" in host else f"{host}:{443 if url.startswith('https') else 80}"
