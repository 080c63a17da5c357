"""Linus at scale: read the three files in parallel and run 4 degrees, on 2 eau2 nodes.

Generates the synthetic extract once per scale (kept in --data-root), then times, end to
end, `eau2_dask.read_sor` of projects, users and commits plus the Linus application, and
samples the peak memory (RSS) of this process and every worker process together.
Baseline: the best published 2020 run, about 5 minutes and 18 GB on two machines; the
goals are at most 25 s and 5 GB at full scale (issue 9), 20 s at 1/10 scale.

    python benchmarks/bench_linus.py [--scale 0.1] [--scale 1.0] [--data-root /tmp/eau2-bench]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from pathlib import Path

import psutil

import eau2_dask
from eau2.examples import Linus
from eau2.examples.generate import generate_linus
from eau2.examples.linus import COLUMNS


class PeakMemory:
    """Samples the summed RSS of this process and its children until stopped."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just ended
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)


def data_for(root: Path, scale: float) -> Path:
    folder = root / f"linus-{scale:g}"
    if not (folder / "commits.ltgt").exists():
        started = time.monotonic()
        generate_linus(folder, scale=scale, seed=0, progress=True)
        size = sum(f.stat().st_size for f in folder.iterdir())
        took = time.monotonic() - started
        print(
            f"generated {size / 1e9:.2f} GB at scale {scale:g} in {took:.0f} s ({size / 1e6 / took:.0f} MB/s)"
        )
    return folder


def run(folder: Path, nodes: int) -> tuple[float, float, list]:
    with eau2_dask.embedded_cluster(nodes, budget="60%", memory_limit="11GB", quiet=True) as client:
        with PeakMemory() as memory:
            started = time.monotonic()
            frames = [
                eau2_dask.read_sor(
                    str(folder / f"{name}.ltgt"), client=client, blocksize="64MiB", columns=COLUMNS[name]
                )
                for name in ("projects", "users", "commits")
            ]
            read = time.monotonic() - started
            stages = eau2_dask.run(Linus, *(f.key for f in frames), client=client)[0]["stages"]
            total = time.monotonic() - started
        return read, total, stages, memory.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", help="share of the 2020 size (repeatable)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/eau2-bench"))
    args = parser.parse_args()
    for scale in args.scale or [0.1]:
        folder = data_for(args.data_root, scale)
        read, total, stages, peak = run(folder, args.nodes)
        goal = 25 * scale if scale >= 1 else 20 * scale / 0.1
        print(
            f"scale {scale:g}, {args.nodes} nodes: read {read:.1f} s, read + 4 degrees {total:.1f} s "
            f"(goal {goal:.0f} s; 2020 best: ~300 s at full scale), "
            f"peak memory {peak / 1e9:.1f} GB" + (f" (goal {5 * scale:g} GB)" if scale >= 1 else "")
        )
        for stage in stages:
            print(f"  stage {stage['stage']}: {stage['projects']:,} projects, {stage['users']:,} users")


if __name__ == "__main__":
    main()
