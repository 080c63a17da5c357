"""Node directories on a real cluster: a whole cluster stopped and started again serves every
frame from its workers' directories without reading a file again; a worker killed -9 comes
back with its values; a damaged file is repaired from a copy; a worker whose eau2 options are
invalid never joins."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

import eau2_dask
from eau2 import DataFrame, Key, read_sor
from tests.dask_clusters import RealCluster
from tests.test_dask_faults import sor_file

NAMES = ["a", "b", "c"]
WORKER = ["--host", "127.0.0.1", "--no-dashboard", "--no-nanny", "--name", "bad", "--preload", "eau2"]


def digest(table) -> str:
    """A checksum of a table's content."""
    return hashlib.sha256(table.to_pandas().to_csv(index=False).encode()).hexdigest()


def durable_cluster(tmp_path, log: str, order: list[str]) -> RealCluster:
    return RealCluster(
        tmp_path / log,
        names=order,
        preload_scheduler=True,
        worker_flags=[["--eau2-directory", str(tmp_path / "nodes" / name)] for name in order],
    )


def test_a_cluster_restarted_with_its_directories_serves_every_frame(tmp_path):
    path = tmp_path / "data.sor"
    sor_file(path, 60_000)
    expected = read_sor(str(path)).to_arrow()
    with durable_cluster(tmp_path, "first.log", NAMES) as cluster:
        eau2_dask.read_sor(str(path), "from-file", client=cluster.client, blocksize=100_000)
        kv = eau2_dask.connect(cluster.client)
        kv.put(Key("in-memory"), DataFrame(expected), replicas=2)
        kv.put(Key("bytes", 2), b"kept")
        homes = {name: kv.get(Key(name)).chunk_home(0) for name in ("from-file", "in-memory")}
        before = {name: digest(kv.get(Key(name)).to_arrow()) for name in ("from-file", "in-memory")}
    path.unlink()  # nothing may be read again from the file: it is gone

    # Workers join in another order: each claims the number its directory records.
    with durable_cluster(tmp_path, "second.log", list(reversed(NAMES))) as cluster:
        kv = eau2_dask.connect(cluster.client)
        assert {info.key.name: info.status for info in kv.keys()} == {
            "from-file": "ok",
            "in-memory": "ok",
            "bytes": "ok",
        }
        for name in ("from-file", "in-memory"):
            frame = kv.get(Key(name))
            assert frame.chunk_home(0) == homes[name]
            assert digest(frame.to_arrow()) == before[name]
        assert kv.get(Key("bytes", 2)) == b"kept"

        # kill -9: the nanny's new worker opens the same directory and serves it again.
        old = cluster.directory()
        cluster.kill(1)
        cluster.wait_for(lambda: cluster.directory()[1] not in (None, old[1]), what="the nanny's restart")
        assert digest(kv.get(Key("in-memory")).to_arrow()) == before["in-memory"]
        assert {info.key.name: info.copies for info in kv.keys()}["from-file"] >= 1


def test_a_damaged_file_is_repaired_from_a_copy(tmp_path):
    with durable_cluster(tmp_path, "first.log", NAMES) as cluster:
        kv = eau2_dask.connect(cluster.client)
        frame = DataFrame(read_sor(sor_file(tmp_path / "data.sor", 20_000)).to_arrow())
        kv.put(Key("twice"), frame, replicas=2)
        expected = digest(kv.get(Key("twice")).to_arrow())
    holding = [name for name in NAMES if list((tmp_path / "nodes" / name / "values").glob("*.table"))]
    assert len(holding) == 2  # the chunk's two copies
    for victim in (tmp_path / "nodes" / holding[0] / "values").glob("*.table"):  # found by its scrub
        victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")  # same size, wrong bytes
    with durable_cluster(tmp_path, "second.log", NAMES) as cluster:
        kv = eau2_dask.connect(cluster.client)
        assert digest(kv.get(Key("twice")).to_arrow()) == expected
        cluster.wait_for(
            lambda: {i.key.name: (i.status, i.copies) for i in kv.keys()} == {"twice": ("ok", 2)},
            what="the repair of the damaged copies",
        )
    log = (tmp_path / "second.log").read_text()
    assert "fails its checksum" in log


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--eau2-budget", "lots"], "the eau2 budget 'lots' is neither a size"),
        (["--eau2-directory", "/proc/eau2"], "cannot use /proc/eau2 for eau2's files"),
    ],
)
def test_a_worker_with_invalid_eau2_options_never_joins(tmp_path, flags, why):
    with RealCluster(tmp_path / "cluster.log", workers=1) as cluster:
        worker = subprocess.run(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.address, *WORKER, *flags],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert worker.returncode != 0
        assert f"eau2: worker bad cannot be an eau2 node: {why}" in worker.stderr
        assert len(cluster.client.scheduler_info()["workers"]) == 1
