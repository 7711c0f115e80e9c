"""The OCI runtime spec (config.json for runc) of one container, built from a typed `ContainerRuntimeSpec`.

Defaults are Docker's and Fargate's: Fargate's capability set, Docker's seccomp profile, masked and
read-only /proc paths, /dev with the usual devices, and rlimits capped to what this host can grant.
"""
from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
from dataclasses import dataclass, field
from typing import Any

from fargo.runtime.errors import InitBinaryMissing
from fargo.runtime.image_users import resolve_user
from fargo.runtime.records import ImageConfig, UserDatabase
from fargo.runtime.seccomp_profile import default_seccomp_profile

log = logging.getLogger(__name__)

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Fargate's default capabilities (docker's default minus none; see ECS "linuxParameters.capabilities").
FARGATE_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
)
# initProcessEnabled: Debian's static tini (package `tini`) bind-mounted where docker puts docker-init.
INIT_BINARIES = ("/usr/bin/tini-static", "/usr/bin/docker-init")
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
RLIMIT_NAMES = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
# Limits this process cannot raise past its own hard limit (runc inherits it through containerd).
_HOST_CAPPED = {"RLIMIT_NOFILE": resource.RLIMIT_NOFILE, "RLIMIT_NPROC": resource.RLIMIT_NPROC}


@dataclass(frozen=True)
class BindMount:
    source: str
    destination: str
    readonly: bool = False


@dataclass(frozen=True)
class Rlimit:
    name: str  # "nofile" or "RLIMIT_NOFILE"
    soft: int
    hard: int


@dataclass
class ContainerRuntimeSpec:
    """Everything about one container that the OCI spec expresses."""

    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    user: str = ""  # "", "uid", "uid:gid", "name", "name:group"
    hostname: str = ""
    readonly_rootfs: bool = False
    rlimits: list[Rlimit] = field(default_factory=list)
    init_process: bool = False
    cgroups_path: str | None = None
    memory_limit: int | None = None  # bytes, hard
    memory_reservation: int | None = None  # bytes, soft limit
    cpu_shares: int | None = None
    cpu_quota: int | None = None  # microseconds per period
    cpu_period: int | None = None
    pids_limit: int | None = None
    netns_path: str | None = None  # join e.g. /run/netns/NAME; None = a new, empty network namespace
    pidns_path: str | None = None  # join another container's pid namespace (/proc/PID/ns/pid)
    mounts: list[BindMount] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    shm_size: int = 64 << 20


@dataclass(frozen=True)
class BuiltSpec:
    spec: dict[str, Any]
    warnings: list[str]  # things adjusted to fit the host (e.g. a capped nofile limit)


def _cap_name(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def capabilities(cap_add: list[str], cap_drop: list[str]) -> list[str]:
    """Fargate's default set with adds and drops applied ("ALL" in drops empties the default set)."""
    drops = {_cap_name(c) for c in cap_drop}
    caps = [] if "ALL" in drops else [c for c in FARGATE_CAPABILITIES if c not in drops]
    for cap in map(_cap_name, cap_add):
        if cap not in caps and cap != "ALL":
            caps.append(cap)
    return caps


def find_init_binary() -> str:
    for candidate in INIT_BINARIES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("tini-static")
    if found:
        return found
    raise InitBinaryMissing("initProcessEnabled needs a static init on the host: apt-get install tini")


def _rlimits(requested: list[Rlimit], warnings: list[str]) -> list[dict[str, Any]]:
    out = []
    for limit in requested:
        kind = RLIMIT_NAMES.get(limit.name.lower(), limit.name.upper())
        soft, hard = limit.soft, limit.hard
        if kind in _HOST_CAPPED:
            host_hard = resource.getrlimit(_HOST_CAPPED[kind])[1]
            if host_hard != resource.RLIM_INFINITY and hard > host_hard:
                warnings.append(f"{kind} hard limit {hard} capped to this host's maximum {host_hard}")
                hard = host_hard
                soft = min(soft, hard)
        out.append({"type": kind, "hard": hard, "soft": soft})
    for warning in warnings:
        _warn_once(warning)
    return out


@functools.cache
def _warn_once(warning: str) -> None:
    """The host's limits do not change while we run: say so once, not for every container."""
    log.warning("%s (said once; applies to every container asking for more)", warning)


def _mounts(spec: ContainerRuntimeSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={spec.shm_size}"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    for bind in spec.mounts:
        options = ["rbind", "rprivate", "ro" if bind.readonly else "rw"]
        mounts.append({"destination": bind.destination, "type": "bind", "source": bind.source, "options": options})
    return mounts


def _devices() -> list[dict[str, Any]]:
    """Docker's device cgroup: deny all, then mknod anything and use the standard character devices."""
    rules: list[dict[str, Any]] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "access": "m"},
        {"allow": True, "type": "b", "access": "m"},
    ]
    for major, minor in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 2)):  # null random full tty zero urandom ptmx
        rules.append({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"})
    rules.append({"allow": True, "type": "c", "major": 136, "access": "rwm"})  # /dev/pts/*
    return rules


def _resources(spec: ContainerRuntimeSpec) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": _devices()}
    memory = {k: v for k, v in (("limit", spec.memory_limit), ("reservation", spec.memory_reservation)) if v is not None}
    if memory:
        resources["memory"] = memory
    cpu = {k: v for k, v in (("shares", spec.cpu_shares), ("quota", spec.cpu_quota), ("period", spec.cpu_period)) if v is not None}
    if cpu:
        resources["cpu"] = cpu
    if spec.pids_limit is not None:
        resources["pids"] = {"limit": spec.pids_limit}
    return resources


def build_oci_spec(spec: ContainerRuntimeSpec, users: UserDatabase | None = None) -> BuiltSpec:
    """The runc config for `spec`; `users` (the image's passwd/group) resolves user and group names."""
    warnings: list[str] = []
    user = resolve_user(spec.user, users)
    caps = capabilities(spec.cap_add, spec.cap_drop)
    env = list(spec.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    if spec.hostname and not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={spec.hostname}")
    args = list(spec.args)
    mounts = _mounts(spec)
    if spec.init_process:
        init_binary = find_init_binary()
        # -s: register as subreaper, for when a shared pid namespace means tini is not PID 1.
        args = [INIT_PATH_IN_CONTAINER, *(["-s"] if spec.pidns_path else []), "--", *args]
        mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": init_binary,
                       "options": ["rbind", "rprivate", "ro"]})
    namespaces: list[dict[str, str]] = [{"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    namespaces.append({"type": "pid", "path": spec.pidns_path} if spec.pidns_path else {"type": "pid"})
    namespaces.append({"type": "network", "path": spec.netns_path} if spec.netns_path else {"type": "network"})
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": user.additional_gids} if user.additional_gids else {})},
        "args": args,
        "env": env,
        "cwd": spec.cwd or "/",
        # Docker's model: bounding = effective = permitted; no inheritable or ambient capabilities.
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": _rlimits(spec.rlimits, warnings),
        # no_new_privileges stays off so setuid binaries work, as on Fargate.
        "noNewPrivileges": False,
    }
    linux: dict[str, Any] = {
        "resources": _resources(spec),
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "seccomp": default_seccomp_profile(set(caps)),
    }
    if spec.cgroups_path:
        linux["cgroupsPath"] = spec.cgroups_path
    if spec.sysctls:
        linux["sysctl"] = dict(spec.sysctls)
    oci: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": "rootfs", "readonly": spec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    }
    if spec.hostname:
        oci["hostname"] = spec.hostname
    return BuiltSpec(oci, warnings)


def container_args(image: ImageConfig, entry_point: list[str] | None, command: list[str] | None) -> list[str]:
    """Docker's rule: entryPoint replaces the image ENTRYPOINT (and drops its CMD), command replaces CMD."""
    entry = entry_point if entry_point is not None else (image.entrypoint or [])
    cmd = command if command is not None else ([] if entry_point is not None else (image.cmd or []))
    return [*entry, *cmd]


def container_env(image: ImageConfig, overrides: dict[str, str]) -> list[str]:
    """The image's environment with the task definition's variables set over it (order kept)."""
    merged: dict[str, str] = {}
    for item in image.env:
        key, _, value = item.partition("=")
        merged[key] = value
    merged.update(overrides)
    return [f"{key}={value}" for key, value in merged.items()]
