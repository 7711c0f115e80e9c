"""Pulls from a real registry (Debian's docker-registry on loopback, images pushed with skopeo) into the session's
private containerd, and from small registries written here for what a real one will not do (bad digests, slow or
silent servers, a token server). Only 127.0.0.1 is dialed.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from fargo.runtime.image_pull import PulledImage, PullFailed, PullProgress
from fargo.runtime.registry import Credentials, RegistryAccess
from fargo.runtime.test_image import write_layered_archive, write_multi_platform_archive, write_oci_archive
from tests.integration.conftest import ContainerdRuntime
from tests.integration.docker_registry import LocalRegistry, TokenAuth, free_port

LAYERED_SIZES = [256 << 10] * 4


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pull-images")
    write_oci_archive(out / "busybox.tar")
    _, per_arch = write_multi_platform_archive(out / "multi.tar")
    (out / "multi.json").write_text(json.dumps(per_arch))
    write_layered_archive(out / "layered.tar", "fargo.local/layered:1", LAYERED_SIZES, seed=7)
    # Content no other test's image has (the shared containerd may hold busybox's layer already).
    write_layered_archive(out / "unique.tar", "fargo.local/unique:1", [4096], seed=secrets.randbits(32),
                          with_busybox=False)
    return {"busybox": out / "busybox.tar", "multi": out / "multi.tar", "layered": out / "layered.tar",
            "unique": out / "unique.tar", "multi_arches": out / "multi.json"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, images: dict[str, Path]) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        for repo in ("test/busybox:1", "test/again:1", "test/digest:1", "test/cli:1"):
            reg.push(images["busybox"], repo)
        reg.push(images["multi"], "test/multi:1", all_platforms=True)
        reg.push(images["layered"], "test/shared:1")
        reg.push(images["unique"], "test/unique:1")
        yield reg


def _pull(rt: ContainerdRuntime, ref: str, **kwargs: object) -> PulledImage:
    return rt.run(rt.client.pull_image(ref, **kwargs))  # type: ignore[arg-type]


def _failure(rt: ContainerdRuntime, ref: str, **kwargs: object) -> PullFailed:
    with pytest.raises(PullFailed) as caught:
        _pull(rt, ref, **kwargs)
    return caught.value


def _ctr(rt: ContainerdRuntime, *args: str) -> str:
    return subprocess.run(["ctr", "-a", rt.address.removeprefix("unix://"), "-n", rt.namespace, *args],
                          check=True, capture_output=True, text=True).stdout


def _pull_leases(rt: ContainerdRuntime) -> list[str]:
    return [line for line in _ctr(rt, "leases", "ls").splitlines() if "fargo-pull" in line]


def _content_labels(rt: ContainerdRuntime, digest: str) -> str:
    return next((line for line in _ctr(rt, "content", "ls").splitlines() if line.startswith(digest)), "")


# -- a real registry ------------------------------------------------------------------------------

def test_pull_by_tag_stores_the_image_unpacked_with_containerds_labels(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    rt = containerd_runtime
    seen: list[PullProgress] = []
    pulled = _pull(rt, f"{registry.address}/test/unique:1", progress=seen.append)
    assert pulled.name == f"{registry.address}/test/unique:1"
    assert pulled.digest.startswith("sha256:") and pulled.fetched == pulled.size > 0
    image = rt.run(rt.client.get_image(pulled.name))
    assert image.digest == pulled.digest
    config = rt.run(rt.client.image_config(pulled.name))
    assert config.cmd == ["sh"]
    assert seen[0].status == "resolving" and seen[-1].status == "done" and seen[-1].layers_unpacked == 1
    manifest = _content_labels(rt, pulled.digest)
    assert "containerd.io/gc.ref.content.config=" in manifest and "containerd.io/gc.ref.content.l.0=" in manifest
    assert f"containerd.io/distribution.source.{registry.address}=test/unique" in manifest
    assert _pull_leases(rt) == []


def test_second_pull_fetches_nothing_but_the_manifest_head(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    rt = containerd_runtime
    ref = f"{registry.address}/test/again:1"
    first = _pull(rt, ref)
    before = len(registry.accesses())
    second = _pull(rt, ref)
    after = registry.accesses()[before:]
    assert second.digest == first.digest and second.fetched == 0
    assert [(a.method, a.path) for a in after] == [("HEAD", "/v2/test/again/manifests/1")]


def test_pull_by_digest(containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    rt = containerd_runtime
    tagged = _pull(rt, f"{registry.address}/test/digest:1")
    pinned = _pull(rt, f"{registry.address}/test/digest@{tagged.digest}")
    assert pinned.name == f"{registry.address}/test/digest@{tagged.digest}" and pinned.digest == tagged.digest
    assert rt.run(rt.client.get_image(pinned.name)).digest == tagged.digest


def test_concurrent_pulls_of_one_image_share_one_download(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    rt = containerd_runtime
    ref = f"{registry.address}/test/shared:1"
    before = len(registry.accesses())

    async def both() -> list[PulledImage]:
        return list(await asyncio.gather(*(rt.client.pull_image(ref) for _ in range(3))))

    results = rt.run(both())
    after = registry.accesses()[before:]
    assert len({r.digest for r in results}) == 1
    blob_gets = [a.path for a in after if a.method == "GET" and "/blobs/" in a.path]
    assert len(blob_gets) == len(set(blob_gets)) == 1 + 1 + len(LAYERED_SIZES)  # config, busybox, data layers
    assert sum(1 for a in after if a.method == "HEAD") == 1
    assert _pull_leases(rt) == []


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_multi_platform_index_resolves_to_the_platform_asked_for(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry, images: dict[str, Path], arch: str) -> None:
    rt = containerd_runtime
    per_arch = json.loads(images["multi_arches"].read_text())
    pulled = _pull(rt, f"{registry.address}/test/multi:1", platform=("linux", arch))
    assert pulled.media_type == "application/vnd.oci.image.index.v1+json"
    assert pulled.manifest_digest == per_arch[arch] and pulled.platform == f"linux/{arch}"
    config_labels = rt.run(rt.client.image_config(pulled.name, platform=f"linux/{arch}"))
    assert config_labels.cmd == ["sh"]


def test_index_without_the_platform_fails_with_fargates_text(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    failure = _failure(containerd_runtime, f"{registry.address}/test/multi:1", platform="linux/s390x")
    assert str(failure) == ("pull image manifest has been retried 1 time(s): image Manifest does not contain "
                            "descriptor matching platform 'linux/s390x'.")


def test_missing_tag_and_missing_repository_are_not_found(
        containerd_runtime: ContainerdRuntime, registry: LocalRegistry) -> None:
    for ref in (f"{registry.address}/test/busybox:nope", f"{registry.address}/no/such-repo:1"):
        failure = _failure(containerd_runtime, ref)
        assert (failure.step, failure.attempts) == ("pull image manifest", 1)
        assert failure.detail == f"failed to resolve ref {ref}: {ref}: not found"


def test_refused_connection_is_retried_then_reported_as_containerd_does(
        containerd_runtime: ContainerdRuntime) -> None:
    port = free_port()
    ref = f"127.0.0.1:{port}/some/image:1"
    failure = _failure(containerd_runtime, ref, access=RegistryAccess(attempts=3))
    assert str(failure) == (
        f"pull image manifest has been retried 3 time(s): failed to resolve ref {ref}: failed to do request: "
        f'Head "http://127.0.0.1:{port}/v2/some/image/manifests/1": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused")


def test_cancelled_pull_stops_at_once_and_leaves_no_lease(containerd_runtime: ContainerdRuntime) -> None:
    rt = containerd_runtime
    blob = b"x" * (4 << 20)
    with _FakeRegistry(rt, blob, trickle=True) as fake:
        async def start_then_cancel() -> float:
            task = asyncio.ensure_future(rt.client.pull_image(fake.ref))
            await fake.blob_started.wait()
            began = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - began

        assert rt.run(start_then_cancel()) < 1.0
    time.sleep(0.2)  # the pull's own lease and its blob's are deleted on the way out
    assert _pull_leases(rt) == []
    with pytest.raises(Exception):
        rt.run(rt.client.get_image(fake.ref))


def test_blob_that_does_not_match_its_digest_is_refused(containerd_runtime: ContainerdRuntime) -> None:
    with _FakeRegistry(containerd_runtime, b"the real layer", corrupt=True) as fake:
        failure = _failure(containerd_runtime, fake.ref)
    assert (failure.step, failure.attempts) == ("ref pull", 1)
    assert "unexpected commit digest" in failure.detail and fake.layer_digest in failure.detail
    assert _pull_leases(containerd_runtime) == []


def test_silent_registry_times_out_after_the_configured_attempts(containerd_runtime: ContainerdRuntime) -> None:
    with _FakeRegistry(containerd_runtime, b"layer", silent=True) as fake:
        failure = _failure(containerd_runtime, fake.ref, access=RegistryAccess(timeout=0.3, attempts=2))
    assert (failure.step, failure.attempts) == ("pull image manifest", 2)
    assert failure.detail.endswith("net/http: timeout awaiting response headers")


# -- auth -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, images: dict[str, Path]) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("basic-registry"), users={"alice": "s3cret"}) as reg:
        reg.push(images["busybox"], "private/busybox:1", credentials=("alice", "s3cret"))
        yield reg


def test_basic_auth_pull_with_credentials(containerd_runtime: ContainerdRuntime, basic_registry: LocalRegistry) -> None:
    ref = f"{basic_registry.address}/private/busybox:1"
    pulled = _pull(containerd_runtime, ref, credentials=Credentials("alice", "s3cret"))
    assert pulled.name == ref and pulled.requests == 2  # refused once, then sent with the credentials
    assert containerd_runtime.run(containerd_runtime.client.get_image(ref)).digest == pulled.digest


def test_auth_refused_texts(containerd_runtime: ContainerdRuntime, basic_registry: LocalRegistry) -> None:
    ref = f"{basic_registry.address}/private/busybox:1"
    denied = "pull access denied, repository does not exist or may require authorization"
    anonymous = _failure(containerd_runtime, ref)
    assert anonymous.detail == f"failed to resolve ref {ref}: {denied}: authorization failed: no basic auth credentials"
    wrong = _failure(containerd_runtime, ref, credentials=Credentials("alice", "wrong"))
    assert (wrong.step, wrong.attempts) == ("pull image manifest", 1)
    assert wrong.detail == f"failed to resolve ref {ref}: {denied}: server message: unauthorized: authentication required"


def test_bearer_token_auth_through_a_token_server(
        containerd_runtime: ContainerdRuntime, tmp_path: Path, images: dict[str, Path]) -> None:
    rt = containerd_runtime
    issued: list[str] = []
    with _TokenServer(rt, tmp_path, users={"bob": "pw"}, issued=issued) as tokens:
        with LocalRegistry(tmp_path / "reg", token=tokens.auth) as reg:
            tokens.allow_push = True
            reg.push(images["busybox"], "tok/busybox:1", credentials=("bob", "pw"))
            tokens.allow_push = False
            issued.clear()
            ref = f"{reg.address}/tok/busybox:1"
            pulled = _pull(rt, ref, credentials=Credentials("bob", "pw"))
            assert rt.run(rt.client.get_image(ref)).digest == pulled.digest
            assert issued == ["bob repository:tok/busybox:pull"]  # one token, cached for every request
            refused = _failure(rt, f"{reg.address}/tok/busybox:1", credentials=Credentials("bob", "bad"))
            assert refused.detail.endswith("failed to fetch oauth token: unexpected status: 401 Unauthorized")


# -- helpers: registries that misbehave on purpose -----------------------------------------------

class _FakeRegistry:
    """A one-image registry on loopback: a manifest, a config and one uncompressed layer `blob`; it can serve
    the layer corrupted, trickle it slowly, or never answer at all."""

    def __init__(self, rt: ContainerdRuntime, blob: bytes, *, corrupt: bool = False, trickle: bool = False,
                 silent: bool = False) -> None:
        self.rt, self.blob, self.corrupt, self.trickle, self.silent = rt, blob, corrupt, trickle, silent
        self.port = free_port()
        self.ref = f"127.0.0.1:{self.port}/fake/image:1"
        self.layer_digest = _digest(blob)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [self.layer_digest]}}).encode()
        self.blobs = {self.layer_digest: blob, _digest(config): config}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.layer_digest,
                        "size": len(blob)}],
        }).encode()
        self.blob_started = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _manifest(self, request: web.Request) -> web.Response:
        if self.silent:
            # never answers while it serves; its handler ends with the registry (one left pending would be
            # destroyed with the test's event loop, and asyncio would say so at exit)
            await self._closing.wait()
            return web.Response(status=503)
        headers = {"Docker-Content-Digest": _digest(self.manifest),
                   "Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        return web.Response(body=self.manifest, headers=headers)  # aiohttp leaves the body out of a HEAD

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        data = self.blobs[request.match_info["digest"]]
        if data is self.blob and self.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        if data is self.blob and self.trickle:
            self.blob_started.set()
            for start in range(0, len(data), 4096):
                await response.write(data[start:start + 4096])
                await asyncio.sleep(0.05)
        else:
            await response.write(data)
        return response

    async def _start(self) -> None:
        self.blob_started = asyncio.Event()
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/v2/fake/image/manifests/{ref}", self._manifest)
        app.router.add_get("/v2/fake/image/blobs/{digest}", self._blob)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> _FakeRegistry:
        self.rt.run(self._start())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._runner is not None
        self.rt.run(self._close())

    async def _close(self) -> None:
        assert self._runner is not None
        self._closing.set()
        await self._runner.cleanup()


class _TokenServer:
    """distribution's token auth, server side: Basic credentials in, an ES256 JWT whose x5c certificate is the
    registry's root bundle out."""

    def __init__(self, rt: ContainerdRuntime, work: Path, users: dict[str, str], issued: list[str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.rt, self.users, self.issued, self.allow_push = rt, users, issued, False
        self.port = free_port()
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fargo-test-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        bundle = work / "token-root.pem"
        work.mkdir(parents=True, exist_ok=True)
        bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.auth = TokenAuth(realm=f"http://127.0.0.1:{self.port}/token", service="fargo-test-registry",
                              issuer="fargo-test-issuer", rootcertbundle=bundle)
        self._runner: web.AppRunner | None = None

    def _jwt(self, subject: str, repository: str, actions: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.auth.issuer, "sub": subject, "aud": self.auth.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": hashlib.sha256(str(time.time_ns()).encode()).hexdigest(),
                  "access": [{"type": "repository", "name": repository, "actions": actions}] if repository else []}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    async def _token(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        user, _, password = base64.b64decode(header.removeprefix("Basic ") or b"").decode().partition(":")
        if self.users.get(user) != password or not header.startswith("Basic "):
            return web.json_response({"details": "incorrect username or password"}, status=401)
        scope = request.query.get("scope", "")
        _kind, _, rest = scope.partition(":")
        repository, _, _wanted = rest.rpartition(":")
        actions = ["pull", "push"] if self.allow_push else ["pull"]
        self.issued.append(f"{user} {scope}")
        return web.json_response({"token": self._jwt(user, repository, actions), "expires_in": 300})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> _TokenServer:
        self.rt.run(self._start())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._runner is not None
        self.rt.run(self._runner.cleanup())


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

