"""The project's own test image: Debian's static busybox with every applet, as an OCI or docker-archive tarball.

Nothing is pulled from a registry; the output is byte-for-byte deterministic for a given busybox binary.
Usage: python -m fargo.runtime.test_image OUT.tar [--name REF] [--format oci|docker]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import platform
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "fargo.local/busybox:latest"
BUSYBOX = Path("/bin/busybox")
# Fixed timestamp for every tar entry and the config's "created" (2024-01-01T00:00:00Z).
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APP_UID = 1000
# A setuid-root helper that exits with its effective uid: exit 0 when run as uid 1000 proves setuid works
# (no_new_privileges is off). Busybox itself drops setuid for most applets, so it cannot show this.
EUID_HELPER = "usr/bin/euid-exit"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"app:x:{APP_UID}:{APP_UID}:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = f"root:x:0:\napp:x:{APP_UID}:\nstaff:x:50:app\nnogroup:x:65534:\n"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _euid_exit_elf() -> bytes:
    """A 136-byte static x86-64 ELF: geteuid(); exit(euid)."""
    code = bytes.fromhex("b86b000000" "0f05" "89c7" "b83c000000" "0f05")
    base, header_size = 0x400000, 64 + 56
    size = header_size + len(code)
    elf_header = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, base + header_size, 64, 0, 0, 64, 56, 1, 0, 0, 0
    )
    program_header = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return elf_header + program_header + code


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _applet_paths(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()} - {"bin/busybox"})


def _entry(name: str, kind: bytes, mode: int, uid: int = 0, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.size = kind, mode, uid, uid, size
    info.mtime, info.linkname, info.uname, info.gname = EPOCH, link, "", ""
    return info


def build_layer_tar(busybox: Path = BUSYBOX) -> bytes:
    """The uncompressed root filesystem tar (one layer)."""
    applets = _applet_paths(busybox)
    dirs = {"bin", "dev", "etc", "home", "proc", "run", "sys", "usr", "usr/bin", "usr/sbin", "sbin", "var", "root", "tmp", "var/tmp"}
    for path in applets:
        parent = path.rpartition("/")[0]
        while parent:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    files: dict[str, tuple[int, int, bytes]] = {
        "bin/busybox": (0o755, 0, busybox.read_bytes()),
        "etc/passwd": (0o644, 0, PASSWD.encode()),
        "etc/group": (0o644, 0, GROUP.encode()),
    }
    if platform.machine() == "x86_64":
        files[EUID_HELPER] = (0o4755, 0, _euid_exit_elf())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(dirs):
            mode = {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700}.get(directory, 0o755)
            tar.addfile(_entry(directory + "/", tarfile.DIRTYPE, mode))
        tar.addfile(_entry("home/app/", tarfile.DIRTYPE, 0o755, uid=APP_UID))
        for name, (mode, uid, data) in sorted(files.items()):
            tar.addfile(_entry(name, tarfile.REGTYPE, mode, uid, len(data)), io.BytesIO(data))
        for path in applets:
            tar.addfile(_entry(path, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _image_config(diff_id: str, architecture: str | None = None, extra_diff_ids: tuple[str, ...] = ()) -> bytes:
    diff_ids = [diff_id, *extra_diff_ids]
    return _json({
        "architecture": architecture or _architecture(),
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "fargo.runtime.test_image"} for _ in diff_ids],
    })


@dataclass(frozen=True)
class BuiltImage:
    """What was written: the reference and the manifest digest containerd will report."""

    name: str
    manifest_digest: str


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    tar.addfile(_entry(name, tarfile.REGTYPE, mode, size=len(data)), io.BytesIO(data))


def write_oci_archive(out: Path, name: str = DEFAULT_NAME, busybox: Path = BUSYBOX) -> BuiltImage:
    """Write an OCI image-layout tarball (one gzip layer) named `name`."""
    layer = build_layer_tar(busybox)
    layer_gz = gzip.compress(layer, compresslevel=6, mtime=0)
    config = _image_config(_digest(layer))
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(layer_gz), "size": len(layer_gz)}],
    })
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"
    index = _json({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    })
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry("blobs/", tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry("blobs/sha256/", tarfile.DIRTYPE, 0o755))
        for blob in (layer_gz, config, manifest):
            _add_bytes(tar, "blobs/sha256/" + _digest(blob).removeprefix("sha256:"), blob)
        _add_bytes(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", index)
    return BuiltImage(name, _digest(manifest))


def _write_layout(out: Path, blobs: list[bytes], top: dict[str, object]) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry("blobs/", tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry("blobs/sha256/", tarfile.DIRTYPE, 0o755))
        for blob in dict.fromkeys(blobs):
            _add_bytes(tar, "blobs/sha256/" + _digest(blob).removeprefix("sha256:"), blob)
        _add_bytes(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}))


def _tag_of(name: str) -> str:
    return name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"


def write_multi_platform_archive(out: Path, name: str = DEFAULT_NAME, architectures: tuple[str, ...] = ("amd64", "arm64"),
                                 busybox: Path = BUSYBOX) -> tuple[BuiltImage, dict[str, str]]:
    """An OCI layout whose image is an index of one manifest per architecture (same busybox layer, configs that
    differ by architecture). Returns the index (as `manifest_digest`) and each architecture's manifest digest."""
    layer_gz = gzip.compress(build_layer_tar(busybox), compresslevel=6, mtime=0)
    diff_id = _digest(gzip.decompress(layer_gz))
    blobs, entries, per_arch = [layer_gz], [], {}
    for arch in architectures:
        config = _image_config(diff_id, architecture=arch)
        manifest = _json({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(layer_gz), "size": len(layer_gz)}],
        })
        blobs += [config, manifest]
        per_arch[arch] = _digest(manifest)
        entries.append({"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                        "platform": {"os": "linux", "architecture": arch}})
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    blobs.append(index)
    _write_layout(out, blobs, {"mediaType": OCI_INDEX, "digest": _digest(index), "size": len(index),
                               "annotations": {"io.containerd.image.name": name,
                                               "org.opencontainers.image.ref.name": _tag_of(name)}})
    return BuiltImage(name, _digest(index)), per_arch


def write_layered_archive(out: Path, name: str, layer_bytes: list[int], seed: int = 0, compress: bool = False,
                          with_busybox: bool = True, busybox: Path = BUSYBOX) -> BuiltImage:
    """The busybox image (or, without `with_busybox`, nothing) with extra layers, each one file of
    `layer_bytes[i]` incompressible bytes: uncompressed tar layers by default (gzip level 1 with `compress`).
    For pull tests and benchmarks."""
    import random

    rng = random.Random(seed)
    layers = [build_layer_tar(busybox)] if with_busybox else []
    for i, size in enumerate(layer_bytes):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_entry("data/", tarfile.DIRTYPE, 0o755))
            _add_bytes(tar, f"data/layer-{i}.bin", rng.randbytes(size))
        layers.append(buffer.getvalue())
    blobs_ = [gzip.compress(layer, compresslevel=1, mtime=0) if compress else layer for layer in layers]
    media_type = OCI_LAYER_GZIP if compress else OCI_LAYER
    diff_ids = [_digest(layer) for layer in layers]
    config = _image_config(diff_ids[0], extra_diff_ids=tuple(diff_ids[1:]))
    manifest = _json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": media_type, "digest": _digest(b), "size": len(b)} for b in blobs_],
    })
    _write_layout(out, [*blobs_, config, manifest], {
        "mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": _tag_of(name)}})
    return BuiltImage(name, _digest(manifest))


def write_docker_archive(out: Path, name: str = DEFAULT_NAME, busybox: Path = BUSYBOX) -> BuiltImage:
    """Write a `docker save`-style tarball (manifest.json, config json, uncompressed layer.tar)."""
    layer = build_layer_tar(busybox)
    layer_id = hashlib.sha256(layer).hexdigest()
    config = _image_config(_digest(layer))
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = _json([{"Config": config_name, "RepoTags": [name], "Layers": [f"{layer_id}/layer.tar"]}])
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(f"{layer_id}/", tarfile.DIRTYPE, 0o755))
        _add_bytes(tar, f"{layer_id}/layer.tar", layer)
        _add_bytes(tar, config_name, config)
        _add_bytes(tar, "manifest.json", manifest)
    # The manifest digest is only known once imported (the importer writes the manifest).
    return BuiltImage(name, "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--format", choices=["oci", "docker"], default="oci")
    args = parser.parse_args(argv)
    writer = write_oci_archive if args.format == "oci" else write_docker_archive
    image = writer(args.out, args.name)
    print(f"{image.name} {image.manifest_digest}".strip())


if __name__ == "__main__":
    main()
