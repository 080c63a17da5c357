"""A value larger than a node's memory budget travels and is stored in pieces: the worker
holding it is never paused, restarted or killed, and the value reads back whole."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

import eau2_dask
from eau2 import Key
from tests.dask_clusters import RealCluster


class StatusWatch:
    """Every status and the highest memory the scheduler reports for each worker, polled."""

    def __init__(self, client):
        self.client, self.statuses, self.memory = client, set(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            for worker in self.client.scheduler_info(n_workers=-1)["workers"].values():
                self.statuses.add(worker["status"])
                self.memory = max(self.memory, worker["metrics"]["memory"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_a_value_of_one_and_a_half_budgets_is_stored_without_pausing_the_worker(tmp_path):
    with RealCluster(tmp_path / "cluster.log", workers=2, flags=["--memory-limit", "1GB"]) as cluster:
        kv = eau2_dask.connect(cluster.client)
        workers = cluster.directory()
        watch = StatusWatch(cluster.client)
        array = np.arange(600_000_000 // 8, dtype=np.int64)  # 1.5x the 40 % budget of 1 GB
        kv.put(Key("big", 1), array)
        table = pa.table({"x": array[: len(array) // 2]})
        kv.put(Key("table", 0), table, replicas=2)  # the second copy travels node to node
        assert np.array_equal(kv.get(Key("big", 1)), array)
        assert np.array_equal(kv.get_and_wait(Key("big", 1), timeout=60), array)
        assert kv.get(Key("table", 0)).equals(table)
        watch.stop()
        assert watch.statuses == {"running"}
        assert watch.memory < 0.7 * 10**9
        assert cluster.directory() == workers  # no worker was restarted
        assert "Pausing worker" not in (tmp_path / "cluster.log").read_text()
