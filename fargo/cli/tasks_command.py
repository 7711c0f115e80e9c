"""`fargo tasks`: the tasks of a cluster as a table (ListTasks + DescribeTasks through the ECS API)."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from fargo.cli.http import request, table

_TARGET = "AmazonEC2ContainerServiceV20141113."


def _ecs(args: argparse.Namespace, operation: str, body: dict) -> dict:
    return request(args, "POST", "/", body=json.dumps(body).encode(),
                   headers={"X-Amz-Target": _TARGET + operation, "Content-Type": "application/x-amz-json-1.1"})


def tasks(args: argparse.Namespace) -> int:
    statuses = ["RUNNING", "STOPPED"] if args.all else ["RUNNING"]
    arns: list[str] = []
    for status in statuses:
        token = None
        while True:
            page = _ecs(args, "ListTasks", {"cluster": args.cluster, "desiredStatus": status,
                                                     **({"nextToken": token} if token else {})})
            arns += page["taskArns"]
            token = page.get("nextToken")
            if not token:
                break
    rows = []
    for i in range(0, len(arns), 100):
        for t in _ecs(args, "DescribeTasks", {"cluster": args.cluster, "tasks": arns[i:i + 100]})["tasks"]:
            ip = next((n.get("privateIpv4Address", "") for c in t["containers"] for n in c.get("networkInterfaces", [])),
                      "")
            rows.append([t["taskArn"].rsplit("/", 1)[-1], t["taskDefinitionArn"].rsplit("/", 1)[-1], t["lastStatus"],
                         t.get("healthStatus", "UNKNOWN"), ip, t.get("availabilityZone", ""),
                         t.get("platformVersion", ""), _when(t.get("startedAt") or t.get("createdAt")),
                         t.get("stopCode", "")])
    print(table(["TASK", "DEFINITION", "STATUS", "HEALTH", "IP", "AZ", "PLATFORM", "STARTED", "STOP CODE"], rows))
    return 0


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"
