"""Image references normalised the way docker does: `busybox` -> `docker.io/library/busybox:latest`.

containerd stores full names only; every name Fargo stores or looks up passes through `normalize_ref`.
"""
from __future__ import annotations

import re

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAINS = {"index.docker.io", "registry-1.docker.io"}
# A reference: name components separated by "/", an optional ":tag", an optional "@digest".
_REF = re.compile(
    r"^(?P<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?"
    r"(?:/[a-zA-Z0-9-._]+(?::[0-9]+)?)*?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


class InvalidReference(ValueError):
    """The string is not a valid image reference."""


def normalize_ref(ref: str) -> str:
    """Return the fully qualified reference; a missing tag (and digest) becomes `:latest`."""
    match = _REF.match(ref.strip())
    if not match or not ref.strip():
        raise InvalidReference(f"invalid reference format: {ref!r}")
    name, tag, digest = match.group("name"), match.group("tag"), match.group("digest")
    first, _, rest = name.partition("/")
    # The first component is a registry only if it looks like a host: has a dot or port, or is localhost.
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if path != path.lower():
        raise InvalidReference(f"invalid reference format: repository name must be lowercase: {ref!r}")
    out = f"{domain}/{path}"
    if tag:
        out += f":{tag}"
    if digest:
        out += f"@{digest}"
    elif not tag:
        out += ":latest"
    return out
