"""Errors of the container runtime layer: what callers above `fargo.runtime` may catch.

No gRPC or protobuf type escapes this package; every failed containerd call becomes one of these.
"""
from __future__ import annotations

import builtins


class ContainerRuntimeError(builtins.RuntimeError):
    """Base class: something containerd (or the host runtime around it) could not do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContainerdUnavailable(ContainerRuntimeError):
    """containerd did not answer (not started, crashed, or the socket is wrong)."""


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
