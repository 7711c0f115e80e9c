"""Errors of the container runtime layer: what callers above `fargo.runtime` may catch, and `scrub_host_paths`,
the one function that keeps host paths out of their messages.

No gRPC or protobuf type escapes this package; every failed containerd call becomes one of these.
"""
from __future__ import annotations

import builtins
import re

# A path component stops at whitespace, quotes, brackets and the separators containerd and runc put around paths
# (":" between overlay lowerdirs, "=" in mount options, "," in option lists).
_COMPONENT = r"[^\s\"'`:,;=|()\[\]{}<>/]"
# An absolute path of two or more components, not inside a URL or an image reference (docker.io/library/x,
# http://host/a: the slash follows a name character or "://").
_HOST_PATH = re.compile(rf"(?<![\w.~%+-])(?<!:/)/(?:{_COMPONENT}+/)+{_COMPONENT}*")


# Where host files live: Fargo's data dirs (registered as they are opened) and the host's own trees. A path
# elsewhere ("/no/such/binary", "/app/run.sh") is the container's and stays, as Fargate shows it.
_HOST_ROOTS: list[str] = ["/run/", "/sys/", "/proc/", "/tmp/", "/var/lib/", "/var/run/", "/root/", "/home/",
                          "/etc/containerd/"]


def register_host_root(path: object) -> None:
    """A directory of this host (a data dir) whose paths must never reach a user."""
    root = str(path).rstrip("/") + "/"
    if root not in _HOST_ROOTS:
        _HOST_ROOTS.append(root)


def scrub_host_paths(text: str) -> str:
    """`text` with every absolute host path of two or more components cut to its last component.

    containerd and runc name host files (bundle, snapshot, state and log directories) in their errors, and those
    messages end up in a task's stoppedReason. Paths inside the container are left as they are; one-component
    paths ("/proc") too.
    """
    return _HOST_PATH.sub(_last_component_of_host_path, text)


def _last_component_of_host_path(match: re.Match[str]) -> str:
    path = match.group(0)
    if not any(path.startswith(root) for root in _HOST_ROOTS) and "/containerd/" not in path:
        return path  # the container's own path: kept (containerd's trees are the host's wherever they are)
    return path.rstrip("/").rpartition("/")[2]


class ContainerRuntimeError(builtins.RuntimeError):
    """Base class: something containerd (or the host runtime around it) could not do.

    The message never names a host path: it is scrubbed here, once, for every error of this package.
    """

    def __init__(self, message: str) -> None:
        message = scrub_host_paths(message)
        super().__init__(message)
        self.message = message


class ContainerdUnavailable(ContainerRuntimeError):
    """containerd did not answer (not started, crashed, the socket is wrong, or its Version probe timed out)."""


class RuntimeTimeout(ContainerRuntimeError):
    """A containerd call ran past its deadline: containerd is up but did not finish in time.

    Not a ContainerdUnavailable: the call may still have had its effect (a task created, a snapshot removed), so
    it must not be retried blindly. `call` is the method ("Tasks/Create"), `seconds` the deadline it had.
    """

    def __init__(self, message: str, call: str, seconds: float | None) -> None:
        super().__init__(message)
        self.call = call
        self.seconds = seconds


class ImageNotFound(ContainerRuntimeError):
    """No image with that reference in the namespace."""


class ImageImportFailed(ContainerRuntimeError):
    """A tarball is not a readable OCI image layout or docker archive, or unpacking it failed."""


class ContainerNotFound(ContainerRuntimeError):
    """No container (or task) with that id in the namespace."""


class ContainerAlreadyExists(ContainerRuntimeError):
    """A container with that id exists already."""


class InitBinaryMissing(ContainerRuntimeError):
    """initProcessEnabled was asked for but the host has no static init (install Debian's `tini`)."""


class UnknownUser(ContainerRuntimeError):
    """A user or group name is not in the image's /etc/passwd or /etc/group."""


class ExecTimedOut(ContainerRuntimeError):
    """An exec'd process ran past its timeout; it was SIGKILLed and deleted."""


class RuntimeCallFailed(ContainerRuntimeError):
    """Any other failed containerd call; `code` is the gRPC status name (e.g. "FAILED_PRECONDITION")."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code
