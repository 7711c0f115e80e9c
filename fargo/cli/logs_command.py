"""`fargo logs TASK_ID`: what the task's containers wrote, optionally following until the task stops."""
from __future__ import annotations

import argparse
import sys
import time
import urllib.parse

from fargo.cli.http import request


def logs(args: argparse.Namespace) -> int:
    offsets: dict[str, int] = {}
    several = args.container is None
    while True:
        query = {"cluster": args.cluster, **{f"offset.{k}": str(v) for k, v in offsets.items()}}
        if args.container:
            query["container"] = args.container
        result = request(args, "GET",
                         f"/_fargo/tasks/{urllib.parse.quote(args.task_id)}/logs?{urllib.parse.urlencode(query)}")
        for c in result["containers"]:
            text = c["output"]
            offsets[c["name"]] = c["offset"]
            if not text:
                continue
            if several and len(result["containers"]) > 1:
                text = "".join(f"{c['name']} | {line}\n" for line in text.splitlines())
            sys.stdout.write(text)
        sys.stdout.flush()
        if not args.follow or result.get("lastStatus") == "STOPPED":
            return 0
        time.sleep(0.5)
