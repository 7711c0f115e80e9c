"""`fargo up`: run Fargo in the foreground until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from fargo import process_memory
from fargo.config import Config


def run_up(args: argparse.Namespace) -> int:
    if args.no_agent and not (args.database or "").startswith("postgresql"):
        print("fargo up --no-agent: needs --database postgresql://..., the database of a replica that runs the "
              "agent", file=sys.stderr)
        return 2
    process_memory.limit_arenas()  # before any thread exists
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = Config(data_dir=Path(args.data_dir), listen=args.listen, database=args.database,
                    containerd_address=args.containerd_address, latest_platform=args.latest_platform,
                    account_id=args.account_id, region=args.region, dns_upstreams=tuple(args.dns_upstream),
                    network_prefix=args.network_prefix, run_agent=not args.no_agent,
                    efs_root=Path(args.efs_root).resolve() if args.efs_root else None,
                    insecure_registries=tuple(args.insecure_registry) + _env_list("FARGO_INSECURE_REGISTRIES"))
    return asyncio.run(_serve(config))


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


async def _serve(config: Config) -> int:
    from fargo.service import Fargo

    fargo = Fargo(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fargo.start()
        print(f"Fargo is up. Talk to it with:\n  export AWS_ENDPOINT_URL=http://{config.listen}\n"
              f"  aws ecs list-clusters --region {config.region}", flush=True)
        await stop.wait()
        logging.getLogger("fargo").info("stopping (tasks keep running in containerd)")
    finally:
        await fargo.stop()
    return 0
