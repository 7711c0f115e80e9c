"""An image index narrowed to one platform as containerd 1.6 does it."""
from __future__ import annotations

import pytest

from fargo.runtime.platforms import Platform, choose_manifest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _index(*platforms: dict | None) -> dict:
    entries = []
    for i, platform in enumerate(platforms):
        entry = {"mediaType": OCI_MANIFEST, "digest": f"sha256:{i}", "size": 1}
        if platform is not None:
            entry["platform"] = platform
        entries.append(entry)
    return {"manifests": entries}


def _pick(index: dict, wanted: str) -> str | None:
    chosen = choose_manifest(index, Platform.parse(wanted))
    return chosen["digest"] if chosen else None


def test_the_exact_platform_wins() -> None:
    index = _index({"os": "linux", "architecture": "arm64", "variant": "v8"}, {"os": "linux", "architecture": "amd64"})
    assert _pick(index, "linux/amd64") == "sha256:1"
    assert _pick(index, "linux/arm64") == "sha256:0"


def test_amd64_falls_back_to_386_and_arm64_to_32_bit_arm() -> None:
    assert _pick(_index({"os": "linux", "architecture": "386"}), "linux/amd64") == "sha256:0"
    assert _pick(_index({"os": "linux", "architecture": "arm", "variant": "v7"}), "linux/arm64") == "sha256:0"
    both = _index({"os": "linux", "architecture": "arm", "variant": "v7"}, {"os": "linux", "architecture": "arm64"})
    assert _pick(both, "linux/arm64") == "sha256:1"


def test_no_match_and_attestations() -> None:
    index = _index({"os": "linux", "architecture": "arm64"}, {"os": "unknown", "architecture": "unknown"})
    assert _pick(index, "linux/amd64") is None
    assert _pick(_index({"os": "windows", "architecture": "amd64"}), "linux/amd64") is None


def test_an_entry_without_platform_matches_but_ranks_last() -> None:
    assert _pick(_index(None), "linux/amd64") == "sha256:0"
    assert _pick(_index(None, {"os": "linux", "architecture": "amd64"}), "linux/amd64") == "sha256:1"


@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", Platform("linux", "amd64")), ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64")), ("linux/aarch64", Platform("linux", "arm64")),
    ("arm64", Platform("linux", "arm64")), ("linux/arm", Platform("linux", "arm", "v7")),
])
def test_platform_parsing_normalises_aliases(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


def test_bad_platforms_are_refused() -> None:
    for text in ("", "linux/", "a/b/c/d"):
        with pytest.raises(ValueError):
            Platform.parse(text)
