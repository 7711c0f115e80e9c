"""`fargo image import` and `fargo image ls`."""
from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from datetime import datetime, timezone
from typing import BinaryIO

from fargo.cli.http import request, table


class _ProgressReader:
    """Streams the tarball to Fargo and shows how far the upload has got."""

    def __init__(self, f: BinaryIO, total: int) -> None:
        self.f, self.total, self.sent, self.last = f, total, 0, 0.0

    def read(self, size: int = -1) -> bytes:
        chunk = self.f.read(1 << 20 if size < 0 else size)
        self.sent += len(chunk)
        now = time.monotonic()
        if sys.stderr.isatty() and (now - self.last > 0.2 or not chunk):
            self.last = now
            pct = 100 * self.sent // max(self.total, 1)
            print(f"\rimporting: {self.sent / 1e6:.1f} / {self.total / 1e6:.1f} MB ({pct}%)", end="", file=sys.stderr)
            if not chunk:
                print(file=sys.stderr)
        return chunk

    def __len__(self) -> int:
        return self.total


def image_import(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.tar):
        print(f"fargo: no such file: {args.tar}", file=sys.stderr)
        return 1
    query = "?" + urllib.parse.urlencode({"name": args.name}) if args.name else ""
    size = os.path.getsize(args.tar)
    with open(args.tar, "rb") as f:
        result = request(args, "POST", "/_fargo/images" + query, body=_ProgressReader(f, size),  # type: ignore[arg-type]
                         headers={"Content-Type": "application/x-tar", "Content-Length": str(size)})
    for image in result["images"]:
        print(f"imported {image['name']} ({image['digest']})")
    return 0


def image_ls(args: argparse.Namespace) -> int:
    images = request(args, "GET", "/_fargo/images")["images"]
    rows = [[i["name"], i["digest"].removeprefix("sha256:")[:12], _size(i.get("size", 0)), _when(i.get("createdAt"))]
            for i in images]
    print(table(["REFERENCE", "DIGEST", "SIZE", "CREATED"], rows))
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
