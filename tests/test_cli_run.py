"""`eau2 run`: the example applications from the command line, on the embedded cluster."""

import gzip
import http.server
import json
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

import eau2_dask
from tests.commands import EAU2, end, start, wait_until
from tests.dask_clusters import RealCluster, assert_no_new_processes, children


def eau2(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eau2", *args], capture_output=True, text=True, timeout=300)


def test_demo_json_and_dashboard():
    before = children()
    result = eau2("run", "demo", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert json.loads(lines[-1]) == {"sum": 4999950000, "result": "SUCCESS"}
    assert sorted(lines[:-1]) == ["[node 1] The sum is 4999950000", "[node 2] SUCCESS"]
    assert "dashboard: http://127.0.0.1:" in result.stderr
    assert_no_new_processes(before)


def test_trivial_human_readable():
    result = eau2("run", "trivial", "--nodes", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("trivial finished on 2 nodes")
    assert "sum 499999500000" in result.stdout


def test_failure_is_one_line_and_exits_non_zero(tmp_path):
    text = b"the quick brown fox " * 5000
    (tmp_path / "trunc.gz").write_bytes(gzip.compress(text)[:200])  # a download cut short
    result = eau2("run", "wordcount", str(tmp_path / "trunc.gz"), "--nodes", "1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"Error: node 0: ValueError: {tmp_path / 'trunc.gz'}: truncated or corrupt compressed file "
        "(Compressed file ended before the end-of-stream marker was reached)"
    ), last
    assert "Traceback" not in result.stderr


def test_a_folder_is_refused_before_a_cluster_starts(tmp_path):
    result = eau2("run", "wordcount", str(tmp_path), "--nodes", "1")
    assert result.returncode == 1
    assert result.stderr == f"Error: {tmp_path} is a folder, not a file\n"


def test_a_missing_input_is_refused_before_a_cluster_starts_and_paths_resolve_here(tmp_path):
    for args, message in [
        (["wordcount", "no/such/words.txt"], "Error: no such file: no/such/words.txt"),
        (["linus", "--data", "no/such/folder"], "Error: no such folder: no/such/folder"),
    ]:
        result = eau2("run", *args)
        assert result.returncode == 1 and "started a local cluster" not in result.stderr
        assert result.stderr.strip().splitlines() == [message]
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    loop = str(tmp_path / "loop-a")
    result = eau2("run", "wordcount", loop)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {loop} cannot be resolved: ")  # the wording of the loop is Python's
    (tmp_path / "words.txt").write_text("a b a\n")
    result = subprocess.run(
        [sys.executable, "-m", "eau2", "run", "wordcount", "words.txt", "--nodes", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["total"] == 3


def test_a_node_count_the_example_cannot_use_is_refused_before_a_cluster_starts():
    result = eau2("run", "demo", "--nodes", "2")
    assert result.returncode != 0
    assert "started a local cluster" not in result.stderr
    assert "'--nodes': 2 is not in the range 3<=x<=3" in result.stderr
    assert "needs exactly 3 nodes" in " ".join(eau2("run", "demo", "--help").stdout.split())


def test_usage_errors_of_every_command_are_one_line_with_status_1(tmp_path):
    for args, expected in [
        (["generate", "text", "--out", str(tmp_path / "t"), "--size", "3XB"], "Invalid value for '--size'"),
        (["run", "demo", "--nodes", "2"], "Invalid value for '--nodes': 2 is not in the range 3<=x<=3"),
        (["run", "wordcount"], "Missing argument 'FILE'"),
        (["run", "trivial", "--timeout", "-1"], "Invalid value for '--timeout'"),
        (["run", "nope"], "No such command 'nope'"),
        (["nope"], "No such command 'nope'"),
        (["ls", "--bogus"], "No such option '--bogus'"),
    ]:
        result = eau2(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith(f"Error: {expected}"), (args, result.stderr)


def test_unknown_application():
    result = eau2("run", "nope")
    assert result.returncode != 0 and "nope" in result.stderr


def test_a_scheduler_address_that_is_not_one_is_one_line(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web = f"127.0.0.1:{server.server_address[1]}"
    try:
        for address, found in [
            (f"http://{web}", "is a web address"),
            ("tcp://nosuchhost.invalid:8786", "unknown host 'nosuchhost.invalid'"),
            (f"tcp://{web}", "a web server answers there, not a Dask scheduler"),
        ]:
            result = eau2("run", "trivial", "--scheduler", address)
            assert result.returncode == 1
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"Error: --scheduler {address}")
            assert found in lines[0]
    finally:
        server.shutdown()


def test_linus_on_files_with_no_rows_fails_in_one_line(tmp_path):
    for name in ("projects", "users", "commits"):
        (tmp_path / f"{name}.ltgt").write_text("garbage\n")
    result = eau2("run", "linus", "--data", str(tmp_path), "--nodes", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: file://{tmp_path / 'projects.ltgt'} has no rows (it is empty, or none of its first 500 "
        "lines is one), so no column 0 to keep"
    )
    assert "Traceback" not in result.stderr


def test_warnings_are_one_line(tmp_path):
    (tmp_path / "projects.ltgt").write_text('<0> <"p0">\ngarbage\n<1> <"p1">\n')
    (tmp_path / "users.ltgt").write_text('<0> <"u0">\n')
    (tmp_path / "commits.ltgt").write_text("<5> <7> <7>\n")
    result = eau2("run", "linus", "--data", str(tmp_path), "--nodes", "1", "--json")
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "SorWarning" in line]
    assert len(warning) == 1 and warning[0].startswith("eau2: SorWarning: 1 line(s) dropped")
    assert "warnings.warn" not in result.stderr and "Traceback" not in result.stderr


def test_linus_on_commits_of_another_schema_says_so(tmp_path):
    for name in ("projects", "users", "commits"):
        (tmp_path / f"{name}.ltgt").write_text("<1> <2> <3>\n")  # 1 alone reads as BOOL
    result = eau2("run", "linus", "--data", str(tmp_path), "--nodes", "1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: node 0: ValueError: the commits frame ")
    assert "has schema 'BI': Linus needs its first two columns to be INT" in last


@pytest.mark.skipif(EAU2 is None, reason="the eau2 command is not installed")
def test_the_scheduler_dying_during_a_run_is_one_line(tmp_path, words):
    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        command = start("run", "wordcount", str(words), "--scheduler", cluster.address)
        wait_until(lambda: any(info.key.name == "data" for info in kv.keys()), 120, "the run storing 'data'")
        cluster._processes[0].kill()  # the scheduler
        _, err = command.communicate(timeout=120)
    assert command.returncode == 1, err
    assert err == f"Error: lost the connection to the scheduler at {cluster.address}\n"


@pytest.mark.skipif(EAU2 is None, reason="the eau2 command is not installed")
def test_sigterm_ends_a_run_on_the_embedded_cluster_as_ctrl_c_does(words):
    command = start("run", "wordcount", str(words), "--nodes", "2")
    assert "started a local cluster" in command.stderr.readline()
    workers = psutil.Process(command.pid).children(recursive=True)
    time.sleep(1)  # the run is under way
    seconds, err = end(command, signal.SIGTERM)
    assert command.returncode == 128 + signal.SIGTERM, err
    assert seconds < 2, f"took {seconds:.1f} s"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    wait_until(lambda: not any(worker.is_running() for worker in workers), 10, "the workers ending")


@pytest.mark.skipif(EAU2 is None, reason="the eau2 command is not installed")
def test_sighup_and_sigterm_remove_the_run_s_keys_from_a_running_cluster(tmp_path, words):
    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        for number in (signal.SIGHUP, signal.SIGTERM):
            command = start("run", "wordcount", str(words), "--scheduler", cluster.address)
            wait_until(lambda: any(info.key.name == "data" for info in kv.keys()), 120, "storing 'data'")
            # To the command alone: the cluster's processes are not in its group.
            sent = time.monotonic()
            command.send_signal(number)
            _, err = command.communicate(timeout=30)
            assert command.returncode == 128 + number, err
            assert time.monotonic() - sent < 2
            assert err == "", err
            assert kv.keys() == []
