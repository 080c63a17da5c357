"""eau2 against the Dask idiom for "load once, query many times": `eau2_dask.read_sor` and
`frame.to_dask()` against `dd.read_csv(...).persist()`, on one 2-worker cluster.

Writes one mixed-type table (the one `bench_sor.py` uses) as SoR and as CSV, plus a small
table of users to join with, then on an embedded cluster of 2 workers (one thread each):
loads each side (median of --runs, each load freed before the next), runs five queries on
each (groupby-sum on a string key, a filtered count, a float mean, a merge of two stored
frames, nlargest; median of --runs, results checked equal) and reports the workers' memory
growth after a load, and after one run of each query (on the lazy view, and with the view
persisted too, against Dask's frame after the same queries; each query first runs once on
a small table, so that what a worker pays once for its first groupby or join is not
counted). The queries run on the lazy view
(`frame.to_dask()`: each compute reads its chunks and converts the columns its node has not
kept, see ``eau2.view-cache``) and on the view persisted (`frame.to_dask().persist()`:
pandas partitions in worker memory, as the Dask idiom keeps its own). Ratios are the Dask
idiom's time over eau2's: above 1, eau2 is faster.

Queries take turns (lazy view, persisted view, Dask) in each of --runs rounds, so that a
machine whose speed drifts slows all three alike.

    python benchmarks/bench_vs_dask.py [--mb 500] [--runs 5] [--blocksize 64MiB] [--partition-size SIZE]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.csv as pcsv
from bench_sor import make_table
from distributed import futures_of, wait

import eau2
import eau2_dask
from eau2 import Key
from eau2.distributed.grouping import PARTITION_SIZE

NAMES = ["flag", "count", "value", "name", "id"]
QUERIES = {
    "groupby-sum on a string key": lambda df, users: df.groupby("name")["count"].sum(),
    "filtered count": lambda df, users: (df["value"] > 0).sum(),
    "mean of a float column": lambda df, users: df["value"].mean(),
    "merge of two stored frames": lambda df, users: df.merge(users, on="name")["score"].sum(),
    "nlargest": lambda df, users: df["count"].nlargest(10),
}


def write_inputs(folder: Path, megabytes: int) -> tuple[Path, Path, Path, Path]:
    table = make_table(megabytes * 1_000_000 // 45, full_precision=False)
    words = np.array([f"user{i}" for i in range(50_000)])
    users = pa.table({"name": words, "score": np.arange(len(words), dtype=np.int64) % 97})
    paths = folder / "table.sor", folder / "table.csv", folder / "users.sor", folder / "users.csv"
    eau2.DataFrame.from_arrow(table).to_sor(paths[0])
    pcsv.write_csv(table, paths[1])
    eau2.DataFrame.from_arrow(users).to_sor(paths[2])
    pcsv.write_csv(users, paths[3])
    return paths


def median_seconds(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        result = None  # let go of the last result first: a persisted frame's keys are reused
        time.sleep(0.5)  # (and the scheduler forget them)
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def interleaved(query, sides: dict, runs: int) -> dict[str, tuple[float, object]]:
    """Each side's median time for `query` and its result, the sides taking turns in each
    round, so a machine whose speed drifts slows them alike."""
    times: dict[str, list[float]] = {side: [] for side in sides}
    results: dict[str, object] = {}
    for _ in range(runs):
        for side, (frame, users) in sides.items():
            results[side] = None  # let go of the last result first: keys are reused
            time.sleep(0.3)  # (and the scheduler forget them)
            started = time.perf_counter()
            results[side] = query(frame, users).compute()
            times[side].append(time.perf_counter() - started)
    return {side: (statistics.median(times[side]), results[side]) for side in sides}


def worker_rss(client) -> int:
    """The workers' resident memory, once each has handed back what it has freed (to the
    garbage collector, Arrow's memory pool and the C allocator), so that only live data
    counts, on both sides alike."""
    return sum(client.run(_live_rss).values())


def _live_rss() -> int:
    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss


def named(frame, names: list[str], partition_size: str = PARTITION_SIZE) -> dd.DataFrame:
    """A stored frame's dask view, its columns named like the CSV's header."""
    view = frame.to_dask(partition_size=partition_size)
    return view.rename(columns=dict(zip(view.columns, names, strict=True)))


def same(a, b) -> bool:
    """Equal results: scalars within rounding, series by key (or by value, for row
    positions, which differ with the partitioning)."""
    if isinstance(a, pd.Series) and pd.api.types.is_integer_dtype(a.index):
        return np.allclose(np.sort(a.to_numpy(dtype=float)), np.sort(b.to_numpy(dtype=float)))
    if isinstance(a, pd.Series):
        a, b = a.sort_index(), b.sort_index()
        same_index = list(a.index) == list(b.index)
        return same_index and np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float))
    return bool(np.isclose(float(a), float(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--blocksize", default="64MiB")
    parser.add_argument("--partition-size", default=PARTITION_SIZE, help="the view's (to_dask)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sor, csv, users_sor, users_csv = write_inputs(Path(folder), args.mb)
        with eau2_dask.embedded_cluster(2, quiet=True) as client:
            kv = eau2_dask.connect(client)

            def load_eau2():
                return eau2_dask.read_sor(str(sor), "table", client=client, blocksize=args.blocksize)

            def load_dask():
                persisted = dd.read_csv(str(csv), blocksize=args.blocksize).persist()
                wait(futures_of(persisted))
                return persisted

            load_eau2()  # warm-up: compiled kernels, imports on the workers
            kv.delete(Key("table"))
            users = eau2_dask.read_sor(str(users_sor), "users", client=client)
            warm_up_queries(client, kv, users, Path(folder))
            base = worker_rss(client)
            eau2_load, frame = median_seconds(lambda: _loaded_once(kv, load_eau2), args.runs)
            eau2_memory = worker_rss(client) - base
            eau2_df = named(frame, NAMES, args.partition_size)
            eau2_users = named(users, ["name", "score"], args.partition_size)
            for query in QUERIES.values():  # once each: the nodes keep what they convert
                query(eau2_df, eau2_users).compute()
            queried_memory = worker_rss(client) - base
            view_cache = sum(client.run(_view_cache_bytes).values())
            base = worker_rss(client)
            dask_load, persisted = median_seconds(load_dask, args.runs)
            dask_memory = worker_rss(client) - base
            dask_users = dd.read_csv(str(users_csv)).persist()
            for query in QUERIES.values():
                query(persisted, dask_users).compute()
            dask_queried = worker_rss(client) - base
            base = worker_rss(client)
            started = time.perf_counter()
            kept_df, kept_users = eau2_df.persist(), eau2_users.persist()
            wait(futures_of(kept_df) + futures_of(kept_users))
            persist_time = time.perf_counter() - started
            view_memory = worker_rss(client) - base
            runs = args.runs

            sizes = f"{sor.stat().st_size / 1e6:.0f} MB of SoR / {csv.stat().st_size / 1e6:.0f} MB of CSV"
            print(f"{sizes}, 2 workers, medians of {args.runs}")
            print(f"{'':30} {'eau2':>8} {'Dask idiom':>11} {'ratio':>6} {'view kept':>10} {'ratio':>6}")
            print(f"{'load':30} {eau2_load:7.2f}s {dask_load:10.2f}s {dask_load / eau2_load:5.2f}x")
            kept_load = eau2_load + persist_time
            print(
                f"{'load, then persist the view':30} {kept_load:7.2f}s {dask_load:10.2f}s "
                f"{dask_load / kept_load:5.2f}x"
            )
            sides = {
                "lazy": (eau2_df, eau2_users),
                "kept": (kept_df, kept_users),
                "dask": (persisted, dask_users),
            }
            for name, query in QUERIES.items():
                timed = interleaved(query, sides, runs)
                (eau2_time, ours), (kept_time, kept), (dask_time, theirs) = timed.values()
                check = "" if same(ours, theirs) and same(kept, theirs) else "  RESULTS DIFFER"
                print(
                    f"{name:30} {eau2_time:7.2f}s {dask_time:10.2f}s {dask_time / eau2_time:5.2f}x "
                    f"{kept_time:9.2f}s {dask_time / kept_time:5.2f}x{check}"
                )
            print(
                f"{'worker memory after a load':30} {eau2_memory / 1e9:6.2f}GB {dask_memory / 1e9:8.2f}GB "
                f"{dask_memory / max(eau2_memory, 1):5.2f}x"
            )
            for label, memory in (
                ("  after a run of each query", queried_memory),
                ("  with the view persisted too", queried_memory + view_memory),
            ):
                print(
                    f"{label:30} {memory / 1e9:6.2f}GB {dask_queried / 1e9:8.2f}GB "
                    f"{dask_queried / max(memory, 1):5.2f}x"
                )
            print(f"{'  of which kept for the view':30} {view_cache / 1e9:6.2f}GB  (eau2.view-cache)")


def warm_up_queries(client, kv, users, folder: Path) -> None:
    """Run each query once on a small table, eau2's and Dask's, so that what a first run
    costs a worker once (pandas' groupby and join machinery, Arrow's kernels) is not
    counted as memory either side keeps for its data."""
    small = make_table(20_000, full_precision=False, seed=1)
    eau2.DataFrame.from_arrow(small).to_sor(folder / "warm.sor")
    pcsv.write_csv(small, folder / "warm.csv")
    # Small blocks: every worker holds part of it and runs each query.
    frame = eau2_dask.read_sor(str(folder / "warm.sor"), "warm", client=client, blocksize="128KiB")
    theirs = dd.read_csv(str(folder / "warm.csv"), blocksize="128KiB").persist()
    for query in QUERIES.values():
        query(named(frame, NAMES), named(users, ["name", "score"])).compute()
        query(theirs, named(users, ["name", "score"])).compute()
    del theirs
    kv.delete(Key("warm"))


def _view_cache_bytes(dask_worker) -> int:
    return dask_worker.extensions["eau2"].converted.nbytes


def _loaded_once(kv, load):
    """One load, freed before the next (the last one is kept for the memory figure)."""
    if Key("table") in {info.key for info in kv.keys()}:
        kv.delete(Key("table"))
    return load()


if __name__ == "__main__":
    main()
