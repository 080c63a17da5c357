"""Ctrl-C on the `eau2` command: it ends within 2 s, quietly, with status 130; on a running
cluster the run's keys are gone, so the next run works; no process is left behind."""

import signal
import subprocess
import time

import psutil
import pytest

import eau2_dask
from tests.commands import EAU2, end, start, wait_until
from tests.dask_clusters import RealCluster

pytestmark = pytest.mark.skipif(EAU2 is None, reason="the eau2 command is not installed")


def test_ctrl_c_on_a_running_cluster_removes_the_run_s_keys(tmp_path, words):
    with RealCluster(tmp_path / "cluster.log", workers=3, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        command = start("run", "wordcount", str(words), "--scheduler", cluster.address)
        wait_until(lambda: any(info.key.name == "data" for info in kv.keys()), 120, "the run storing 'data'")
        seconds, err = end(command, signal.SIGINT)
        assert command.returncode == 130, err
        assert seconds < 2, f"took {seconds:.1f} s"
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert kv.keys() == []
        again = subprocess.run(
            [EAU2, "run", "wordcount", str(words), "--scheduler", cluster.address, "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        assert kv.keys() == []


def test_ctrl_c_on_the_embedded_cluster_ends_it_quietly(words):
    command = start("run", "wordcount", str(words), "--nodes", "2")
    assert "started a local cluster" in command.stderr.readline()
    workers = psutil.Process(command.pid).children(recursive=True)
    time.sleep(1)  # the run is under way
    seconds, err = end(command, signal.SIGINT)
    assert command.returncode == 130, err
    assert seconds < 2, f"took {seconds:.1f} s"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    wait_until(lambda: not any(worker.is_running() for worker in workers), 10, "the workers ending")
