"""eau2_dask.read_sor throughput, per node, against the local reader on one core.

Reads the same SoR file (the commits and projects of a synthetic Linus extract, generated
once into --data-root) with `eau2.read_sor` in this process and with `eau2_dask.read_sor`
on 1 and 2 nodes; prints MB/s in all and per node, and the speed-up over the local reader.

    python benchmarks/bench_read_sor.py [--scale 0.1] [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import eau2
import eau2_dask
from eau2.examples.generate import generate_linus


def best(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        fn()
        times.append(time.monotonic() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/eau2-bench"))
    args = parser.parse_args()
    folder = args.data_root / f"linus-{args.scale:g}"
    if not (folder / "commits.ltgt").exists():
        generate_linus(folder, scale=args.scale)
    for name in ("commits", "projects"):
        path = folder / f"{name}.ltgt"
        mb = path.stat().st_size / 1e6
        local = best(lambda path=path: eau2.read_sor(path), args.runs)
        print(f"{name}.ltgt, {mb:.0f} MB")
        print(f"  eau2.read_sor, this process          {local:6.2f} s  {mb / local:6.0f} MB/s")
        for nodes in (1, 2):
            with eau2_dask.embedded_cluster(nodes, quiet=True) as client:
                kv = eau2_dask.connect(client)

                def read(client=client, kv=kv, path=path) -> None:
                    frame = eau2_dask.read_sor(str(path), client=client)
                    kv.delete(frame.key)

                read()  # warm-up: imports and compiled kernels on the workers
                seconds = best(read, args.runs)
            print(
                f"  eau2_dask.read_sor, {nodes} node(s)          {seconds:6.2f} s  {mb / seconds:6.0f} MB/s, "
                f"{mb / seconds / nodes:6.0f} MB/s per node, {local / seconds:4.1f}x the local reader"
            )


if __name__ == "__main__":
    main()
