"""How CLI commands reach the running Fargo: plain HTTP to its `/_fargo/` routes."""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any, BinaryIO

from fargo.config import find_endpoint


class FargoUnreachable(SystemExit):
    pass


def request(args: Any, method: str, path: str, body: bytes | BinaryIO | None = None,
            headers: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """One call to the Fargo that `args` (--endpoint / --data-dir) points at; exits with a message on failure."""
    base = find_endpoint(args.endpoint, args.data_dir).rstrip("/")
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("message", str(e))
        except (ValueError, AttributeError):
            message = str(e)
        print(f"fargo: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except (urllib.error.URLError, ConnectionError) as e:
        print(f"fargo: cannot reach Fargo at {base} ({getattr(e, 'reason', e)}); is `fargo up` running?",
              file=sys.stderr)
        raise FargoUnreachable(1) from None


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
