"""Fargo's tests drive the real host: containerd, runc, network namespaces, cgroups. They need root and the
Debian packages `make install` brings; without them the run stops at once and says why, rather than skipping.
"""
from __future__ import annotations

import os
import shutil

import pytest

REQUIRED_COMMANDS = ("containerd", "runc", "ctr", "ip", "tini-static")


def pytest_configure(config: pytest.Config) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("the tests must run as root (namespaces, cgroups, containerd): use `make test` as root")
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if missing:
        problems.append(f"missing commands {', '.join(missing)}: run `make install` first")
    if problems:
        raise pytest.UsageError("; ".join(problems))
