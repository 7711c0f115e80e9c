"""`fargo spot interrupt`: interrupt FARGATE_SPOT tasks as AWS reclaims Spot capacity, and show which."""
from __future__ import annotations

import argparse
import json

from fargo.cli.http import request, table


def interrupt(args: argparse.Namespace) -> int:
    body = {"cluster": args.cluster, "service": args.service, "count": args.count, "fraction": args.fraction}
    out = request(args, "POST", "/_fargo/spot/interrupt", body=json.dumps(body).encode(),
                  headers={"Content-Type": "application/json"})
    stopped = out["interrupted"]
    if not stopped:
        print("No running FARGATE_SPOT task to interrupt.")
        return 0
    rows = [[t["taskArn"].rsplit("/", 1)[-1], t["taskDefinitionArn"].rsplit("/", 1)[-1], t.get("group", ""),
             t.get("availabilityZone", ""), t["lastStatus"], t.get("stopCode", ""), t.get("stoppedReason", "")]
            for t in stopped]
    print(table(["TASK", "DEFINITION", "GROUP", "AZ", "STATUS", "STOP CODE", "REASON"], rows))
    return 0
