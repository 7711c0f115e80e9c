"""Image platforms (os/architecture/variant) and how an image index is narrowed to one, as containerd 1.6's
`platforms.Only` does: linux/amd64 also accepts linux/386, arm64 also accepts 32-bit arm, the best match first.
"""
from __future__ import annotations

import platform as _host
from dataclasses import dataclass
from typing import Any

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386",
                 "armhf": "arm", "armel": "arm"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/amd64`, `linux/arm64/v8`, `amd64` (linux implied); ValueError for anything else."""
        parts = [p for p in text.strip().lower().split("/")]
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/architecture[/variant]")
        return cls(*parts).normalized()

    @classmethod
    def of(cls, value: Platform | tuple[str, ...] | str) -> Platform:
        if isinstance(value, Platform):
            return value.normalized()
        if isinstance(value, str):
            return cls.parse(value)
        return cls(*value).normalized()

    @classmethod
    def from_descriptor(cls, entry: dict[str, Any]) -> Platform | None:
        plat = entry.get("platform")
        if not isinstance(plat, dict):
            return None
        return cls(str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant") or "")).normalized()

    def normalized(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower()
        if arch == "arm64" and variant in ("8", "v8"):
            variant = ""  # arm64 is v8 unless it says otherwise
        if arch == "arm" and variant and not variant.startswith("v"):
            variant = "v" + variant
        if arch == "arm" and not variant:
            variant = "v7"
        if arch == "amd64" and variant == "v1":
            variant = ""
        return Platform(self.os.lower(), arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def accepted(self) -> list[Platform]:
        """What an image for this platform may be, best first (containerd's platform vector)."""
        me = self.normalized()
        out = [me]
        if me.architecture == "amd64":
            out.append(Platform(me.os, "386"))
        elif me.architecture == "arm64":
            out += [Platform(me.os, "arm", f"v{n}") for n in (8, 7, 6, 5)]
        elif me.architecture == "arm" and me.variant[1:].isdigit():
            out += [Platform(me.os, "arm", f"v{n}") for n in range(int(me.variant[1:]) - 1, 4, -1)]
        return out


def host_platform() -> Platform:
    return Platform("linux", _host.machine()).normalized()


DEFAULT_PLATFORM = Platform("linux", "amd64")  # what Fargate runs unless runtimePlatform says ARM64


def choose_manifest(index: dict[str, Any], wanted: Platform | None = None) -> dict[str, Any] | None:
    """The index entry that best matches `wanted` (default: this host), or None.

    Entries without a platform match anything but rank last, as in containerd; attestation manifests
    (platform unknown/unknown) never match.
    """
    wanted = (wanted or host_platform()).normalized()
    ranks = {p: i for i, p in enumerate(wanted.accepted())}
    best: tuple[int, dict[str, Any]] | None = None
    for entry in index.get("manifests", []) or []:
        if not isinstance(entry, dict) or entry.get("mediaType") not in MANIFEST_TYPES | INDEX_TYPES:
            continue
        plat = Platform.from_descriptor(entry)
        rank = len(ranks) if plat is None else ranks.get(plat)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, entry)
    return best[1] if best else None
