"""A real cluster: `dask scheduler` and `dask worker --preload eau2` as separate processes."""

import socket
import subprocess
import sys

import numpy as np
import pytest
from distributed import Client

import eau2_dask
from eau2 import DataFrame, Key
from eau2.examples import Demo
from tests.dask_clusters import assert_no_new_processes, children

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def real_cluster(tmp_path):
    before = children()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 - closed below, after the processes
    processes = [
        subprocess.Popen(
            [*DASK, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], stdout=log, stderr=log
        )
    ]
    for name in ("2", "0", "1"):  # start order differs from name order
        processes.append(
            subprocess.Popen(
                [
                    *WORKER,
                    address,
                    "--name",
                    name,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--memory-limit",
                    "2GB",
                    "--preload",
                    "eau2",
                    "--eau2-budget",
                    "25%",
                ],
                stdout=log,
                stderr=log,
            )
        )
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(3, timeout=120)
            yield client
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(60)
        log.close()
        assert_no_new_processes(before)


def test_preloaded_workers_are_nodes_with_their_flags(real_cluster):
    budgets = real_cluster.run(lambda dask_worker: dask_worker.extensions["eau2"].budget)
    assert set(budgets.values()) == {500_000_000}  # 25% of 2 GB
    assert eau2_dask.run(Demo, client=real_cluster, timeout=120)[2] == {"result": "SUCCESS"}
    names = {a: str(w["name"]) for a, w in real_cluster.scheduler_info(n_workers=-1)["workers"].items()}
    assert [names[a] for a in eau2_dask.ensure_ready(real_cluster)] == ["0", "1", "2"]


def test_data_outlives_a_client(real_cluster):
    kv = eau2_dask.connect(real_cluster)
    DataFrame.from_array(Key("kept", 2), kv, np.arange(1000))
    address = real_cluster.scheduler.address
    with Client(address, timeout="30s") as other:
        assert eau2_dask.connect(other).get(Key("kept", 2)).get(0, 999) == 999
