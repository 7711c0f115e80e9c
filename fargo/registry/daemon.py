"""Fargo's registry process: the config Fargo writes, starting it, knowing when it answers, restarting it with
back-off when it dies, stopping it with `fargo up`.

Unlike containerd it does not outlive Fargo: nothing runs from it, and a registry left behind would hold the
socket. It dies with Fargo even on SIGKILL (setpriv --pdeathsig), and a start clears one left by a crash.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

import aiohttp

from fargo.agent.backoff import Backoff
from fargo.registry.storage import RegistryPaths

log = logging.getLogger("fargo.registry")

BINARY = "/usr/bin/docker-registry"  # Debian's docker-registry package (distribution 2.8.2)
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_STEADY_S = 30.0  # a registry that ran this long before dying restarts at once, not after the back-off
_MARKER = "# Written by Fargo; rewritten on every start."


class RegistryUnavailable(RuntimeError):
    """The registry binary is missing, or the registry did not start."""


def write_config(paths: RegistryPaths) -> None:
    """Filesystem storage, deletes on, a unix socket, relative URLs (clients see the edge's host), no auth (the
    edge's proxy checks ECR tokens), warnings only, to a log file of its own."""
    for directory in (paths.base, paths.data):
        directory.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.base, 0o700)  # the socket has no auth: only root may reach it
    paths.config.write_text("\n".join([
        _MARKER,
        "version: 0.1",
        "log:",
        "  level: warn",
        "  formatter: text",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {paths.data}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: true",
        "      age: 168h",
        "      interval: 24h",
        "      dryrun: false",
        "http:",
        "  net: unix",
        f"  addr: {paths.socket}",
        "  relativeurls: true",
        # kept across restarts: an upload under way survives a registry restart
        f"  secret: {_http_secret(paths)}",
        "",
    ]))
    os.chmod(paths.config, 0o600)


def _http_secret(paths: RegistryPaths) -> str:
    if not paths.http_secret.exists():
        fd = os.open(paths.http_secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return paths.http_secret.read_text().strip()


async def registry_answers(socket: Path, timeout: float = 1.0) -> bool:
    """True when `GET /v2/` on the socket answers 200 (the registry is serving)."""
    if not socket.exists():
        return False
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket)),
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get("http://registry/v2/") as response:
                return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


class RegistryDaemon:
    """One supervised registry for one data dir. `start()` returns once it answers; `stop()` ends it."""

    def __init__(self, data_dir: Path, binary: str = BINARY) -> None:
        self.paths = RegistryPaths.for_data_dir(data_dir)
        self.binary = binary
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def socket(self) -> Path:
        return self.paths.socket

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    async def start(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise RegistryUnavailable(f"{self.binary} is not installed (apt-get install docker-registry)")
        write_config(self.paths)
        _end_leftover(self.paths)
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="registry supervisor")

    async def health(self) -> str | None:
        """None when the registry answers, else why not (for /_fargo/health)."""
        if await registry_answers(self.socket):
            return None
        return "starting" if self._process and self._process.returncode is None else "not running (restarting)"

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        self.paths.socket.unlink(missing_ok=True)

    async def _spawn(self) -> None:
        """Start the registry and wait until it answers; RegistryUnavailable if it does not."""
        self.paths.socket.unlink(missing_ok=True)  # a stale socket would make it fail to listen
        command = [self.binary, "serve", str(self.paths.config)]
        setpriv = shutil.which("setpriv")
        if setpriv:  # the registry gets SIGTERM when Fargo dies, however it dies
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        with open(self.paths.log, "ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True)  # Ctrl-C of `fargo up` reaches Fargo only; Fargo stops it in order
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.005
        while time.monotonic() < deadline:
            if await registry_answers(self.socket, timeout=0.5):
                log.info("registry pid %d serving on %s", self._process.pid, self.socket)
                return
            if self._process.returncode is not None:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        raise RegistryUnavailable(f"the registry did not start; last log lines:\n{_log_tail(self.paths.log)}")

    async def _supervise(self) -> None:
        backoff = Backoff(0.2, 30.0)
        while not self._stopping:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > _STEADY_S:
                backoff.reset()
            log.warning("the registry exited with %s; restarting in %.1f s. Last log lines:\n%s",
                        code, backoff.delay, _log_tail(self.paths.log))
            await backoff.sleep()
            try:
                await self._spawn()
                self.restarts += 1
            except (RegistryUnavailable, OSError) as e:
                log.warning("%s", e)  # the loop waits on the dead process again and backs off further


def _end_leftover(paths: RegistryPaths) -> None:
    """A registry of this data dir that outlived its Fargo (no setpriv, or a crash between fork and exec)."""
    needle = str(paths.config).encode()
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit() or int(proc_dir.name) == os.getpid():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in cmdline and any(part.endswith(b"docker-registry") for part in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc_dir.name), signal.SIGKILL)


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
