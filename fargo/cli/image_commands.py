"""`fargo image import`, `pull`, `ls`, `rm` and `prune`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any, BinaryIO

from fargo.cli.http import request, table
from fargo.config import find_endpoint

BAR_WIDTH = 30


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


def image_pull(args: argparse.Namespace) -> int:
    """Pull through the running Fargo, drawing its NDJSON progress (a bar on a terminal, lines otherwise)."""
    body: dict[str, Any] = {"ref": args.ref, "platform": args.platform}
    if args.username:
        if not args.password_stdin:
            print("fargo: --username needs --password-stdin", file=sys.stderr)
            return 2
        body.update(username=args.username, password=sys.stdin.readline().rstrip("\r\n"))
    base = find_endpoint(args.endpoint, args.data_dir).rstrip("/")
    req = urllib.request.Request(base + "/_fargo/images/pull", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    draw = _ProgressBar(args.ref, sys.stderr)
    try:
        with urllib.request.urlopen(req, timeout=3600) as resp:
            for raw in resp:
                line = json.loads(raw)
                if "progress" in line:
                    draw.update(line["progress"])
                elif "error" in line:
                    draw.end()
                    print(f"fargo: {line['error']}", file=sys.stderr)
                    return 1
                elif "image" in line:
                    draw.end()
                    image = line["image"]
                    print(f"pulled {image['name']} ({image['digest']}, {image['platform']}, "
                          f"{_size(image['size'])}, {_size(image['fetched'])} fetched)")
                    return 0
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("message", str(e))
        except (ValueError, AttributeError):
            message = str(e)
        print(f"fargo: {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError) as e:
        print(f"fargo: cannot reach Fargo at {base} ({getattr(e, 'reason', e)}); is `fargo up` running?",
              file=sys.stderr)
        return 1
    print("fargo: the pull ended without a result", file=sys.stderr)
    return 1


class _ProgressBar:
    def __init__(self, ref: str, out: Any) -> None:
        self.ref, self.out, self.tty = ref, out, out.isatty()
        self.drawn, self.last_plain = False, 0.0

    def update(self, p: dict[str, Any]) -> None:
        total, done = int(p.get("total") or 0), int(p.get("downloaded", 0)) + int(p.get("cached", 0))
        layers = f"{p.get('layersUnpacked', 0)}/{p.get('layers', 0)} layers"
        amount = f"{_size(done)} / {_size(total)}" if total else ""
        if self.tty:
            filled = BAR_WIDTH * done // total if total else 0
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            print(f"\r{self.ref}: [{bar}] {amount}  {layers}\033[K", end="", file=self.out, flush=True)
            self.drawn = True
        elif time.monotonic() - self.last_plain >= 1.0:  # plain lines, at most one a second
            self.last_plain = time.monotonic()
            print(f"{self.ref}: {p.get('status', '')} {amount} {layers}", file=self.out, flush=True)

    def end(self) -> None:
        if self.drawn:
            print(file=self.out)
            self.drawn = False


def image_rm(args: argparse.Namespace) -> int:
    query = urllib.parse.urlencode([("ref", ref) for ref in args.refs])
    result = request(args, "DELETE", "/_fargo/images?" + query)
    for name in result["removed"]:
        print(f"removed {name}")
    for error in result["errors"]:
        print(f"fargo: {error}", file=sys.stderr)
    return 1 if result["errors"] else 0


def image_prune(args: argparse.Namespace) -> int:
    result = request(args, "POST", "/_fargo/images/prune", body=b"")
    for name in result["removed"]:
        print(f"removed {name}")
    print(f"{len(result['removed'])} image(s) removed, {_size(result['freedBytes'])} freed")
    return 0
