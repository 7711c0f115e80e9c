"""containerd 1.6's wording of network failures and registry errors, and Fargate's of a failed pull."""
from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.client_reqrep import ConnectionKey

from fargo.runtime.image_pull import PullFailed
from fargo.runtime.registry.errors import NoPlatformMatch, go_net_error, request_failed, server_message

_KEY = ConnectionKey("registry-1.docker.io", 443, True, True, None, None, None)


def test_refused_names_the_address_dialed() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5000)")
    error = aiohttp.ClientConnectorError(_KEY, refused)
    failure = request_failed("HEAD", "http://127.0.0.1:5000/v2/a/manifests/1", error, "127.0.0.1:5000")
    assert failure.retryable
    assert failure.text == ('failed to do request: Head "http://127.0.0.1:5000/v2/a/manifests/1": '
                            "dial tcp 127.0.0.1:5000: connect: connection refused")


def test_connect_timeout_reads_as_gos_dial_timeout() -> None:
    error = aiohttp.ConnectionTimeoutError("Connection timeout to host")
    assert go_net_error(error, "34.205.13.154:443") == "dial tcp 34.205.13.154:443: i/o timeout"


def test_other_network_failures() -> None:
    assert go_net_error(aiohttp.SocketTimeoutError(), "h:1") == "net/http: timeout awaiting response headers"
    assert go_net_error(asyncio.TimeoutError(), "h:1") == "net/http: timeout awaiting response headers"
    assert go_net_error(aiohttp.ClientOSError(104, "Connection reset by peer"), "h:1") == \
        "read tcp h:1: connection reset by peer"
    assert go_net_error(aiohttp.ServerDisconnectedError(), "h:1") == "EOF"
    unreachable = aiohttp.ClientConnectorError(_KEY, OSError(101, "Network is unreachable"))
    assert go_net_error(unreachable, "10.0.0.1:443") == "dial tcp 10.0.0.1:443: connect: network is unreachable"
    dns = aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "Name or service not known"))
    assert go_net_error(dns, "registry.example:443") == "dial tcp: lookup registry.example: no such host"


def test_registry_error_bodies_read_as_docker_prints_them() -> None:
    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
    assert server_message(body) == "unauthorized: authentication required"
    assert server_message(b"not json") is None


def test_platform_mismatch_has_containerds_and_fargates_texts() -> None:
    error = NoPlatformMatch("linux/amd64")
    assert error.text == "no match for platform in manifest: not found"
    assert error.fargate_text == "image Manifest does not contain descriptor matching platform 'linux/amd64'."


def test_pull_failed_reads_as_fargates_reason() -> None:
    failure = PullFailed("pull image manifest", 5, "failed to resolve ref x: failed to do request: i/o timeout")
    assert str(failure) == "pull image manifest has been retried 5 time(s): failed to resolve ref x: failed to do request: i/o timeout"
    assert (failure.step, failure.attempts) == ("pull image manifest", 5)
