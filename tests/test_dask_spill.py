"""A node asked to hold 4x its budget spills to disk, keeps everything readable, and its
worker is never paused or restarted by Dask's memory monitor."""

import os

import numpy as np
import pyarrow.compute as pc
import pytest

import eau2_dask
from eau2 import DataFrame, Key
from tests.dask_clusters import assert_no_new_processes, children

BUDGET = 100_000_000


@pytest.fixture
def client():
    before = children()
    with eau2_dask.embedded_cluster(1, budget=str(BUDGET), memory_limit="1GB", quiet=True) as client:
        yield client
    assert_no_new_processes(before)


def node_state(dask_worker):
    import psutil

    store = dask_worker.extensions["eau2"].store
    return {
        "pid": os.getpid(),
        "status": dask_worker.status.name,
        "memory": store.memory_bytes,
        "spilled": store.spilled_bytes,
        "rss": psutil.Process().memory_info().rss,
        "pause_at": dask_worker.memory_manager.memory_pause_fraction
        * dask_worker.memory_manager.memory_limit,
    }


def test_four_times_the_budget(client):
    (before,) = client.run(node_state).values()
    kv = eau2_dask.connect(client)
    keys = [Key(f"big-{i}") for i in range(8)]  # 8 x 50 MB = 4x the budget
    for i, key in enumerate(keys):
        DataFrame.from_array(key, kv, np.full(6_250_000, i, dtype=np.int64))
    (state,) = client.run(node_state).values()
    assert state["memory"] <= BUDGET
    assert state["spilled"] >= 300_000_000
    for i, key in enumerate(keys):
        frame = kv.get(key)
        total = sum(frame.map_batches(lambda batch: pc.sum(batch.column(0)).as_py()))
        assert (frame.nrows, total) == (6_250_000, 6_250_000 * i)
    (after,) = client.run(node_state).values()
    assert (after["pid"], after["status"]) == (before["pid"], "running")
    assert after["rss"] < after["pause_at"]


def spill_place(dask_worker) -> tuple[str, str]:
    return dask_worker.local_directory, str(dask_worker.extensions["eau2"].store.directory)


def test_spill_files_live_in_the_worker_s_local_directory_and_go_with_the_node():
    with eau2_dask.embedded_cluster(1, budget="1MB", quiet=True) as client:
        kv = eau2_dask.connect(client)
        DataFrame.from_array(Key("spilled"), kv, np.arange(1_000_000))
        ((local, spill),) = client.run(spill_place).values()
        assert spill.startswith(local + os.sep + "eau2-spill-")
        assert any(name.endswith(".table") for name in os.listdir(spill))
    assert not os.path.exists(spill)
