"""eau2.read_sor against pyarrow.csv.read_csv on one core, reading the same table.

Writes a mixed-type table (BOOL, INT, FLOAT, STRING) as SoR and as CSV, then times
both readers from the page cache, pinned to one core, best of several runs. The ratio
is pyarrow's time over eau2's: above 1 means eau2 is faster on the same table.

    python benchmarks/bench_sor.py [--mb 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

import eau2


def make_table(rows: int, full_precision: bool, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    floats = rng.normal(0, 1000, rows)
    if not full_precision:
        scale = 10.0 ** rng.integers(0, 6, rows)
        floats = np.round(floats * scale) / scale
    words = np.array([f"user{i}" for i in range(50_000)])
    return pa.table(
        {
            "flag": rng.integers(0, 2, rows).astype(bool),
            "count": rng.integers(-(10**9), 10**9, rows),
            "value": floats,
            "name": words[rng.integers(0, len(words), rows)],
            "id": rng.integers(0, 10**6, rows),
        }
    )


def best_time(fn, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def compare(folder: Path, target_mb: int, full_precision: bool, runs: int) -> None:
    rows = target_mb * 1_000_000 // 45
    table = make_table(rows, full_precision)
    sor_path, csv_path = folder / "table.sor", folder / "table.csv"
    eau2.DataFrame.from_arrow(table).to_sor(sor_path)
    pcsv.write_csv(table, csv_path)
    sor_mb, csv_mb = sor_path.stat().st_size / 1e6, csv_path.stat().st_size / 1e6

    frame = eau2.read_sor(sor_path)  # also compiles the kernel on a fresh install
    assert frame.nrows == rows and str(frame.schema) == "BIFSI"
    sor_s = best_time(lambda: eau2.read_sor(sor_path), runs)
    options = pcsv.ReadOptions(use_threads=False)
    csv_s = best_time(lambda: pcsv.read_csv(csv_path, read_options=options), runs)

    label = "full-precision floats" if full_precision else "floats of 0-5 decimals"
    print(f"{rows:,} rows, {label}")
    print(f"  eau2.read_sor          {sor_mb:7.1f} MB SoR  {sor_s:6.3f} s  {sor_mb / sor_s:6.0f} MB/s")
    print(f"  pyarrow.csv.read_csv   {csv_mb:7.1f} MB CSV  {csv_s:6.3f} s  {csv_mb / csv_s:6.0f} MB/s")
    print(f"  ratio (pyarrow time / eau2 time): {csv_s / sor_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="approximate SoR size in MB (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"one core; eau2 {eau2.__version__}, pyarrow {pa.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        for full_precision in (False, True):
            compare(Path(folder), args.mb, full_precision, args.runs)


if __name__ == "__main__":
    main()
