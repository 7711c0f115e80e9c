"""API throughput: DescribeTaskDefinition and ListClusters against a throw-away `fargo up`, from 16 threads.

Two clients (boto3, one client per thread; raw http.client keep-alive POSTs with the JSON 1.1 headers), each
also run against a bare aiohttp "hello" JSON endpoint in its own process, so the ratios show Fargo's overhead.
Usage (root, repo root): .venv/bin/python bench/api.py [--seconds 5] [--threads 16]
"""
from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fargo_process import REGION, BenchFargo, dumps, free_port, percentile, print_table  # noqa: E402

FAMILY = "bench-api"
ECS_PREFIX = "AmazonEC2ContainerServiceV20141113"

# The baseline: the same aiohttp stack Fargo serves on, doing nothing but answering `{}` as JSON 1.1.
HELLO_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    await request.read()
    return web.Response(body=b'{}', content_type='application/x-amz-json-1.1')
async def health(request):
    return web.Response(text='ok')
app = web.Application()
app.router.add_post('/', hello)
app.router.add_get('/_fargo/health', health)
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), access_log=None, print=None)
"""

# One call: returns nothing, raises on a failed request. Built once per thread.
CallFactory = Callable[[], Callable[[], None]]


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000


def run_load(name: str, make_call: CallFactory, threads: int, seconds: float) -> Result:
    """`threads` workers, each with its own client, calling as fast as they can for `seconds`."""
    calls = [make_call() for _ in range(threads)]  # client set-up is not timed
    for call in calls:
        call()  # warm: connection open, botocore's lazy loading done
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start_gate = threading.Barrier(threads + 1)
    stop_at = 0.0

    def worker(i: int) -> None:
        call, mine = calls[i], latencies[i]
        start_gate.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                call()
            except Exception:  # noqa: BLE001 - counted, and the run goes on
                errors[i] += 1
                continue
            mine.append(time.perf_counter() - t0)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    began = time.perf_counter()
    stop_at = began + seconds
    start_gate.wait()
    for w in workers:
        w.join(seconds + 30)
    elapsed = time.perf_counter() - began
    flat = [x for per in latencies for x in per]
    return Result(name, len(flat), sum(errors), elapsed, flat)


def boto3_call(endpoint: str, operation: str, params: dict) -> CallFactory:
    def factory() -> Callable[[], None]:
        import boto3

        client = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION,
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        method = getattr(client, operation)
        return lambda: method(**params) and None
    return factory


def raw_call(port: int, target: str, params: dict) -> CallFactory:
    body = dumps(params)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_PREFIX}.{target}",
               "Content-Length": str(len(body))}

    def factory() -> Callable[[], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call() -> None:
            conn.request("POST", "/", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
        return call
    return factory


def start_hello_server() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", HELLO_SERVER, str(port)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fargo/health", timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the hello server did not start")


def register_task_definition(fargo: BenchFargo) -> None:
    ecs = fargo.client()
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(
        family=FAMILY, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "fargo.local/busybox:latest", "essential": True,
                               "command": ["sleep", "3600"]}])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement (%(default)s)")
    parser.add_argument("--threads", type=int, default=16, help="concurrent clients (%(default)s)")
    args = parser.parse_args()

    hello, hello_port = start_hello_server()
    try:
        with BenchFargo() as fargo:
            register_task_definition(fargo)
            describe = ("describe_task_definition", "DescribeTaskDefinition", {"taskDefinition": FAMILY})
            list_clusters = ("list_clusters", "ListClusters", {})
            hello_url = f"http://127.0.0.1:{hello_port}"
            print(f"API throughput: {args.threads} threads, {args.seconds:.0f} s per row; "
                  f"Fargo pid {fargo.pid()} on {fargo.endpoint}, hello (bare aiohttp) on {hello_url}")
            plan: list[tuple[str, CallFactory]] = [
                ("boto3  DescribeTaskDefinition", boto3_call(fargo.endpoint, describe[0], describe[2])),
                ("boto3  ListClusters", boto3_call(fargo.endpoint, list_clusters[0], list_clusters[2])),
                ("boto3  hello (baseline)", boto3_call(hello_url, list_clusters[0], list_clusters[2])),
                ("raw    DescribeTaskDefinition", raw_call(fargo.port, describe[1], describe[2])),
                ("raw    ListClusters", raw_call(fargo.port, list_clusters[1], list_clusters[2])),
                ("raw    hello (baseline)", raw_call(hello_port, list_clusters[1], list_clusters[2])),
            ]
            results = [run_load(name, factory, args.threads, args.seconds) for name, factory in plan]
    finally:
        hello.terminate()
        try:
            hello.wait(10)
        except subprocess.TimeoutExpired:
            hello.kill()
            hello.wait()

    print()
    print_table(["client / operation", "requests", "errors", "req/s", "p50 ms", "p99 ms"],
                [(r.name, r.requests, r.errors, r.rate, r.ms(50), r.ms(99)) for r in results])
    print()
    rows = []
    for client, group in (("boto3", results[:3]), ("raw", results[3:])):
        baseline = group[2]
        for r in group[:2]:
            rows.append((r.name, r.rate / baseline.rate, r.ms(50) / baseline.ms(50), r.ms(99) / baseline.ms(99)))
    print("Ratios against the bare aiohttp baseline with the same client (req/s: higher is better, "
          "latency: lower is better)")
    print_table(["client / operation", "req/s ratio", "p50 ratio", "p99 ratio"], rows)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
