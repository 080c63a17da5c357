"""Ctrl-C on the `eau2` command: it ends within 2 s, quietly, with status 130; on a running
cluster the run's keys are gone, so the next run works; no process is left behind."""

import os
import shutil
import signal
import subprocess
import time

import psutil
import pytest

import eau2_dask
from eau2.examples.generate import generate_text
from tests.dask_clusters import RealCluster

EAU2 = shutil.which("eau2")
pytestmark = pytest.mark.skipif(EAU2 is None, reason="the eau2 command is not installed")


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """Enough text that WordCount is still at work a few seconds in."""
    path = tmp_path_factory.mktemp("words") / "words.txt"
    generate_text(path, 150_000_000)
    return path


def start(*arguments: str) -> subprocess.Popen:
    """The `eau2` command in a session of its own: a signal to its group is a terminal's Ctrl-C."""
    return subprocess.Popen(
        [EAU2, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def interrupt(command: subprocess.Popen) -> tuple[float, str]:
    """Ctrl-C: SIGINT to every process of the command; seconds until it ended, its errors."""
    interrupted = time.monotonic()
    os.killpg(command.pid, signal.SIGINT)
    _, err = command.communicate(timeout=30)
    return time.monotonic() - interrupted, err


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def test_ctrl_c_on_a_running_cluster_removes_the_run_s_keys(tmp_path, words):
    with RealCluster(tmp_path / "cluster.log", workers=3, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        command = start("run", "wordcount", str(words), "--scheduler", cluster.address)
        wait_until(lambda: any(info.key.name == "data" for info in kv.keys()), 120, "the run storing 'data'")
        seconds, err = interrupt(command)
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
    seconds, err = interrupt(command)
    assert command.returncode == 130, err
    assert seconds < 2, f"took {seconds:.1f} s"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    wait_until(lambda: not any(worker.is_running() for worker in workers), 10, "the workers ending")
