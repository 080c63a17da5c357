"""WordCount on eau2 against the dask.bag idiom, on the same 2-node cluster and the same text.

The baseline is what a Dask user writes: ``read_text -> str.split -> flatten ->
frequencies``. Both count the same 300 MB Zipf-distributed text (generated once, kept
in --data-root); both results must agree. Ratio = dask.bag time / eau2 time (goal: 2).

    python benchmarks/bench_wordcount.py [--mb 300] [--nodes 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dask.bag as db

import eau2_dask
from eau2.examples import WordCount
from eau2.examples.generate import generate_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/eau2-bench"))
    args = parser.parse_args()
    path = args.data_root / f"zipf-{args.mb}MB.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_text(path, args.mb * 1_000_000, seed=0)

    with eau2_dask.embedded_cluster(args.nodes, quiet=True) as client:
        started = time.monotonic()
        result = eau2_dask.run(WordCount, str(path), top=0, client=client)[0]
        eau2_seconds = time.monotonic() - started

        started = time.monotonic()
        bag = db.read_text(str(path), blocksize="32MiB").str.split().flatten().frequencies()
        frequencies = dict(bag.compute())
        bag_seconds = time.monotonic() - started

    counts = dict(
        zip(
            result["counts"].column("word").to_pylist(),
            result["counts"].column("count").to_pylist(),
            strict=True,
        )
    )
    assert counts == frequencies, "eau2 and dask.bag disagree"
    mb = path.stat().st_size / 1e6
    print(f"{mb:.0f} MB text, {result['total']:,} words, {result['distinct']:,} distinct, {args.nodes} nodes")
    print(
        f"  eau2 WordCount                               {eau2_seconds:6.1f} s  {mb / eau2_seconds:6.0f} MB/s"
    )
    print(
        f"  dask.bag read_text/split/flatten/frequencies {bag_seconds:6.1f} s  {mb / bag_seconds:6.0f} MB/s"
    )
    print(f"  ratio (dask.bag time / eau2 time): {bag_seconds / eau2_seconds:.1f}   (goal: at least 2)")


if __name__ == "__main__":
    main()
