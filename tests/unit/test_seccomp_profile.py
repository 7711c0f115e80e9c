"""The seccomp profile's architectures: x32 is named only where the kernel serves x32 syscalls."""
from __future__ import annotations

import pytest

from fargo.runtime import seccomp_profile
from fargo.runtime.seccomp_profile import architectures, default_seccomp_profile

X86_64, X86, X32 = "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"


def test_x32_is_named_only_when_the_kernel_serves_it() -> None:
    assert architectures("x86_64", x32=True) == [X86_64, X86, X32]
    assert architectures("x86_64", x32=False) == [X86_64, X86]  # 32-bit x86 programs keep their filter
    assert architectures("aarch64", x32=False) == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]


@pytest.mark.parametrize("served", [True, False])
def test_the_host_profile_follows_the_kernel(monkeypatch: pytest.MonkeyPatch, served: bool) -> None:
    monkeypatch.setattr(seccomp_profile, "kernel_serves_x32", lambda: served)
    monkeypatch.setattr(seccomp_profile.platform, "machine", lambda: "x86_64")
    profile = default_seccomp_profile({"CAP_CHOWN"})
    assert (X32 in profile["architectures"]) is served and X86 in profile["architectures"]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"


def test_a_profile_for_a_named_machine_keeps_moby_s_list() -> None:
    assert default_seccomp_profile(set(), machine="x86_64")["architectures"] == [X86_64, X86, X32]


def test_the_probe_answers_once() -> None:
    first = seccomp_profile.kernel_serves_x32()
    assert isinstance(first, bool) and seccomp_profile.kernel_serves_x32() is first
