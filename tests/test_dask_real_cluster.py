"""A real cluster: `dask scheduler` and `dask worker --preload eau2` as separate processes."""

import subprocess
import sys

import numpy as np
import pytest
from distributed import Client

import eau2_dask
from eau2 import DataFrame, Key
from eau2.examples import Demo
from tests.dask_clusters import RealCluster


@pytest.fixture
def real_cluster(tmp_path):
    # Start order differs from name order; every worker gets an eau2 flag of its own.
    with RealCluster(
        tmp_path / "cluster.log", names=["2", "0", "1"], flags=["--eau2-budget", "25%"]
    ) as cluster:
        yield cluster.client


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


def test_the_command_runs_on_a_named_scheduler(real_cluster):
    address = real_cluster.scheduler.address
    result = subprocess.run(
        [sys.executable, "-m", "eau2", "run", "trivial", "--scheduler", address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "sum 499999500000" in result.stdout


def test_a_preloaded_process_starts_without_dask_dataframe():
    """What `--preload eau2` imports in a worker or scheduler leaves out dask.dataframe
    (half a second a process), which a `to_dask()` view imports when it is first used."""
    code = (
        "import sys, eau2, eau2_dask, eau2_dask.install\n"
        "assert 'dask.dataframe' not in sys.modules, 'dask.dataframe imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
