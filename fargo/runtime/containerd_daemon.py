"""Fargo's own containerd: where it keeps its files, starting it detached, finding it again, stopping it.

containerd outlives `fargo up` on purpose (tasks keep running); the next `fargo up` reuses the one that
answers on DATA_DIR/containerd/containerd.sock instead of starting a second one.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from fargo.runtime.errors import ContainerdUnavailable, register_host_root
from fargo.runtime.protos import version_pb2

log = logging.getLogger(__name__)

_VERSION_METHOD = "/containerd.services.version.v1.Version/Version"
START_TIMEOUT_S = 15.0
_CONFIG_MARKER = "# Written by Fargo; rewritten on every start."  # first line of the config of a containerd we own


@dataclass(frozen=True)
class ContainerdPaths:
    """Every file of a Fargo-owned containerd, all under DATA_DIR/containerd/."""

    base: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ContainerdPaths:
        return cls(Path(data_dir).absolute() / "containerd")

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def log(self) -> Path:
        return self.base / "containerd.log"

    @property
    def pid_file(self) -> Path:
        return self.base / "containerd.pid"

    @property
    def runc_root(self) -> Path:
        # Passed to the runc shim as Options.root, so runc's state stays out of /run/containerd/runc.
        return self.base / "runc"

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"


def owned_state_dir(address: str) -> Path | None:
    """containerd's --state dir if `address` is the socket of a containerd that Fargo started (and so owns)."""
    socket_path = Path(address.removeprefix("unix://").removeprefix("unix:"))
    if socket_path.name != "containerd.sock":
        return None
    paths = ContainerdPaths(socket_path.parent)
    try:
        with open(paths.config, encoding="utf-8") as config:
            ours = config.readline().strip() == _CONFIG_MARKER
    except OSError:
        return None
    return paths.state if ours else None


def containerd_answers(address: str, timeout: float = 1.0) -> str | None:
    """The daemon's version if a containerd answers on `address` (`unix:///path` or a path), else None."""
    if not address.startswith("unix:") and address.startswith("/"):
        address = f"unix://{address}"
    path = address.removeprefix("unix://")
    if address.startswith("unix://") and not os.path.exists(path):
        return None
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            _VERSION_METHOD,
            request_serializer=lambda _: b"",
            response_deserializer=version_pb2.VersionResponse.FromString,
        )
        try:
            reply = call(None, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError:
            return None
    return str(reply.version) or "unknown"


def ensure_containerd(data_dir: Path, address: str | None = None) -> str:
    """Return the address of a running containerd: the given one, the one already serving DATA_DIR, or a new one.

    A new containerd runs in its own session (SIGINT to Fargo does not reach it) and logs to
    DATA_DIR/containerd/containerd.log.
    """
    register_host_root(data_dir.resolve())
    if address:
        if not address.startswith(("unix://", "/")):
            raise ContainerdUnavailable(f"containerd address must be a unix socket: {address!r}")
        if address.startswith("/"):
            address = f"unix://{address}"
        if containerd_answers(address) is None:
            raise ContainerdUnavailable(f"no containerd answers on {address}")
        return address
    paths = ContainerdPaths.for_data_dir(data_dir)
    if containerd_answers(paths.address) is not None:
        log.info("reusing containerd on %s", paths.address)
        return paths.address
    _start(paths)
    return paths.address


def _write_config(paths: ContainerdPaths) -> None:
    # Without --config containerd would read /etc/containerd/config.toml (CRI on, shared opt dir).
    paths.config.write_text(
        "\n".join(
            [
                _CONFIG_MARKER,
                "version = 2",
                f'root = "{paths.root}"',
                f'state = "{paths.state}"',
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                "[grpc]",
                f'  address = "{paths.socket}"',
                "[ttrpc]",
                f'  address = "{paths.socket}.ttrpc"',
                '[plugins."io.containerd.internal.v1.opt"]',
                f'  path = "{paths.base / "opt"}"',
                "",
            ]
        )
    )


def _start(paths: ContainerdPaths) -> None:
    binary = shutil.which("containerd")
    if binary is None:
        raise ContainerdUnavailable("containerd is not installed (apt-get install containerd)")
    for directory in (paths.base, paths.root, paths.state, paths.runc_root):
        directory.mkdir(parents=True, exist_ok=True)
    _write_config(paths)
    with open(paths.log, "ab") as log_file:
        process = subprocess.Popen(
            [binary, "--config", str(paths.config), "--root", str(paths.root),
             "--state", str(paths.state), "--address", str(paths.socket)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, close_fds=True,
        )
    paths.pid_file.write_text(f"{process.pid}\n")
    # We never wait() for it: it must outlive us. Mark it waited-for so Popen does not warn at exit.
    process.returncode = 0
    deadline = time.monotonic() + START_TIMEOUT_S
    delay = 0.005
    while time.monotonic() < deadline:
        if containerd_answers(paths.address, timeout=0.5) is not None:
            log.info("started containerd pid %d on %s", process.pid, paths.address)
            return
        if _reap_if_exited(process.pid):
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    raise ContainerdUnavailable(f"containerd did not start; last log lines:\n{_log_tail(paths.log)}")


def _reap_if_exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _pid_alive(pid)
    return done == pid


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _containerd_pid(paths: ContainerdPaths) -> int | None:
    """The pid in the pid file, if that process is still our containerd (pids get reused)."""
    try:
        pid = int(paths.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(paths.config).encode() in cmdline else None


def stop_containerd(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop the containerd serving DATA_DIR (SIGTERM, then SIGKILL). Its tasks' shims keep running."""
    paths = ContainerdPaths.for_data_dir(data_dir)
    pid = _containerd_pid(paths)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reap_if_exited(pid) or not _pid_alive(pid):
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        _reap_if_exited(pid)
    paths.pid_file.unlink(missing_ok=True)
