"""Registry pull speed: Fargo's puller against `ctr images pull --plain-http` of the same image, on one private
containerd, from a local Debian docker-registry started here. Each round starts cold (the image deleted and the
content and snapshots garbage-collected), and the two pullers alternate who goes first.
Usage (root, repo root): .venv/bin/python bench/pull.py [--rounds 5] [--layers 5] [--layer-mb 20] [--gzip]
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fargo_process import percentile, print_table  # noqa: E402

from fargo.runtime.client import Containerd  # noqa: E402
from fargo.runtime.containerd_daemon import ensure_containerd, stop_containerd  # noqa: E402
from fargo.runtime.test_image import write_layered_archive  # noqa: E402
from tests.integration.docker_registry import LocalRegistry  # noqa: E402

NAMESPACE = "bench-pull"
RATIO_TARGET = 1.0  # Fargo's pull / ctr's


class PullBench:
    def __init__(self, client: Containerd, address: str, ref: str) -> None:
        self.client, self.address, self.ref = client, address, ref

    def ctr(self, *args: str) -> str:
        return subprocess.run(["ctr", "-a", self.address.removeprefix("unix://"), "-n", NAMESPACE, *args],
                              check=True, capture_output=True, text=True).stdout

    async def cold(self) -> None:
        """No image, no content, no snapshots: the next pull fetches and unpacks everything."""
        for image in await self.client.list_images():
            await self.client.delete_image(image.name, sync=True)
        leftovers = [line for line in self.ctr("content", "ls", "-q").splitlines() if line]
        if leftovers:
            self.ctr("content", "rm", *leftovers)
        assert not self.ctr("content", "ls", "-q").strip(), "content left after GC"
        assert not (await self.client.list_snapshots()), "snapshots left after GC"

    async def fargo(self) -> float:
        began = time.perf_counter()
        pulled = await self.client.pull_image(self.ref)
        elapsed = time.perf_counter() - began
        assert pulled.fetched == pulled.size
        return elapsed

    async def ctr_pull(self) -> float:
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "ctr", "-a", self.address.removeprefix("unix://"), "-n", NAMESPACE, "images", "pull", "--plain-http",
            self.ref, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await process.communicate()
        elapsed = time.perf_counter() - began
        if process.returncode != 0:
            raise RuntimeError(f"ctr pull failed: {err.decode()[-500:]}")
        return elapsed


async def run(args: argparse.Namespace, work: Path) -> int:
    archive = work / "big.tar"
    write_layered_archive(archive, "fargo.local/big:1", [args.layer_mb << 20] * args.layers, seed=1,
                          compress=args.gzip, with_busybox=False)
    size_mb = archive.stat().st_size / 1e6
    with LocalRegistry(work / "registry") as registry:
        registry.push(archive, "bench/big:1")
        ref = f"{registry.address}/bench/big:1"
        address = ensure_containerd(work / "ctrd", None)
        client = await Containerd.connect(address, NAMESPACE)
        try:
            bench = PullBench(client, address, ref)
            fargo_times: list[float] = []
            ctr_times: list[float] = []
            for round_ in range(args.rounds):
                order = [("fargo", bench.fargo, fargo_times), ("ctr", bench.ctr_pull, ctr_times)]
                for _name, pull, times in order if round_ % 2 == 0 else order[::-1]:
                    await bench.cold()
                    times.append(await pull())
            await bench.cold()
        finally:
            await client.close()
            stop_containerd(work / "ctrd")
    fargo_p50, ctr_p50 = percentile(fargo_times, 50), percentile(ctr_times, 50)
    print(f"image: {args.layers} layers, {size_mb:.0f} MB ({'gzip -1' if args.gzip else 'uncompressed tar'}), "
          f"{args.rounds} cold rounds each")
    print_table(["puller", "p50 s", "min s", "max s", "MB/s (p50)"], [
        ["fargo ImagePuller", f"{fargo_p50:.3f}", f"{min(fargo_times):.3f}", f"{max(fargo_times):.3f}",
         f"{size_mb / fargo_p50:.0f}"],
        ["ctr images pull --plain-http", f"{ctr_p50:.3f}", f"{min(ctr_times):.3f}", f"{max(ctr_times):.3f}",
         f"{size_mb / ctr_p50:.0f}"],
    ])
    ratio = fargo_p50 / ctr_p50
    print(f"ratio fargo/ctr (p50): {ratio:.2f}  (target <= {RATIO_TARGET})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=20)
    parser.add_argument("--gzip", action="store_true", help="gzip level 1 layers instead of plain tar")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fargo-bench-pull-"))
    try:
        return asyncio.run(run(args, work))
    finally:
        subprocess.run(["umount", "-R", "-l", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
