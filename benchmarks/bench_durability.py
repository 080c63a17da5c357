"""The cost of durability: load time with 2 replicas against 1, and how fast a lost node's
chunks come back (copied from a surviving replica, or rebuilt from the file) against the
rate at which the load itself parsed them.

Runs a 3-node embedded cluster (one thread a node) on one SoR file (the commits of a
synthetic Linus extract, generated once into --data-root). Background repair is held off
so that each restore is timed alone: a node's worker is killed with SIGKILL, its nanny
starts a new one, and after WARM_UP seconds (the new worker's start-up) `kv.repair()`
restores what it held; a rebuild on the new worker also loads its compiled kernel (about
0.3 s) first.

    python benchmarks/bench_durability.py [--scale 0.05] [--runs 3] [--blocksize 16MiB]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from pathlib import Path

import dask

import eau2_dask
from eau2.examples.generate import generate_linus

WARM_UP = 3.0
"""Seconds a restarted worker is given to start before a repair."""


def timed(fn) -> tuple[float, object]:
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def load_times(client, kv, path: str, blocksize: str, replicas: int, runs: int) -> tuple[float, int]:
    """Median seconds of `runs` loads with `replicas`, and the frame's bytes."""
    times = []
    for _ in range(runs):
        seconds, frame = timed(
            lambda: eau2_dask.read_sor(path, client=client, blocksize=blocksize, replicas=replicas)
        )
        times.append(seconds)
        nbytes = frame.meta.nbytes
        kv.delete(frame.key)
    return statistics.median(times), nbytes


def kill_node(client, kv, node: int) -> None:
    """SIGKILL node `node`'s worker and wait until the scheduler has a worker for it again."""
    address = kv.transport.directory(fresh=True)[node]
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while kv.transport.directory(fresh=True)[node] in (address, None):
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node} did not come back")
        time.sleep(0.1)


def restore_rate(client, kv, path: str, blocksize: str, replicas: int) -> tuple[float, object]:
    frame = eau2_dask.read_sor(path, client=client, blocksize=blocksize, replicas=replicas)
    kill_node(client, kv, 1)
    time.sleep(WARM_UP)
    seconds, report = timed(kv.repair)
    restored = eau2_dask.connect(client).get(frame.key)
    assert restored.nrows == frame.nrows and not report.lost
    kv.delete(frame.key)
    return report.bytes / seconds / 1e6, report


def linus_extract(description: str) -> tuple[argparse.Namespace, str]:
    """The command line's options (--scale, --runs, --blocksize, --data-root) and the path
    of the commits file of a synthetic Linus extract, generated once at that scale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blocksize", default="16MiB")
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/eau2-bench"))
    args = parser.parse_args()
    folder = args.data_root / f"linus-{args.scale:g}"
    if not (folder / "commits.ltgt").exists():
        generate_linus(folder, scale=args.scale)
    return args, str(folder / "commits.ltgt")


def main() -> None:
    args, path = linus_extract(__doc__.splitlines()[0])
    mb = os.path.getsize(path) / 1e6
    with dask.config.set({"eau2.repair-delay": "1h"}), eau2_dask.embedded_cluster(3, quiet=True) as client:
        kv = eau2_dask.connect(client)
        load_times(client, kv, path, args.blocksize, 1, 1)  # warm-up: imports, compiled kernels
        one, nbytes = load_times(client, kv, path, args.blocksize, 1, args.runs)
        two, _ = load_times(client, kv, path, args.blocksize, 2, args.runs)
        parse_rate = nbytes / one / 1e6
        print(f"commits.ltgt, {mb:.0f} MB of SoR ({nbytes / 1e6:.0f} MB stored), 3 nodes, {args.runs} runs")
        print(f"  read_sor, replicas=1    {one:6.2f} s   {parse_rate:6.0f} MB/s stored")
        print(f"  read_sor, replicas=2    {two:6.2f} s   {two / one:4.2f}x replicas=1's time (goal <= 1.3x)")
        for what, replicas in (("copy", 2), ("rebuild", 1)):
            rate, report = restore_rate(client, kv, path, args.blocksize, replicas)
            print(f"  restore by {what:8}    {rate:6.0f} MB/s  {rate / parse_rate:4.2f}x the parse rate")
            print(f"    {report}")


if __name__ == "__main__":
    main()
