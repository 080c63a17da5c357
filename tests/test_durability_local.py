"""What survives a node loss, on in-process nodes: replicas, failover, rebuild from files,
repair, `DataLost`, listings and deletes of damaged frames, and bounded waits."""

from __future__ import annotations

import math
import random
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from eau2 import DataFrame, DataLost, Key, KVStore, NodeLost
from eau2.store.inprocess import InProcessCluster

CHUNK_BYTES = 4096


@pytest.fixture
def cluster():
    with InProcessCluster(4) as nodes:
        yield nodes


def store(cluster: InProcessCluster, node: int | None = None, replicas: int = 1) -> KVStore:
    return KVStore(cluster.transport(node), chunk_bytes=CHUNK_BYTES, replicas=replicas)


def ramp(n: int = 20_000) -> DataFrame:
    return DataFrame.from_arrow(pa.table({"x": np.arange(n), "y": np.arange(n) * 0.5}))


def sor_file(tmp_path, rows: int = 5_000):
    path = tmp_path / "data.sor"
    path.write_bytes(b"".join(b'<%d> <"s%d"> <%d.25>\n' % (i, i % 13, i) for i in range(rows)))
    return path


def test_two_replicas_survive_the_loss_of_any_node(cluster):
    kv = store(cluster, replicas=2)
    kv.put(Key("frame", 1), ramp())
    kv.put(Key("blob", 2), b"payload", replicas=2)
    frame = kv.get(Key("frame", 1))
    assert frame.nchunks > 4 and all(len(frame.chunk_holders(i)) == 2 for i in range(frame.nchunks))
    expected = frame.to_arrow()
    for lost in range(4):
        cluster.kill(lost)
        reader = store(cluster)  # a fresh cache
        assert reader.get(Key("frame", 1)).to_arrow().equals(expected)
        assert reader.get(Key("blob", 2)) == b"payload"
        cluster.restart(lost)  # back, but empty: repair restores the second copies
        assert reader.repair().copied > 0


def test_a_lost_chunk_with_no_copy_and_no_file_is_data_lost_naming_frame_chunks_and_node(cluster):
    kv = store(cluster)
    kv.put(Key("fragile"), ramp())
    frame = kv.get(Key("fragile"))
    on_two = [i for i in range(frame.nchunks) if frame.chunk_home(i) == 2]
    cluster.kill(2)
    started = time.monotonic()
    with pytest.raises(DataLost, match=r"chunks? .* of frame 'fragile' lost: held by node 2") as caught:
        store(cluster).get(Key("fragile")).to_arrow()
    assert time.monotonic() - started < 5
    assert caught.value.chunks == [on_two[0]] and caught.value.nodes == [2]
    assert frame.chunk(on_two[0] - 1).nrows > 0  # chunks elsewhere still read


def test_chunks_loaded_from_files_are_rebuilt_when_every_copy_is_lost(cluster, tmp_path):
    path = sor_file(tmp_path)
    kv = store(cluster)
    loaded = kv.read_sor(str(path), Key("file"), blocksize=10_000)
    expected = loaded.to_arrow()
    assert loaded.nchunks > 4
    cluster.kill(1)
    cluster.kill(3)
    assert store(cluster).get(Key("file")).to_arrow().equals(expected)


def test_a_changed_or_missing_file_is_data_lost_saying_so(cluster, tmp_path):
    path = sor_file(tmp_path)
    kv = store(cluster)
    kv.read_sor(str(path), Key("file"), blocksize=10_000)
    path.write_bytes(path.read_bytes().replace(b"<7>", b"<8>"))
    cluster.kill(1)
    with pytest.raises(DataLost, match=r"data\.sor changed since it was loaded"):
        store(cluster).get(Key("file")).to_arrow()
    path.unlink()
    with pytest.raises(DataLost, match=r"data\.sor is gone"):
        store(cluster).get(Key("file")).to_arrow()


def test_metadata_survives_the_loss_of_its_home(cluster):
    kv = store(cluster)
    kv.put(Key("small", 3), DataFrame.from_array([1, 2, 3]))
    cluster.kill(3)
    frame = store(cluster).get(Key("small", 3))
    with pytest.raises(DataLost):  # its one chunk was on node 3, with no copy
        frame.to_arrow()
    assert store(cluster).keys()[0].status == "lost"


def test_keys_tell_complete_degraded_lost_and_partial_frames(cluster, tmp_path):
    kv = store(cluster)
    kv.put(Key("twice"), ramp(), replicas=2)
    kv.put(Key("once"), ramp())
    kv.read_sor(str(sor_file(tmp_path)), Key("from-file"), blocksize=10_000)
    writer = kv.writer(Key("unfinished"))
    writer.put_chunk(0, pa.table({"x": [1, 2]}))
    listing = {info.key.name: info for info in kv.keys()}
    assert {name: info.status for name, info in listing.items()} == {
        "twice": "ok",
        "once": "ok",
        "from-file": "ok",
        "unfinished": "partial",
    }
    assert (listing["twice"].replicas, listing["once"].replicas) == (2, 1)
    cluster.kill(1)
    statuses = {info.key.name: info.status for info in kv.keys()}
    assert statuses == {"twice": "degraded", "once": "lost", "from-file": "degraded", "unfinished": "partial"}


def test_delete_frees_what_is_left_of_lost_and_partial_frames(cluster):
    kv = store(cluster)
    kv.put(Key("once"), ramp())
    writer = kv.writer(Key("unfinished"))
    writer.put_chunk(0, pa.table({"x": [1, 2]}))
    cluster.kill(2)
    kv.delete(Key("once"))
    kv.delete(Key("unfinished"))
    assert kv.keys() == []
    assert all(cluster.transport(None).keys(node) == [] for node in (0, 1, 3))


def test_repair_restores_replicas_and_metadata(cluster, tmp_path):
    kv = store(cluster, replicas=2)
    kv.put(Key("twice"), ramp())
    kv.read_sor(str(sor_file(tmp_path)), Key("from-file"), blocksize=10_000, replicas=1)
    expected = {name: kv.get(Key(name)).to_arrow() for name in ("twice", "from-file")}
    cluster.kill(0)
    report = store(cluster).repair()
    assert report.copied > 0 and report.rebuilt > 0 and not report.lost
    assert {info.key.name: info.status for info in store(cluster).keys()} == {
        "twice": "ok",
        "from-file": "ok",
    }
    for name, table in expected.items():
        frame = store(cluster).get(Key(name))
        assert all(0 not in frame.chunk_holders(i) for i in range(frame.nchunks))
        assert frame.to_arrow().equals(table)
    assert store(cluster).repair().copied == 0  # nothing left to do


def test_repair_reports_what_cannot_be_repaired(cluster):
    kv = store(cluster)
    kv.put(Key("once"), ramp())
    cluster.kill(1)
    report = kv.repair()
    assert list(report.lost) == ["once"] and report.lost["once"]


def test_values_put_while_their_home_is_gone_go_to_the_next_node(cluster):
    cluster.kill(1)
    kv = store(cluster)
    kv.put(Key("homeless", 1), b"here")
    assert kv.get(Key("homeless", 1)) == b"here"
    cluster.restart(1)
    assert kv.get(Key("homeless", 1)) == b"here"
    with pytest.raises(Exception, match="already has a value"):
        kv.put(Key("homeless", 1), b"again")


def test_a_stored_frame_metadata_is_not_a_value(cluster):
    kv = store(cluster)
    kv.put(Key("frame"), ramp(100))
    with pytest.raises(TypeError, match="metadata"):
        kv.put(Key("alias"), kv.get(Key("frame")).meta)


@pytest.mark.parametrize("timeout", [float("nan"), -1, "5", True])
def test_timeouts_are_checked(cluster, timeout):
    with pytest.raises((TypeError, ValueError), match="timeout"):
        store(cluster).get_and_wait(Key("x"), timeout=timeout)


def test_a_wait_on_a_node_that_dies_fails_at_once(cluster):
    kv = store(cluster)
    threading.Timer(0.3, cluster.kill, args=(2,)).start()
    started = time.monotonic()
    with pytest.raises(NodeLost, match="node 2"):
        kv.get_and_wait(Key("never", 2), timeout=30)
    assert time.monotonic() - started < 5


def test_an_infinite_timeout_waits_like_none(cluster):
    threading.Timer(0.2, store(cluster).put, args=(Key("late"), b"x")).start()
    assert store(cluster).get_and_wait(Key("late"), timeout=math.inf) == b"x"


def test_random_kills_restarts_and_repairs(tmp_path):
    """Several frames (replicas 1 and 2, from files and from puts); random kills, restarts
    and repairs; after each, every frame reads back equal, or `DataLost` names it exactly
    when one of its chunks truly has no copy and no file."""
    rng = random.Random(7)
    path = sor_file(tmp_path, 3_000)
    with InProcessCluster(4) as cluster:
        kv = store(cluster)
        kv.put(Key("put-1"), ramp(8_000))
        kv.put(Key("put-2"), ramp(9_000), replicas=2)
        kv.read_sor(str(path), Key("file-1"), blocksize=8_000)
        kv.read_sor(str(path), Key("file-2"), blocksize=8_000, replicas=2)
        expected = {name: kv.get(Key(name)).to_arrow() for name in ("put-1", "put-2", "file-1", "file-2")}
        for _ in range(25):
            live = kv.transport.live_nodes()
            action = rng.choice(["kill", "restart", "repair"])
            if action == "kill" and len(live) > 2:
                cluster.kill(rng.choice(live))
            elif action == "restart":
                for node in range(4):
                    cluster.restart(node)
            else:
                kv.repair()
            truth = {info.key.name: info.status for info in kv.keys()}
            for name, table in expected.items():
                if name not in truth:
                    continue  # every copy of its metadata was lost: it is gone from listings
                reader = store(cluster)
                try:
                    assert reader.get(Key(name)).to_arrow().equals(table), name
                    assert truth[name] != "lost", name
                except DataLost as lost:
                    assert truth[name] == "lost" and lost.key == Key(name), (name, truth)
                    kv.delete(Key(name))
                    del expected[name]
                    break
        assert "file-1" in expected and "file-2" in expected  # files always rebuild
