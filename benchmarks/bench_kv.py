"""eau2's KV store on Dask against Dask's own data transfer, between two worker processes.

- remote get: a task on worker B reads a 200 MB numpy value homed on worker A, against a
  task on B that takes, as its input, a 200 MB array Dask holds on A. Both are timed the
  same way (submit, result) so task overhead cancels; ratio = Dask time / eau2 time
  (above 1: eau2 is faster; the goal is at least 1.0).
- local get: the same read on the value's home node.
- put: a task on B storing 200 MB on A (remote) and on B itself (local), in MB/s.

    python benchmarks/bench_kv.py [--mb 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from distributed import wait

import eau2_dask
from eau2 import Key, KVStore
from eau2_dask.transport import worker_transport


def node_kv(directory: list[str]) -> KVStore:
    """The KV store of the eau2 node this task runs on, as an application's rank has it."""
    return KVStore(worker_transport())


def make_array(nbytes: int, seed: int) -> np.ndarray:
    return np.full(nbytes // 8, seed, dtype=np.float64)


def put_value(directory: list[str], name: str, home: int, nbytes: int, seed: int) -> float:
    array = make_array(nbytes, seed)
    start = time.perf_counter()
    node_kv(directory).put(Key(name, home), array)
    return time.perf_counter() - start


def get_value(directory: list[str], name: str, home: int) -> float:
    start = time.perf_counter()
    value = node_kv(directory).get(Key(name, home))
    assert value.nbytes > 0
    return time.perf_counter() - start


def timed_put(client, directory, name: str, home: int, nbytes: int, seed: int, where: str) -> float:
    """Seconds a task on `where` takes to put `nbytes` under (name, home), timed inside it."""
    return client.submit(put_value, directory, name, home, nbytes, seed, workers=[where], pure=False).result()


def size_of(array: np.ndarray) -> int:
    return array.nbytes


def best(times: list[float]) -> float:
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    nbytes = args.mb * 1_000_000

    with eau2_dask.embedded_cluster(2, budget="8GB", memory_limit="10GB", quiet=True) as client:
        directory = eau2_dask.ensure_ready(client)
        a, b = directory

        def timed(fn, *fn_args, where) -> float:
            start = time.perf_counter()
            client.submit(fn, *fn_args, workers=[where], pure=False).result()
            return time.perf_counter() - start

        eau2_remote, dask_remote, eau2_local, put_remote, put_local = [], [], [], [], []
        for run in range(args.runs + 1):  # the first run warms up connections and imports
            client.submit(put_value, directory, f"v{run}", 0, nbytes, run, workers=[a], pure=False).result()
            remote = timed(get_value, directory, f"v{run}", 0, where=b)
            local = timed(get_value, directory, f"v{run}", 0, where=a)
            held = client.submit(make_array, nbytes, run, workers=[a], pure=False)
            wait(held)
            start = time.perf_counter()
            client.submit(size_of, held, workers=[b], pure=False).result()
            dask = time.perf_counter() - start
            p_remote = client.submit(
                put_value, directory, f"p{run}", 0, nbytes, run, workers=[b], pure=False
            ).result()
            p_local = client.submit(
                put_value, directory, f"q{run}", 1, nbytes, run, workers=[b], pure=False
            ).result()
            del held
            if run:
                eau2_remote.append(remote)
                dask_remote.append(dask)
                eau2_local.append(local)
                put_remote.append(p_remote)
                put_local.append(p_local)
            kv = eau2_dask.connect(client)
            for name, home in ((f"v{run}", 0), (f"p{run}", 0), (f"q{run}", 1)):
                kv.delete(Key(name, home))

    mb = nbytes / 1e6
    rows = [
        ("remote get, eau2 (task on B reads A's value)", best(eau2_remote)),
        ("Dask moving the same array from A to B", best(dask_remote)),
        ("local get on the home node (task round trip)", best(eau2_local)),
        ("put, remote (inside a task on B, to A)", best(put_remote)),
        ("put, local (inside a task on B, to B)", best(put_local)),
    ]
    print(f"{args.mb} MB numpy value, 2 worker processes on 127.0.0.1, best of {args.runs}")
    for label, seconds in rows:
        print(f"  {label:48s} {seconds:6.3f} s  {mb / seconds:7.0f} MB/s")
    ratio = best(dask_remote) / best(eau2_remote)
    print(f"  remote get ratio (Dask time / eau2 time): {ratio:.2f}   (goal: at least 1.0)")


if __name__ == "__main__":
    main()
