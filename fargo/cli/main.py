"""`fargo`: start Fargo (`up`), load images, read task output, interrupt Spot tasks.

Every subcommand takes --data-dir and --endpoint."""
from __future__ import annotations

import argparse
import sys

from fargo.config import DEFAULT_ACCOUNT_ID, DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_REGION


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="where Fargo keeps its state (%(default)s)")
    p.add_argument("--endpoint", default=None,
                   help="the running Fargo (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:8400)")


def _network_prefix(text: str) -> str:
    from fargo.network.names import check_prefix

    try:
        return check_prefix(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _dns_upstream(text: str) -> str:
    """Checks `--dns-upstream` as it is parsed, so a typo stops `fargo up` with a clear message."""
    from fargo.network.vpc_resolver import parse_upstream  # lazily: other subcommands need no DNS code

    try:
        parse_upstream(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fargo", description="Run Amazon ECS tasks the way AWS Fargate does.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the control plane, an agent and containerd")
    _common(up)
    up.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT of the edge port (%(default)s)")
    up.add_argument("--database", default=None, help="SQLAlchemy URL (default sqlite:///DATA_DIR/fargo.db)")
    up.add_argument("--containerd-address", default=None, help="use this running containerd instead of our own")
    up.add_argument("--latest-platform", default="1.4.0", choices=["1.3.0", "1.4.0"],
                    help="what platformVersion LATEST means (%(default)s)")
    up.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument("--dns-upstream", action="append", default=[], type=_dns_upstream, metavar="IP[:PORT]",
                    help="resolver the VPC DNS (base + 2) forwards other names to; repeatable, tried in order "
                         "(default: the nameservers of the host's /etc/resolv.conf)")
    up.add_argument("--network-prefix", default="fg", type=_network_prefix, metavar="PREFIX",
                    help="first letters of the host objects of this Fargo (namespaces, links, nft tables); a second "
                         "Fargo on the same host needs its own (default: %(default)s)")
    up.add_argument("--efs-root", default=None, metavar="PATH",
                    help="where EFS file systems keep their files (PATH/<fs-id>); a shared filesystem mounted on "
                         "every host (NFS, CephFS, GlusterFS) lets several agents share them "
                         "(default: DATA_DIR/efs)")
    up.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                    help="a registry to pull from over plain HTTP (no TLS); repeatable; a bare HOST means any port "
                         "(also FARGO_INSECURE_REGISTRIES, comma-separated)")
    up.add_argument("--no-agent", action="store_true",
                    help="a control-plane replica only: the APIs and the service scheduler (one replica leads), "
                         "no agent and no containerd; needs --database on the PostgreSQL of a replica that runs "
                         "the agent, which runs the tasks")
    up.add_argument("--log-level", default="INFO")

    image = sub.add_parser("image", help="images in Fargo's containerd namespace")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    imp = image_sub.add_parser("import", help="import an OCI image-layout or docker-archive tarball")
    _common(imp)
    imp.add_argument("tar")
    imp.add_argument("--name", default=None, help="reference to give the image (default: the one in the tarball)")
    ls = image_sub.add_parser("ls", help="list images")
    _common(ls)
    pull = image_sub.add_parser("pull", help="pull an image from a registry into Fargo's cache")
    _common(pull)
    pull.add_argument("ref")
    pull.add_argument("--platform", default="linux/amd64", help="os/architecture to pull (%(default)s)")
    pull.add_argument("--username", default=None, help="registry user (the password is read with --password-stdin)")
    pull.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    rm = image_sub.add_parser("rm", help="remove images")
    _common(rm)
    rm.add_argument("refs", nargs="+", metavar="REF")
    prune = image_sub.add_parser("prune", help="remove every image no container uses")
    _common(prune)

    ps = sub.add_parser("tasks", help="list a cluster's tasks as a table")
    _common(ps)
    ps.add_argument("--cluster", default="default")
    ps.add_argument("--all", "-a", action="store_true", help="stopped tasks too (kept for an hour)")

    logs = sub.add_parser("logs", help="print what a task's containers wrote")
    _common(logs)
    logs.add_argument("task_id")
    logs.add_argument("--cluster", default="default")
    logs.add_argument("--container", default=None)
    logs.add_argument("--follow", "-f", action="store_true")

    spot = sub.add_parser("spot", help="Fargate Spot: interrupt FARGATE_SPOT tasks as AWS does")
    spot_sub = spot.add_subparsers(dest="spot_command", required=True)
    spot_interrupt = spot_sub.add_parser(
        "interrupt", help="stop running FARGATE_SPOT tasks with stopCode SpotInterruption (SIGTERM, then SIGKILL "
                          "after stopTimeout); a service replaces them")
    _common(spot_interrupt)
    spot_interrupt.add_argument("--cluster", default="default")
    spot_interrupt.add_argument("--service", default=None, help="only the tasks of this service")
    how_many = spot_interrupt.add_mutually_exclusive_group()
    how_many.add_argument("--count", type=int, default=None, metavar="N",
                          help="interrupt N tasks, picked at random (default: all of them)")
    how_many.add_argument("--fraction", type=float, default=None, metavar="F",
                          help="interrupt this fraction (0 < F <= 1) of them, rounded up")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        from fargo.cli.up_command import run_up
        return run_up(args)
    if args.command == "image":
        from fargo.cli import image_commands
        commands = {"import": image_commands.image_import, "ls": image_commands.image_ls,
                    "pull": image_commands.image_pull, "rm": image_commands.image_rm,
                    "prune": image_commands.image_prune}
        return commands[args.image_command](args)
    if args.command == "tasks":
        from fargo.cli.tasks_command import tasks
        return tasks(args)
    if args.command == "logs":
        from fargo.cli.logs_command import logs
        return logs(args)
    if args.command == "spot":
        from fargo.cli.spot_command import interrupt
        return interrupt(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
