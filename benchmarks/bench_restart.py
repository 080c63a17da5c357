"""Node directories: what keeping every value on disk costs a load, and how much faster a
restarted cluster serves a loaded frame than reloading it from its file.

Starts `dask scheduler` and 2 named `dask worker --preload eau2` processes (one thread
each) on 127.0.0.1, on one SoR file (the commits of a synthetic Linus extract, generated
once into --data-root):

1. `read_sor` on workers without directories, then on workers with `--eau2-directory`
   (every chunk written and synced before the load returns): medians of --runs loads.
2. The cluster with directories, stopped and started again: the time from a client's
   connecting until the frame is served (its metadata read, every chunk present), and
   until a first full scan to the client is done; against `read_sor` loading it again on
   the same cluster, plus the same scan.

    python benchmarks/bench_restart.py [--scale 0.05] [--runs 3] [--blocksize 16MiB]
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench_durability import linus_extract
from distributed import Client

import eau2_dask
from eau2 import Key

NODES = 2


@contextmanager
def process_cluster(directories: list[Path] | None):
    """A scheduler and NODES named workers as processes; `directories`, one a worker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    start = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
    start += ["--port", str(port), "--no-dashboard", "--preload", "eau2"]
    processes = [subprocess.Popen(start, stdout=log, stderr=log)]
    for number in range(NODES):
        own = ["--eau2-directory", str(directories[number])] if directories else []
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1"]
        worker += ["--nthreads", "1", "--no-dashboard", "--preload", "eau2", "--name", f"n{number}", *own]
        processes.append(subprocess.Popen(worker, stdout=log, stderr=log))
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(NODES, timeout=120)
            yield client
    finally:
        for process in processes[1:] + processes[:1]:
            process.terminate()
            process.wait(60)
        log.close()


def median_load(client, path: str, blocksize: str, runs: int) -> tuple[float, int]:
    """Median seconds of `runs` loads (each deleted after), after one warm-up load."""
    kv = eau2_dask.connect(client)
    times = []
    for _ in range(runs + 1):
        started = time.monotonic()
        frame = eau2_dask.read_sor(path, "extract", client=client, blocksize=blocksize)
        times.append(time.monotonic() - started)
        kv.delete(Key("extract"))
    return statistics.median(times[1:]), frame.meta.nbytes


def main() -> None:
    args, path = linus_extract(__doc__.splitlines()[0])
    root = Path(tempfile.mkdtemp(prefix="eau2-bench-restart-"))
    directories = [root / f"n{number}" for number in range(NODES)]
    try:
        with process_cluster(None) as client:
            in_memory, nbytes = median_load(client, path, args.blocksize, args.runs)
        with process_cluster(directories) as client:
            on_disk, _ = median_load(client, path, args.blocksize, args.runs)
            eau2_dask.read_sor(path, "extract", client=client, blocksize=args.blocksize)
        with process_cluster(directories) as client:
            kv = eau2_dask.connect(client)
            started = time.monotonic()
            frame = kv.get(Key("extract"))
            assert {info.key.name: info.status for info in kv.keys()} == {"extract": "ok"}
            served = time.monotonic() - started
            rows = len(frame.to_arrow())
            scanned = time.monotonic() - started
            kv.delete(Key("extract"))
            started = time.monotonic()
            frame = eau2_dask.read_sor(path, "extract", client=client, blocksize=args.blocksize)
            reloaded = time.monotonic() - started
            assert len(frame.to_arrow()) == rows
            rescanned = time.monotonic() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mb = os.path.getsize(path) / 1e6
    print(f"commits.ltgt, {mb:.0f} MB of SoR ({nbytes / 1e6:.0f} MB stored), {NODES} nodes, {args.runs} runs")
    print(f"  read_sor, no directory          {in_memory:6.2f} s")
    print(f"  read_sor, --eau2-directory      {on_disk:6.2f} s   {on_disk / in_memory:4.2f}x (goal <= 1.3x)")
    print(f"  after a restart: served in      {served:6.2f} s   {reloaded / served:6.0f}x faster than")
    print(f"                   reloading      {reloaded:6.2f} s   (goal >= 5x)")
    print(f"  served and scanned to the client {scanned:5.2f} s   {rescanned / scanned:6.1f}x faster than")
    print(f"  reloaded and scanned            {rescanned:6.2f} s")


if __name__ == "__main__":
    main()
