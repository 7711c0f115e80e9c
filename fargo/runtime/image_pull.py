"""Pulling an image from a registry into containerd, as `ctr images pull` does: one lease; manifests, config and
layers written with containerd's GC labels (a blob already in the content store is not fetched); layers fetched
three at a time and unpacked in order as they arrive; then the image record. A reference that resolves to the
image record's own digest, pulled and unpacked already, is done with no write at all. Concurrent pulls of one
image share one download, and so do concurrent fetches of one blob. Failures are `PullFailed` with Fargate
1.4.0's wording.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import aiohttp

from fargo.runtime.content import Content
from fargo.runtime.errors import ContainerRuntimeError, ImageImportFailed, RuntimeCallFailed
from fargo.runtime.grpc_channel import Channel
from fargo.runtime.image_archive import SNAPSHOTTER, BlobRef, chain_ids
from fargo.runtime.image_ref import InvalidReference
from fargo.runtime.images import PLATFORM_LABEL, Images
from fargo.runtime.layer_unpack import LayerUnpacker
from fargo.runtime.leases import Leases
from fargo.runtime.platforms import DEFAULT_PLATFORM, INDEX_TYPES, MANIFEST_TYPES, Platform, choose_manifest
from fargo.runtime.protos import types_pb2
from fargo.runtime.registry.access import RegistryAccess
from fargo.runtime.registry.auth import Credentials, TokenCache
from fargo.runtime.registry.client import Descriptor, RegistryClient
from fargo.runtime.registry.errors import InvalidManifest, NoPlatformMatch, RegistryError, UnexpectedStatus
from fargo.runtime.registry.reference import RegistryReference, split_reference
from fargo.runtime.snapshots import Snapshots

T = TypeVar("T")

RESOLVE_STEP = "pull image manifest"
CONTENT_STEP = "ref pull"
INSPECT_STEP = "inspect image"
MAX_CONCURRENT_LAYERS = 3  # as containerd's default
_LEASE_LIFETIME = timedelta(hours=2)  # frees what a pull pinned if Fargo dies during it
_BACKOFF_S, _BACKOFF_MAX_S = 0.2, 2.0


class PullFailed(ContainerRuntimeError):
    """A pull that did not complete. Reads as Fargate's `<step> has been retried <attempts> time(s): <detail>`;
    the image hook prefixes `CannotPullContainerError: `. `detail` is containerd's inner text."""

    def __init__(self, step: str, attempts: int, detail: str, kind: str = "") -> None:
        super().__init__(f"{step} has been retried {attempts} time(s): {detail}")
        self.step, self.attempts, self.detail = step, attempts, detail
        self.kind = kind  # the registry failure's class ("NotFound", "AccessDenied", "NetworkFailure"), if one


@dataclass(frozen=True)
class PullProgress:
    ref: str
    status: str  # "resolving", "downloading" (and unpacking, as layers arrive), "done"
    downloaded: int = 0  # bytes fetched by this pull so far
    total: int = 0  # bytes of config and layers (0 until the manifest is read)
    cached: int = 0  # of which were in the content store already
    layers: int = 0
    layers_unpacked: int = 0


@dataclass(frozen=True)
class PulledImage:
    name: str  # the normalised reference the image is stored under
    digest: str  # what the reference resolved to (index or manifest): the container's imageDigest
    media_type: str
    manifest_digest: str  # the platform's manifest
    platform: str
    size: int  # config and layers, compressed
    fetched: int  # bytes this pull downloaded (0: everything was cached)
    requests: int  # HTTP requests made to the registry and its token server


ProgressCallback = Callable[[PullProgress], None]


class _Shared(Generic[T]):
    """Work several callers wait for: it runs once, as a task of its own; it is cancelled only when every caller
    waiting for it has gone (a cancelled caller must not stop the others' download)."""

    def __init__(self, work: Coroutine[Any, Any, T], done: Callable[[], None]) -> None:
        self.listeners: list[ProgressCallback] = []
        self._waiters = 0
        self.task: asyncio.Task[T] = asyncio.ensure_future(work)
        self.task.add_done_callback(lambda task: (done(), task.cancelled() or task.exception()))

    async def join(self, listener: ProgressCallback | None = None) -> T:
        self._waiters += 1
        if listener is not None:
            self.listeners.append(listener)
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if not self.task.done() and self._waiters == 1:
                self.task.cancel()
            raise
        finally:
            self._waiters -= 1
            if listener is not None:
                self.listeners.remove(listener)

    def emit(self, progress: PullProgress) -> None:
        for listener in list(self.listeners):
            listener(progress)


class _Session:
    """A pull's aiohttp session, kept open while a shared blob download started by the pull still uses it."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session, self._users = session, 1

    def acquire(self) -> _Session:
        self._users += 1
        return self

    async def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            await self.session.close()


@dataclass
class _Counter:
    """One pull's byte counts, reported through its shared job."""

    job: _Shared[Any]
    ref: str
    status: str = "resolving"
    downloaded: int = 0
    total: int = 0
    cached: int = 0
    layers: int = 0
    layers_unpacked: int = 0

    def add(self, n: int) -> None:
        self.downloaded += n
        self.report()

    def report(self, status: str | None = None) -> None:
        self.status = status or self.status
        self.job.emit(PullProgress(self.ref, self.status, self.downloaded, self.total, self.cached, self.layers,
                                   self.layers_unpacked))


@dataclass
class _Download:
    client: RegistryClient
    session: _Session
    counters: list[_Counter] = field(default_factory=list)


class ImagePuller:
    def __init__(self, channel: Channel, content: Content, snapshots: Snapshots, leases: Leases, images: Images) -> None:
        self._content, self._leases, self._images = content, leases, images
        self._unpacker = LayerUnpacker(channel, snapshots)
        self._tokens = TokenCache()
        self._pulls: dict[tuple[str, ...], _Shared[PulledImage]] = {}
        self._blobs: dict[str, _Shared[None]] = {}
        self._blob_counters: dict[str, list[_Counter]] = {}
        self._unpack_locks: dict[str, asyncio.Lock] = {}

    async def pull(
        self,
        ref: str,
        *,
        platform: Platform | tuple[str, ...] | str = DEFAULT_PLATFORM,
        access: RegistryAccess | None = None,
        credentials: Credentials | None = None,
        progress: ProgressCallback | None = None,
    ) -> PulledImage:
        """Pull `ref` for `platform` (linux/amd64 by default) into containerd; PullFailed if it cannot be had.

        A pull of the same image, platform, network path (`access.network`) and user that is under way is joined
        rather than repeated. Cancelling ends this caller's wait at once; the download stops when no one waits.
        """
        access = access or RegistryAccess()
        try:
            reference = split_reference(ref)
        except InvalidReference as exc:
            raise PullFailed(RESOLVE_STEP, 1, f"failed to resolve ref {ref}: {exc}") from None
        wanted = Platform.of(platform)
        key = (reference.name, str(wanted), access.network, credentials.username if credentials else "")
        job = self._pulls.get(key)
        if job is None:
            holder: list[_Shared[PulledImage]] = []
            job = _Shared(self._pull(reference, wanted, access, credentials, lambda: holder[0]),
                          lambda: self._pulls.pop(key, None))
            holder.append(job)
            self._pulls[key] = job
        return await job.join(progress)

    async def close(self) -> None:
        """Cancel every pull under way (Fargo is stopping)."""
        jobs = [job.task for job in [*self._pulls.values(), *self._blobs.values()]]
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # -- one pull --------------------------------------------------------------------------------

    async def _pull(self, reference: RegistryReference, wanted: Platform, access: RegistryAccess,
                    credentials: Credentials | None, job: Callable[[], _Shared[PulledImage]]) -> PulledImage:
        counter = _Counter(job(), reference.name)
        counter.report("resolving")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=access.timeout, sock_read=access.timeout)
        session = _Session(aiohttp.ClientSession(connector=access.connector(reference.host), timeout=timeout,
                                                 auto_decompress=False, trust_env=False))
        try:
            client = RegistryClient(reference, access, session.session, credentials, self._tokens)
            top = await _attempts(RESOLVE_STEP, access.attempts, client.resolve,
                                  lambda text: f"failed to resolve ref {reference.name}: {text}")
            held = await self._held(reference, top, wanted, client, counter)
            if held is not None:
                return held
            lease = await self._leases.create("fargo-pull", _LEASE_LIFETIME)
            try:
                download = _Download(client, session, [counter])
                return await self._fetch_and_unpack(reference, top, wanted, access, download, counter, lease)
            finally:
                await self._leases.delete(lease)
        finally:
            await session.release()

    async def _held(self, reference: RegistryReference, top: Descriptor, wanted: Platform, client: RegistryClient,
                    counter: _Counter) -> PulledImage | None:
        """The pull's result if the image record is this very digest, pulled for `wanted` and unpacked: its GC
        references hold all its content and layers, so there is nothing to fetch, label or unpack (no writes)."""
        held = await self._images.held(reference.name, top.digest, str(wanted))
        if held is None:
            return None
        counter.total = counter.cached = held.size
        counter.report("done")
        return PulledImage(
            name=reference.name, digest=top.digest, media_type=top.media_type, manifest_digest=held.manifest_digest,
            platform=str(wanted), size=held.size, fetched=0, requests=client.requests,
        )

    async def _fetch_and_unpack(self, reference: RegistryReference, top: Descriptor, wanted: Platform,
                                access: RegistryAccess, download: _Download, counter: _Counter,
                                lease: str) -> PulledImage:
        client = download.client
        source = {f"containerd.io/distribution.source.{reference.domain}": reference.repository}
        # Parents are stored before their children, with GC labels naming them: whatever another pull fetches
        # for us is then referenced from our lease the moment it lands.
        descriptor, manifest = top, await self._manifest(client, top, access)
        while descriptor.media_type in INDEX_TYPES:
            chosen = choose_manifest(manifest, wanted)
            if chosen is None:
                raise PullFailed(RESOLVE_STEP, 1, NoPlatformMatch(str(wanted)).fargate_text)
            position = manifest["manifests"].index(chosen)
            await self._store_document(descriptor, manifest, client, lease,
                                       {f"containerd.io/gc.ref.content.m.{position}": chosen["digest"], **source})
            descriptor = _descriptor(chosen, RESOLVE_STEP)
            manifest = await self._manifest(client, descriptor, access)
        if descriptor.media_type not in MANIFEST_TYPES:
            raise PullFailed(RESOLVE_STEP, 1, f"unsupported media type {descriptor.media_type}")
        manifest_digest = descriptor.digest
        config = _descriptor(manifest.get("config") or {}, CONTENT_STEP)
        layers = [_descriptor(layer, CONTENT_STEP) for layer in manifest.get("layers") or []]
        labels = {"containerd.io/gc.ref.content.config": config.digest, **source}
        labels.update({f"containerd.io/gc.ref.content.l.{i}": layer.digest for i, layer in enumerate(layers)})
        await self._store_document(descriptor, manifest, client, lease, labels)

        counter.total, counter.layers = config.size + sum(layer.size for layer in layers), len(layers)
        counter.report("downloading")
        config_json = await self._config(download, config, access, lease, counter)
        diff_ids = [str(d) for d in (config_json.get("rootfs") or {}).get("diff_ids") or []]
        if len(diff_ids) != len(layers):
            raise PullFailed(CONTENT_STEP, 1,
                             f"number of layers and diffIDs don't match: {len(layers)} != {len(diff_ids)}")
        chains = chain_ids(diff_ids)
        config_labels = {**source, **({f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}": chains[-1]} if chains else {})}
        await self._content.label(config.digest, config_labels, lease)
        await self._layers(download, layers, diff_ids, chains, source, access, lease, counter)

        target = types_pb2.Descriptor(media_type=top.media_type, digest=top.digest, size=top.size)
        try:
            await self._images.put(reference.name, target, labels={PLATFORM_LABEL: str(wanted)}, lease=lease)
        except ContainerRuntimeError as exc:
            raise PullFailed(INSPECT_STEP, 1, exc.message) from None
        counter.report("done")
        return PulledImage(
            name=reference.name, digest=top.digest, media_type=top.media_type, manifest_digest=manifest_digest,
            platform=str(wanted), size=counter.total, fetched=counter.downloaded, requests=client.requests,
        )

    async def _manifest(self, client: RegistryClient, descriptor: Descriptor, access: RegistryAccess) -> dict[str, Any]:
        """A manifest or index: from the content store if it is there, else from the registry (verified)."""
        if await self._content.exists(descriptor.digest):
            body = await self._content.read(descriptor.digest)
        else:
            body = await _attempts(RESOLVE_STEP, access.attempts, lambda: client.manifest(descriptor))
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise PullFailed(RESOLVE_STEP, 1, f"manifest {descriptor.digest} is not a JSON object")
        return document

    async def _store_document(self, descriptor: Descriptor, document: dict[str, Any], client: RegistryClient,
                              lease: str, labels: dict[str, str]) -> None:
        ref = BlobRef(descriptor.media_type, descriptor.digest, descriptor.size)
        if await self._content.exists(descriptor.digest):
            await self._content.label(descriptor.digest, labels, lease)
            return
        body = await client.manifest(descriptor)  # cached by the client: the same bytes that were parsed
        await _content_call(self._content.write_stream(ref, _one(body), labels, lease))

    async def _config(self, download: _Download, config: Descriptor, access: RegistryAccess, lease: str,
                      counter: _Counter) -> dict[str, Any]:
        await self._blob(download, config, access, {}, "config", counter)
        try:
            document = json.loads(await self._content.read(config.digest))
        except (ValueError, ContainerRuntimeError) as exc:
            raise PullFailed(INSPECT_STEP, 1, f"failed to read image config {config.digest}: {exc}") from None
        if not isinstance(document, dict):
            raise PullFailed(INSPECT_STEP, 1, f"image config {config.digest} is not a JSON object")
        return document

    async def _layers(self, download: _Download, layers: list[Descriptor], diff_ids: list[str], chains: list[str],
                      source: dict[str, str], access: RegistryAccess, lease: str, counter: _Counter) -> None:
        """Fetch up to three layers at a time; unpack each, bottom first, as soon as it and those below are in."""
        gate = asyncio.Semaphore(MAX_CONCURRENT_LAYERS)

        async def fetch(layer: Descriptor, diff_id: str) -> None:
            async with gate:
                labels = {"containerd.io/uncompressed": diff_id, **source}
                await self._blob(download, layer, access, labels, "layer", counter)

        try:
            async with asyncio.TaskGroup() as group:
                fetches = [group.create_task(fetch(layer, diff_id)) for layer, diff_id in zip(layers, diff_ids)]
                parent = ""
                for layer, diff_id, chain_id, fetched in zip(layers, diff_ids, chains, fetches):
                    await fetched
                    await self._unpack(layer, diff_id, chain_id, parent, lease)
                    counter.layers_unpacked += 1
                    counter.report()
                    parent = chain_id
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None

    async def _unpack(self, layer: Descriptor, diff_id: str, chain_id: str, parent: str, lease: str) -> None:
        lock = self._unpack_locks.setdefault(chain_id, asyncio.Lock())
        try:
            async with lock:  # two pulls sharing a layer unpack it once
                ref = BlobRef(layer.media_type, layer.digest, layer.size)
                await self._unpacker.apply(ref, diff_id, chain_id, parent, lease, ImageImportFailed)
        except ContainerRuntimeError as exc:
            raise PullFailed(CONTENT_STEP, 1, f"failed to unpack image on snapshotter {SNAPSHOTTER}: {exc.message}") from None
        finally:
            if not lock.locked():
                self._unpack_locks.pop(chain_id, None)

    # -- blobs -----------------------------------------------------------------------------------

    async def _blob(self, download: _Download, blob: Descriptor, access: RegistryAccess, labels: dict[str, str],
                    kind: str, counter: _Counter) -> None:
        """Make sure the blob is in the content store: present already, joined from a fetch under way, or fetched."""
        if await self._content.exists(blob.digest):
            await _content_call(self._content.label(blob.digest, labels))
            counter.cached += blob.size
            counter.report()
            return
        job = self._blobs.get(blob.digest)
        if job is None:
            counters: list[_Counter] = []
            self._blob_counters[blob.digest] = counters
            job = _Shared(self._fetch_blob(download, blob, access, labels, kind, counters),
                          lambda: self._forget_blob(blob.digest))
            self._blobs[blob.digest] = job
        counters = self._blob_counters[blob.digest]
        counters.append(counter)
        try:
            await job.join()
        finally:
            counters.remove(counter)
        if labels:  # a fetch started by another pull set its labels, not necessarily ours
            await _content_call(self._content.label(blob.digest, labels))

    def _forget_blob(self, digest: str) -> None:
        self._blobs.pop(digest, None)
        self._blob_counters.pop(digest, None)

    async def _fetch_blob(self, download: _Download, blob: Descriptor, access: RegistryAccess,
                          labels: dict[str, str], kind: str, counters: list[_Counter]) -> None:
        # Its own lease: the fetch may outlive the pull that started it (that pull cancelled, another waiting).
        session = download.session.acquire()
        lease = await self._leases.create("fargo-pull-blob", _LEASE_LIFETIME)
        ref = BlobRef(blob.media_type, blob.digest, blob.size)

        def on_bytes(n: int) -> None:
            for counter in list(counters):
                counter.add(n)

        async def attempt() -> None:
            await _content_call(self._content.write_stream(ref, download.client.blob(blob, kind=kind), labels, lease,
                                                           on_bytes))

        try:
            await _attempts(CONTENT_STEP, access.attempts, attempt)
        finally:
            await self._leases.delete(lease)
            await session.release()


async def _attempts(step: str, attempts: int, operation: Callable[[], Awaitable[T]],
                    wrap: Callable[[str], str] = lambda text: text) -> T:
    """Run `operation`, again after a short backoff while it fails on the network, up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except RegistryError as error:
            if error.retryable and attempt < attempts:
                await asyncio.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_MAX_S))
                continue
            if isinstance(error, UnexpectedStatus) and error.status == 403 and step == RESOLVE_STEP:
                step = INSPECT_STEP  # as Fargate reports a 403 on the manifest
            raise PullFailed(step, attempt, wrap(error.text), type(error).__name__) from None
    raise AssertionError("unreachable")


async def _content_call(call: Awaitable[T]) -> T:
    """A content-store call of a pull: containerd's refusals become PullFailed (ref pull)."""
    try:
        return await call
    except (RuntimeCallFailed, ImageImportFailed) as exc:
        raise PullFailed(CONTENT_STEP, 1, f"failed to copy: {exc.message}") from None


def _descriptor(entry: dict[str, Any], step: str) -> Descriptor:
    try:
        return Descriptor.of(entry)
    except InvalidManifest as error:
        raise PullFailed(step, 1, error.text) from None


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a task group: a PullFailed if there is one, else the first."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    return next((e for e in leaves if isinstance(e, PullFailed)), leaves[0])


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
