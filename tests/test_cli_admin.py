"""The admin commands (`eau2 ls`, `info`, `rm`, `load`, `nodes`), how every command finds
its scheduler, and Ctrl-C: in process on an embedded cluster, and as the installed
`eau2` command against a real `dask scheduler --scheduler-file`."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import dask.config
import numpy as np
import pytest
from click.testing import CliRunner, Result
from dask.utils import format_bytes

import eau2_dask
from eau2.cli import main
from eau2.store.key import Key
from tests.dask_clusters import assert_no_new_processes, children, stop_cluster

ROWS = '<1> <2.5> <hello>\n<2> <3.5> <"a b">\n<3> <> <x>\n'


def eau2(*args: str, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def at(client) -> list[str]:
    return ["--scheduler", client.scheduler.address]


@pytest.fixture
def sor_files(tmp_path) -> list[Path]:
    paths = [tmp_path / "a.sor", tmp_path / "b.sor"]
    for path in paths:
        path.write_text(ROWS)
    return paths


def column(lines: list[str], header: str, row: int, right: bool = False) -> str:
    """The cell of `row` (0: the first under the header) under `header`, cut where an
    aligned table puts it: from the header's start (left) or up to its end (right)."""
    start = lines[0].index(header)
    line = lines[row + 1]
    if right:
        end = start + len(header)
        return line[:end].rsplit("  ", 1)[-1].strip()
    return line[start:].split("  ")[0].strip()


def test_load_ls_info_rm_on_a_key_homed_elsewhere(client, sor_files):
    result = eau2("load", *map(str, sor_files), "--key", "adm-two@2", "--replicas", "2", *at(client))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded adm-two@2 from 2 files in ")
    assert result.stdout.rstrip().endswith(": 6 rows, 3 columns (IFS), 2 chunks of 2 copies, 140 B")
    kv = eau2_dask.connect(client)
    assert kv.get(Key("adm-two", 2)).get_string(2, 4) == "a b"  # stored where the CLI said
    kv.put(Key("adm-array", 1), np.arange(10))

    listing = eau2("ls", "adm-*", *at(client))
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["KEY", "KIND", "ROWS", "SIZE", "CHUNKS", "REPLICAS", "COPIES", "STATUS"]
    assert [column(lines, "KEY", i) for i in (0, 1)] == ["adm-array@1", "adm-two@2"]
    assert [column(lines, "KIND", i) for i in (0, 1)] == ["ndarray", "frame"]
    assert [column(lines, "ROWS", i, right=True) for i in (0, 1)] == ["-", "6"]
    assert [column(lines, "SIZE", i, right=True) for i in (0, 1)] == [format_bytes(80), format_bytes(140)]
    assert [column(lines, "CHUNKS", i, right=True) for i in (0, 1)] == ["-", "2"]
    assert [column(lines, "COPIES", i, right=True) for i in (0, 1)] == ["1", "2"]
    assert [column(lines, "STATUS", i) for i in (0, 1)] == ["ok", "ok"]
    assert lines[3] == f"2 keys, {format_bytes(220)}"

    document = json.loads(eau2("ls", "--json", *at(client)).stdout)
    mine = {entry["key"]: entry for entry in document["keys"] if entry["name"].startswith("adm-")}
    assert mine["adm-two@2"] == {
        "key": "adm-two@2",
        "name": "adm-two",
        "home": 2,
        "kind": "frame",
        "rows": 6,
        "bytes": 140,
        "chunks": 2,
        "replicas": 2,
        "copies": 2,
        "status": "ok",
    }
    assert mine["adm-array@1"]["kind"] == "ndarray" and mine["adm-array@1"]["chunks"] == 0
    assert mine["adm-array@1"]["rows"] is None

    shown = eau2("info", "adm-two@2", *at(client))
    assert shown.exit_code == 0, shown.output
    head, chunks = shown.stdout.split("\n\n")
    assert head.splitlines() == [
        "key       adm-two@2",
        "kind      frame",
        "status    ok",
        "size      140 B (140 bytes)",
        "replicas  2 asked, 2 on live nodes",
        "rows      6",
        "columns   3: 0 INT, 1 FLOAT, 2 STRING",
        "chunks    2",
    ]
    chunk_lines = chunks.splitlines()
    assert chunk_lines[0].split() == ["CHUNK", "ROWS", "SIZE", "NODES", "SOURCE"]
    assert [column(chunk_lines, "NODES", i) for i in (0, 1)] == ["2,0", "1,2"]  # from its home on
    assert column(chunk_lines, "SOURCE", 1) == f"file://{sor_files[1]} (block at byte 0)"

    details = json.loads(eau2("info", "adm-two@2", "--json", *at(client)).stdout)
    assert details["rows"] == 6 and details["schema"] == "IFS" and details["dropped_rows"] == 0
    assert details["columns"][2] == {"name": "2", "type": "STRING"}
    assert [chunk["nodes"] for chunk in details["chunk_details"]] == [[2, 0], [1, 2]]
    array = eau2("info", "adm-array@1", *at(client))
    assert array.stdout.splitlines()[1] == "kind      ndarray" and "CHUNK" not in array.stdout

    removed = eau2("rm", "adm-*", *at(client))
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.splitlines() == ["deleted adm-array@1", "deleted adm-two@2"]
    assert eau2("ls", "adm-*", *at(client)).stdout == "no keys match\n"
    assert not [info for info in kv.keys() if info.key.name.startswith("adm-")]


def test_rm_reports_what_it_removed_and_what_was_not_there(client):
    kv = eau2_dask.connect(client)
    kv.put(Key("rm-a"), b"x")
    kv.put(Key("rm-b", 1), b"y")
    result = eau2("rm", "rm-a", "nosuchkey", "zz-*", "rm-b@1", *at(client))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["deleted rm-a", "deleted rm-b@1"]
    assert result.stderr == "Error: no key nosuchkey; no key matches zz-* (eau2 ls lists the keys)\n"
    forced = eau2("rm", "--force", "--json", "nosuchkey", *at(client))
    assert forced.exit_code == 0 and json.loads(forced.stdout) == {
        "deleted": [],
        "missing": ["nosuchkey"],
        "failed": [],
    }


def test_nodes(client, monkeypatch):
    result = eau2("nodes", *at(client))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:8] == ["NODE", "NAME", "WORKER", "BUDGET", "MEMORY", "SPILLED", "DISK", "VALUES"]
    reports = json.loads(eau2("nodes", "--json", *at(client)).stdout)["nodes"]
    directory = eau2_dask.ensure_ready(client)
    assert [(r["node"], r["address"], r["up"]) for r in reports] == [
        (n, a, True) for n, a in enumerate(directory)
    ]
    for number, report in enumerate(reports):
        assert column(lines, "NODE", number, right=True) == str(number)
        assert column(lines, "WORKER", number) == report["address"]
        assert column(lines, "NAME", number) == report["name"]
        budget = "unlimited" if report["budget"] is None else format_bytes(report["budget"])
        assert column(lines, "BUDGET", number, right=True) == budget
        assert column(lines, "DURABLE", number) == "no"
        assert column(lines, "DIRECTORY", number) == report["directory"]
        assert set(report) >= {"memory_bytes", "spilled_bytes", "disk_bytes", "values", "reads_local"}
    assert lines[-1].startswith("3 nodes, 3 up: ")

    # A node whose worker is gone is listed as such.
    monkeypatch.setattr(eau2_dask, "ensure_ready", lambda c: [*directory, None])
    gone = eau2("nodes", *at(client))
    assert gone.exit_code == 0, gone.output
    last = gone.stdout.splitlines()[-2]
    assert last.split()[:3] == ["3", "-", "-"] and last.endswith("gone: no worker has its number")
    assert gone.stdout.splitlines()[-1].startswith("4 nodes, 3 up: ")


def test_errors_are_one_line(client, sor_files, tmp_path):
    eau2_dask.connect(client).put(Key("err-taken"), b"x")
    cases = [
        (["info", "nosuchkey"], "Error: no key nosuchkey (eau2 ls lists the keys)"),
        (["rm", "nosuchkey"], "Error: no key nosuchkey (eau2 ls lists the keys)"),
        (
            ["load", str(sor_files[0]), "--key", "err-taken"],
            "Error: key err-taken already has a value: values are write-once (eau2 rm err-taken removes it)",
        ),
        (["info", "../etc"], "Error: Invalid value for 'KEY': key name '../etc' is not valid: "),
        (["info", "x@y"], "Error: Invalid value for 'KEY': 'x@y' is not a key: after '@' comes"),
        (
            ["load", str(sor_files[0]), "--key", "x", "--schema", "IQ"],
            "Error: Invalid value for '--schema': ",
        ),
        (
            ["load", str(sor_files[0]), "--key", "x", "--columns", "0,a"],
            "Error: Invalid value for '--columns': ",
        ),
        (
            ["load", str(sor_files[0]), "--key", "far@7"],
            "Error: key 'far' has home node 7, but there are 3 nodes",
        ),
    ]
    for args, expected in cases:
        result = eau2(*args, *at(client))
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(expected), result.stderr
    empty = tmp_path / "empty.sor"
    empty.write_text("")
    result = eau2("load", str(empty), "--key", "err-empty", *at(client))
    assert result.stderr == f"Error: no rows in {empty}: it is empty; nothing stored\n"
    assert Key("err-empty") not in [info.key for info in eau2_dask.connect(client).keys()]
    eau2_dask.connect(client).delete(Key("err-taken"))


def test_what_can_be_checked_before_connecting_is(tmp_path):
    refused = ["--scheduler", f"tcp://127.0.0.1:{_free_port()}"]  # never reached
    (tmp_path / "folder").mkdir()
    (tmp_path / "not-json").write_text("hello")
    (tmp_path / "other.json").write_text('{"type": "Worker"}')
    for args, expected in [
        (["load", "no/such.sor", "--key", "k", *refused], "Error: no such file: no/such.sor"),
        (
            ["load", str(tmp_path / "folder"), "--key", "k", *refused],
            f"Error: {tmp_path / 'folder'} is a folder",
        ),
        (["load", str(tmp_path / "*.none"), "--key", "k", *refused], "Error: no file matches "),
        (["ls"], "Error: no scheduler given: pass --scheduler ADDRESS or --scheduler-file FILE, or set"),
        (["nodes", "--scheduler-file", "no/such.json"], "Error: --scheduler-file no/such.json: no such file"),
        (["ls", "--scheduler-file", str(tmp_path / "not-json")], "Error: --scheduler-file "),
        (["info", "k", "--scheduler-file", str(tmp_path / "other.json")], "Error: --scheduler-file "),
        (["rm", "k", *refused], f"Error: {refused[0]} {refused[1]}: nothing listens on that port"),
    ]:
        result = eau2(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(expected), result.stderr
    tls = f"tls://127.0.0.1:{_free_port()}"  # with no TLS settings, Dask's client refuses it
    result = eau2("ls", "--scheduler", tls)
    assert (
        result.stderr.startswith(f"Error: --scheduler {tls}: TLS expects") and result.stderr.count("\n") == 1
    )
    for name in ("not-json", "other.json"):
        result = eau2("ls", "--scheduler-file", str(tmp_path / name))
        assert "is not a Dask scheduler file" in result.stderr


def test_a_server_that_resets_connections_is_named():
    """As a scheduler that takes only tls:// does with a tcp:// connection."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def reset() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return  # closed
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()

        threading.Thread(target=reset, daemon=True).start()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        result = eau2("nodes", "--scheduler", address)
    assert result.stderr == (
        f"Error: --scheduler {address}: the server there reset the connection (a scheduler that only "
        "takes tls://?)\n"
    )


def test_a_server_that_is_not_a_scheduler_or_a_scheme_eau2_does_not_take_is_one_line():
    """A banner (as SSH sends) read as a Dask message length asks for exabytes; ucx:// and
    inproc:// fail inside Dask. Each is one line."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def banner() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return  # closed
                with connection:
                    connection.sendall(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
                    time.sleep(0.2)

        threading.Thread(target=banner, daemon=True).start()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        for command in (["ls"], ["nodes"], ["run", "trivial"]):
            result = eau2(*command, "--scheduler", address)
            assert result.exit_code == 1, result.output
            assert result.stderr == (
                f"Error: --scheduler {address}: something answers at {address}, but it is not a "
                "Dask scheduler\n"
            )
    for address in ("ucx://127.0.0.1:8799", "inproc://x"):
        result = eau2("ls", "--scheduler", address)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith(f"Error: --scheduler {address}: unsupported scheme "), result.stderr


def test_the_flag_wins_over_the_file_and_the_file_over_the_variable(client, tmp_path):
    good, bad = client.scheduler.address, f"tcp://127.0.0.1:{_free_port()}"
    good_file, bad_file = tmp_path / "good.json", tmp_path / "bad.json"
    good_file.write_text(json.dumps({"type": "Scheduler", "address": good}))
    bad_file.write_text(json.dumps({"type": "Scheduler", "address": bad}))
    with dask.config.set({"scheduler-address": bad}):  # what DASK_SCHEDULER_ADDRESS sets
        assert eau2("ls", "--json", "--scheduler", good, "--scheduler-file", str(bad_file)).exit_code == 0
        assert eau2("ls", "--json", "--scheduler-file", str(good_file)).exit_code == 0
        wrong = eau2("ls", "--scheduler", bad, "--scheduler-file", str(good_file))
        assert wrong.stderr.startswith(f"Error: --scheduler {bad}: nothing listens")
        wrong = eau2("ls", "--scheduler-file", str(bad_file))
        assert wrong.stderr.startswith(f"Error: --scheduler-file {bad_file} (scheduler {bad}): nothing")
        ran = eau2("run", "trivial", "--json", "--scheduler-file", str(good_file))
        assert ran.exit_code == 0 and "started a local cluster" not in ran.stderr, ran.output
        wrong = eau2("run", "demo", env={"DASK_SCHEDULER_ADDRESS": bad})
        assert (
            wrong.stderr
            == f"Error: DASK_SCHEDULER_ADDRESS={bad}: nothing listens on that port (connection refused)\n"
        )
        wrong = eau2("ls", env={"DASK_SCHEDULER_ADDRESS": bad})
        assert wrong.stderr.startswith(f"Error: DASK_SCHEDULER_ADDRESS={bad}: nothing listens")
    with dask.config.set({"scheduler-address": good}):
        assert json.loads(eau2("nodes", "--json").stdout)["nodes"][2]["up"]
        # eau2 run uses it too, instead of starting a local cluster of its own.
        result = eau2("run", "trivial", "--json")
        assert result.exit_code == 0, result.output
        assert "started a local cluster" not in result.stderr
        assert json.loads(result.stdout.splitlines()[-1]) == {"sum": 499999500000}
        assert len(client.scheduler_info()["workers"]) == 3


def test_ctrl_c_exits_130_quietly(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from eau2.cli import admin

    monkeypatch.setattr(admin, "node_client", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    try:
        result = eau2("ls")
    finally:
        signal.signal(signal.SIGINT, handler)  # the command arms a second Ctrl-C to end at once
    assert result.exit_code == 130 and result.output == ""


def test_ctrl_c_ends_the_command_at_once_and_quietly():
    """The installed command, interrupted while it waits for a server that never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        command = subprocess.Popen(
            [_installed(), "ls", "--scheduler", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # into the handshake, which waits up to 10 s
        assert command.poll() is None
        command.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = command.communicate(timeout=30)
    assert command.returncode == 130 and time.monotonic() - started < 2
    assert out == "" and err == ""


def test_the_command_against_a_real_scheduler_file_and_the_variable(tmp_path):
    with SchedulerFileCluster(tmp_path) as cluster:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "rows.sor").write_text(ROWS * 100)
        by_file = ["--scheduler-file", str(cluster.scheduler_file)]
        loaded = cluster.eau2("load", "data/rows.sor", "--key", "real", "--json", *by_file)  # a relative path
        assert loaded.returncode == 0, loaded.stderr
        record = json.loads(loaded.stdout)
        assert record["rows"] == 300 and record["files"] == [str(tmp_path / "data" / "rows.sor")]

        (tmp_path / "data" / "some-garbage.sor").write_text(ROWS + "not a row\n")
        (tmp_path / "data" / "all-garbage.sor").write_text("not a row\n")
        partly = cluster.eau2("load", "data/some-garbage.sor", "--key", "partly", *by_file)
        assert partly.returncode == 0, partly.stderr
        assert partly.stdout.split(": ")[1].startswith("3 rows (1 line dropped), 3 columns (IFS)")
        warning = partly.stderr.splitlines()
        assert len(warning) == 1 and warning[0].startswith("eau2: SorWarning: 1 line(s) dropped"), warning
        nothing = cluster.eau2("load", "data/all-garbage.sor", "--key", "nothing", *by_file)
        assert nothing.returncode == 1
        last = nothing.stderr.splitlines()[-1]
        assert last == "Error: no rows in data/all-garbage.sor: every line (1) was dropped; nothing stored"
        assert "Traceback" not in nothing.stderr

        variable = {"DASK_SCHEDULER_ADDRESS": cluster.address}
        listing = cluster.eau2("ls", env=variable)
        assert listing.returncode == 0, listing.stderr
        assert [line.split()[:2] for line in listing.stdout.splitlines()[1:3]] == [
            ["partly", "frame"],
            ["real", "frame"],
        ]
        nodes = json.loads(cluster.eau2("nodes", "--json", env=variable).stdout)["nodes"]
        assert sorted(node["name"] for node in nodes) == ["w0", "w1"]
        assert sum(node["values"] for node in nodes) >= 2  # a chunk and the frame's metadata

        ran = cluster.eau2("run", "trivial", "--json", env=variable)
        assert ran.returncode == 0, ran.stderr
        assert "started a local cluster" not in ran.stderr
        assert json.loads(ran.stdout.splitlines()[-1]) == {"sum": 499999500000}

        assert cluster.eau2("rm", "real", "partly", *by_file).stdout == "deleted real\ndeleted partly\n"
        assert cluster.eau2("ls", "--json", *by_file).stdout.strip() == '{\n  "keys": []\n}'


class SchedulerFileCluster:
    """`dask scheduler --scheduler-file FILE` and two `dask worker --scheduler-file FILE
    --preload eau2`, on 127.0.0.1; closed with every process it started."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self._before = children()
        self._log = open(folder / "cluster.log", "w")  # noqa: SIM115 - closed in close()
        scheduler = ["--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(self.scheduler_file)]
        self._processes = [self._start("scheduler", *scheduler)]
        try:
            self.address = self._wait_for_address()
            worker = ["--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1", "--nthreads", "1"]
            worker += ["--memory-limit", "1GB", "--preload", "eau2"]
            for number in range(2):
                self._processes.append(self._start("worker", *worker, "--name", f"w{number}"))
            self._wait_for_workers(2)
        except BaseException:
            self.close()
            raise

    def _start(self, kind: str, *arguments: str) -> subprocess.Popen:
        module = f"distributed.cli.dask_{kind}"
        command = [sys.executable, "-m", module, "--no-dashboard", *arguments]
        return subprocess.Popen(command, stdout=self._log, stderr=self._log, cwd=self.folder)

    def _wait_for_address(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise AssertionError(f"the scheduler wrote no {self.scheduler_file} within {timeout} s")

    def _wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(count, timeout=120)

    def eau2(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """The installed `eau2` command, run in this cluster's folder."""
        environment = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"} | (env or {})
        return subprocess.run(
            [_installed(), *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.folder,
            env=environment,
        )

    def close(self) -> None:
        stop_cluster(self._processes)
        self._log.close()
        assert_no_new_processes(self._before)

    def __enter__(self) -> "SchedulerFileCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _installed() -> str:
    """The `eau2` command installed beside this Python."""
    found = shutil.which("eau2", path=str(Path(sys.executable).parent))
    assert found, "the eau2 command is not installed beside this Python (pip install -e .)"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_option_of_every_command_is_described():
    def commands(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from commands(sub, [*path, name])

    for path, command in commands(main, ["eau2"]):
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"
        shown = eau2(*path[1:], "--help").stdout
        assert "2020" not in shown and "seeds" not in shown and "original" not in shown, path


def test_a_linus_time_out_names_the_timeout_given(client, tmp_path, monkeypatch):
    (tmp_path / "projects.ltgt").write_text('<0> <"p0">\n<1> <"p1">\n')
    (tmp_path / "users.ltgt").write_text('<0> <"u0">\n')
    (tmp_path / "commits.ltgt").write_text("<1> <0> <0>\n")

    def too_slow(app_cls, *args, timeout=None, **kwargs):
        raise TimeoutError(f"Linus did not finish within {timeout} s; still running: nodes [0]")

    monkeypatch.setattr(eau2_dask, "run", too_slow)
    before = eau2_dask.connect(client).keys()
    result = eau2("run", "linus", "--data", str(tmp_path), "--timeout", "60.3", *at(client))
    assert result.exit_code == 1, result.output
    assert result.stderr == "Error: Linus did not finish within 60.3 s; still running: nodes [0]\n"
    assert eau2_dask.connect(client).keys() == before  # the frames it read are removed


def test_rm_patterns_match_name_at_0_and_rm_goes_on_past_a_key_it_cannot_remove(client, monkeypatch):
    kv = eau2_dask.connect(client)
    kv.put(Key("rm0-a"), b"x")
    kv.put(Key("rm0-b", 1), b"y")
    result = eau2("rm", "rm0-*@0", *at(client))
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted rm0-a\n"
    listing = eau2("ls", "--json", "*@0", *at(client))
    assert "rm0-b@1" not in listing.stdout

    # A key whose delete fails (as one homed on a node number past the cluster's does) is
    # said at the end, after the others are removed, even with --force.
    for name in ("rm1-a", "rm1-b", "rm1-c"):
        kv.put(Key(name), b"x")
    real = eau2_dask.connect

    class Refusing:
        def __init__(self, client):
            self.kv = real(client)

        def keys(self):
            return self.kv.keys()

        def delete(self, key):
            if key.name in ("rm1-a", "rm1-b"):
                raise ValueError(f"key {key.name!r} has home node 99, but there are 3 nodes")
            return self.kv.delete(key)

    monkeypatch.setattr(eau2_dask, "connect", Refusing)
    result = eau2("rm", "-f", "rm1-*", *at(client))
    assert result.exit_code == 1
    assert result.stdout == "deleted rm1-c\n"
    assert result.stderr == (
        "Error: cannot remove rm1-a: key 'rm1-a' has home node 99, but there are 3 nodes\n"
        "Error: cannot remove rm1-b: key 'rm1-b' has home node 99, but there are 3 nodes\n"
    )
    monkeypatch.setattr(eau2_dask, "connect", real)
    assert eau2("rm", "rm1-*", "rm0-b@1", *at(client)).exit_code == 0


def test_load_of_a_glob_counts_the_files_it_matched_and_reports_the_copies_made(client, sor_files):
    pattern = str(sor_files[0].parent / "*.sor")
    result = eau2("load", pattern, "--key", "glob-a", "--replicas", "5", *at(client))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loaded glob-a from 2 files in ")
    assert "of 3 copies (5 asked, more than the nodes)" in result.stdout
    result = eau2("load", pattern, "--key", "glob-b", "--json", *at(client))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == [str(path) for path in sor_files]
    assert eau2("rm", "glob-a", "glob-b", *at(client)).exit_code == 0


def test_a_closed_standard_output_ends_the_command_quietly(client, sor_files):
    """`eau2 info KEY | head -1`: the reader has gone when the command writes."""
    assert eau2("load", str(sor_files[0]), "--key", "pipe-a", *at(client)).exit_code == 0
    for command in (["info", "pipe-a"], ["ls"]):
        process = subprocess.Popen(
            [_installed(), *command, *at(client)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process.stdout.close()  # before it writes: it connects to the scheduler first
        err = process.stderr.read()
        process.wait(timeout=60)
        process.stderr.close()
        assert process.returncode == 141, err
        assert err == ""
    assert eau2("rm", "pipe-a", *at(client)).exit_code == 0


def test_sigterm_during_a_load_leaves_no_partial_frame(client, tmp_path):
    """As `timeout 3 eau2 load big.ltgt --key big` does."""
    big = tmp_path / "big.ltgt"
    big.write_text("<1> <2> <3>\n" * 4_000_000)
    kv = eau2_dask.connect(client)
    before = kv.keys()
    command = subprocess.Popen(
        [_installed(), "load", str(big), "--key", "sig-big", "--blocksize", "256KiB", *at(client)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while Key("sig-big") not in [info.key for info in kv.keys()] and command.poll() is None:
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.01)
    command.send_signal(signal.SIGTERM)
    out, err = command.communicate(timeout=30)
    assert command.returncode == 128 + signal.SIGTERM, (out, err)
    assert out == "" and err == ""
    assert kv.keys() == before
