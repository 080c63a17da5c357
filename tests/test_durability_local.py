"""What survives a node loss, on in-process nodes: replicas, failover, rebuild from files,
repair, `DataLost`, listings and deletes of damaged frames, and bounded waits."""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import threading
import time
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from eau2 import ApplicationError, DataFrame, DataLost, Key, KVStore, NodeLost, SorError
from eau2 import read_sor as read_sor_local
from eau2.checksums import KIND
from eau2.sor.origin import read_block
from eau2.store.inprocess import InProcessCluster, InProcessTransport
from eau2.store.values import FrameMeta

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
    assert caught.value.chunks == on_two and caught.value.nodes == [2]  # every lost chunk, named
    assert frame.chunk(on_two[0] - 1).nrows > 0  # chunks elsewhere still read
    assert on_two == list(range(on_two[0], on_two[-1] + 1))  # a node holds a run of chunks
    assert str(caught.value).startswith(f"chunks {on_two[0]}-{on_two[-1]} of frame 'fragile'")


def test_chunks_loaded_from_files_are_rebuilt_when_every_copy_is_lost(cluster, tmp_path):
    path = sor_file(tmp_path)
    kv = store(cluster)
    loaded = kv.read_sor(str(path), Key("file"), blocksize=10_000)
    expected = loaded.to_arrow()
    assert loaded.nchunks > 4
    cluster.kill(1)
    cluster.kill(3)
    assert store(cluster).get(Key("file")).to_arrow().equals(expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data + b"<1> <2>\n", r"data\.sor changed since it was loaded \(size \d+ -> \d+"),
        (lambda data: data.replace(b'"s', b'"t'), r"data\.sor \(block at byte \d+\): its bytes changed"),
    ],
    ids=["other size", "same size"],
)
def test_a_changed_or_missing_file_is_data_lost_saying_so(cluster, tmp_path, change, message):
    path = sor_file(tmp_path)
    kv = store(cluster)
    kv.read_sor(str(path), Key("file"), blocksize=10_000)
    path.write_bytes(change(path.read_bytes()))
    cluster.kill(1)
    with pytest.raises(DataLost, match=message):
        store(cluster).get(Key("file")).to_arrow()
    path.unlink()
    with pytest.raises(DataLost, match=r"data\.sor is gone"):
        store(cluster).get(Key("file")).to_arrow()


def test_a_file_whose_times_alone_differ_is_rebuilt_from(cluster, tmp_path):
    """Its bytes are those loaded (their checksum says so): a copy of the file on each
    machine, or an object store's listing against its HEAD, differ in times alone."""
    path = sor_file(tmp_path)
    kv = store(cluster)
    expected = kv.read_sor(str(path), Key("file"), blocksize=10_000).to_arrow()
    os.utime(path, (1, 1))
    cluster.kill(1)
    assert store(cluster).get(Key("file")).to_arrow().equals(expected)


class HungNodes(InProcessTransport):
    """A client's view of in-process nodes some of which are `hung`, as the Dask transport
    sees them: impatient and quick calls to them fail with `NodeLost` (as after their 10 s
    and a question), `answering` names those found hung (`suspected`, the hung ones by
    default); patient calls are answered, as by a node that resumed (unless not `resumes`:
    then they fail the test, as a wait for Dask to give up on the worker). Records the calls."""

    def __init__(
        self,
        cluster: InProcessCluster,
        hung: set[int],
        suspected: set[int] | None = None,
        resumes: bool = True,
    ):
        super().__init__(cluster, None)
        self.hung, self.suspected = hung, hung if suspected is None else suspected
        self.resumes = resumes
        self.calls: list[tuple[str, int]] = []

    def answering(self, node: int) -> bool:
        return node not in self.suspected

    def get(self, node: int, key: Key, impatient: bool = False):
        self.calls.append(("impatient get" if impatient else "get", node))
        if impatient and node in self.hung:
            raise NodeLost(node, f"node {node} did not answer")
        assert self.resumes or node not in self.hung, f"waited for hung node {node}"
        return super().get(node, key)

    def exists(self, node: int, key: Key) -> bool:
        self.calls.append(("exists", node))
        if node in self.hung:
            raise NodeLost(node, f"node {node} did not answer")
        return super().exists(node, key)

    def rebuild(self, node: int, key: Key, origin) -> None:
        self.calls.append(("rebuild", node))
        super().rebuild(node, key, origin)

    def keys(self, node: int):
        self.calls.append(("keys", node))
        if node in self.hung:
            raise NodeLost(node, f"node {node} did not answer")
        return super().keys(node)


def test_a_chunk_on_a_hung_node_is_rebuilt_on_a_node_that_answers(cluster, tmp_path):
    path = sor_file(tmp_path)
    loaded = store(cluster).read_sor(str(path), Key("file"), blocksize=10_000)
    index = next(i for i, chunk in enumerate(loaded.meta.chunks) if chunk.holders == (1,))
    transport = HungNodes(cluster, hung={1, 2})  # node 2 was found hung by an earlier read
    frame = KVStore(transport).get(Key("file"))
    assert frame.chunk(index).to_arrow().equals(loaded.chunk(index).to_arrow())
    assert [call for call in transport.calls if call[1] in (1, 2)] == []  # neither asked, nor waited on
    assert [call for call in transport.calls if call[0] == "rebuild"] in ([("rebuild", 0)], [("rebuild", 3)])


def test_a_chunk_whose_every_holder_is_hung_waits_for_them(tmp_path):
    with InProcessCluster(2) as nodes:
        path = sor_file(tmp_path)
        loaded = KVStore(nodes.transport(None)).read_sor(str(path), Key("file"), blocksize=10_000, replicas=2)
        transport = HungNodes(nodes, hung={0, 1})
        frame = KVStore(transport).get(Key("file"))
        assert frame.chunk(0).to_arrow().equals(loaded.chunk(0).to_arrow())
        assert transport.calls[-1][0] == "get"  # a patient one: no node to rebuild it on


def test_a_rebuild_whose_frame_metadata_holders_are_all_hung_fails_naming_them(tmp_path):
    """The frame's metadata cannot be checked, so its chunk is not read again from its
    file; the read says so at once rather than wait minutes for Dask to give up on them."""
    with InProcessCluster(3) as nodes:
        path = str(sor_file(tmp_path))
        loaded = KVStore(nodes.transport(None)).read_sor(path, Key("file"), blocksize=10_000)
        index = next(i for i, chunk in enumerate(loaded.meta.chunks) if chunk.holders == (1,))
        frame = KVStore(nodes.transport(None)).get(Key("file"))  # looked up before they hung
        transport = HungNodes(nodes, hung={0, 1}, resumes=False)  # the metadata's holders
        frame.kv = KVStore(transport)
        with pytest.raises(NodeLost, match=r"metadata cannot be checked: node 0, which holds it, does not"):
            frame.chunk(index)
        assert [call for call in transport.calls if call[1] in (0, 1)] == []  # known hung: not asked


def test_a_frame_whose_metadata_holders_are_hung_is_listed_unknown_not_partial(tmp_path):
    """Its chunks elsewhere have no metadata in sight, but it may be committed: `partial`
    would invite a delete of a whole frame."""
    with InProcessCluster(3) as nodes:
        KVStore(nodes.transport(None)).read_sor(str(sor_file(tmp_path)), Key("file"), blocksize=10_000)
        listing = KVStore(HungNodes(nodes, hung={0, 1})).keys()
        assert [(info.key.name, info.status) for info in listing] == [("file", "unknown")]


def test_reading_a_frame_deleted_meanwhile_says_so_at_once_though_its_holder_is_hung(cluster):
    kv = store(cluster)
    kv.put(Key("kept"), ramp())
    frame = kv.get(Key("kept"))
    index = next(i for i, chunk in enumerate(frame.meta.chunks) if chunk.holders == (2,))
    kv.delete(Key("kept"))
    frame.kv = KVStore(HungNodes(cluster, hung={2}, resumes=False))
    with pytest.raises(KeyError, match="'kept' is no longer stored"):
        frame.chunk(index)


def test_a_delete_says_which_nodes_did_not_answer_and_may_keep_copies(cluster):
    kv = store(cluster)
    kv.put(Key("v"), np.arange(3), replicas=2)
    kv.put(Key("frame"), ramp())  # one copy of each chunk, some on node 1: not lost, unknown
    hung = KVStore(HungNodes(cluster, hung={1}))
    assert {info.key.name: info.status for info in hung.keys()} == {"frame": "unknown", "v": "degraded"}
    with pytest.raises(NodeLost, match=r"'v' was removed from every node but node\(s\) 1, which do not"):
        hung.delete(Key("v"))
    assert [node for node in range(4) if cluster.transport(None).exists(node, Key("v"))] == [1]


def test_a_listing_does_not_ask_a_node_found_hung_until_it_answers_again(cluster):
    store(cluster).put(Key("v"), np.arange(3), replicas=2)
    transport = HungNodes(cluster, hung=set(), suspected={1})  # found hung: would answer now
    assert [(info.key.name, info.copies, info.status) for info in KVStore(transport).keys()] == [
        ("v", 1, "degraded")
    ]
    assert ("keys", 1) not in transport.calls


def test_a_value_is_asked_of_its_home_even_one_found_hung_before(cluster):
    """The home may have answered again since; a copy elsewhere may be older (a delete
    while that node was down is not remembered)."""
    cluster.transport(1).put(1, Key("v", 1), np.array([2]), replicas=2)
    cluster.transport(1).put(2, Key("v", 1), np.array([1]), replicas=2)  # an older copy
    transport = HungNodes(cluster, hung=set(), suspected={1})
    assert list(KVStore(transport).get(Key("v", 1))) == [2]


def test_errors_naming_lost_data_nodes_and_failed_runs_pickle_as_they_were():
    """As multiprocessing and other task runners send them between processes."""
    original = DataLost(Key("f", 1), [2, 3], [1], "no file")
    original.add_note("while reading it")
    lost = pickle.loads(pickle.dumps(original))
    assert lost.__notes__ == ["while reading it"]
    assert (lost.key, lost.chunks, lost.nodes, str(lost)) == (Key("f", 1), [2, 3], [1], str(original))
    gone = pickle.loads(pickle.dumps(NodeLost(3, "key 'x': its home node 3 is gone")))
    assert (gone.node, str(gone)) == (3, "key 'x': its home node 3 is gone")
    assert str(pickle.loads(pickle.dumps(NodeLost(2)))) == str(NodeLost(2))
    failed = pickle.loads(pickle.dumps(ApplicationError(1, "ValueError: bad row")))
    assert (failed.node, str(failed)) == (1, "node 1: ValueError: bad row")


def test_data_lost_names_scattered_chunks_briefly():
    lost = DataLost(Key("f"), [0, 1, 2, 5, *range(10, 40, 2)], [1, 2, 3], "gone")
    assert str(lost).startswith("chunks 0-2, 5, 10, 12, 14, 16, 18, 20, ... (19 in all) of frame 'f'")
    assert "held by nodes 1-3, now gone; gone" in str(lost)


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
        for i in range(frame.nchunks):  # the node first placed on stays first, live or not
            assert len([node for node in frame.chunk_holders(i) if node != 0]) == frame.replicas
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


def raw_keys(cluster: InProcessCluster) -> list:
    transport = cluster.transport(None)
    return [info.key for node in transport.live_nodes() for info in transport.keys(node)]


def test_a_write_whose_only_copy_of_a_chunk_died_is_taken_back(cluster):
    kv = store(cluster)
    with pytest.raises(NodeLost, match="write was taken back"), kv.writer(Key("f"), replicas=2) as writer:
        writer.put_chunk(0, pa.table({"x": [1, 2]}))
        cluster.kill(writer.home_of(0))  # before its copy is made
        writer.commit("I", ["x"])
    assert kv.keys() == [] and raw_keys(cluster) == []
    kv.put(Key("f"), DataFrame.from_array([1, 2]), replicas=2)  # the caller can write it again


class InterruptedAfter(InProcessTransport):
    """A transport whose `puts`-th put of frame metadata is interrupted (Ctrl-C)."""

    def __init__(self, cluster, puts: int):
        super().__init__(cluster, None)
        self.puts = puts

    def put(self, node, key, value, replicas=1):
        if not key.is_internal and not isinstance(value, bytes):
            self.puts -= 1
            if self.puts == 0:
                raise KeyboardInterrupt
        super().put(node, key, value, replicas)


def test_an_interrupt_after_the_metadata_is_written_keeps_the_frame(cluster):
    kv = KVStore(InterruptedAfter(cluster, puts=2), chunk_bytes=CHUNK_BYTES)
    with pytest.raises(KeyboardInterrupt):
        kv.put(Key("f"), ramp(3_000))
    assert store(cluster).get(Key("f")).to_arrow().equals(ramp(3_000).to_arrow())
    assert [(info.key.name, info.status) for info in store(cluster).keys()] == [("f", "ok")]
    interrupted = KVStore(InterruptedAfter(cluster, puts=1), chunk_bytes=CHUNK_BYTES)
    with pytest.raises(KeyboardInterrupt):
        interrupted.put(Key("g"), ramp(3_000))
    assert [info.key.name for info in store(cluster).keys()] == ["f"]  # g was taken back whole


def test_a_delete_during_a_repair_is_not_undone(cluster, monkeypatch):
    from eau2.distributed import repair, survey

    kv = store(cluster, replicas=2)
    kv.put(Key("f"), ramp())
    cluster.kill(1)
    before_delete = survey.survey(kv.transport)
    kv.delete(Key("f"))
    monkeypatch.setattr(repair, "survey", lambda transport: before_delete)
    kv.repair()
    assert kv.keys() == [] and raw_keys(cluster) == []


def test_local_map_visits_each_chunk_once_with_metadata_from_before_and_after_a_repair(cluster, tmp_path):
    kv = store(cluster)
    kv.read_sor(str(sor_file(tmp_path)), Key("f"), blocksize=4_000)
    before = [store(cluster, node).get(Key("f")) for node in range(4)]
    cluster.kill(2)
    cluster.restart(2)
    kv.repair()
    after = [store(cluster, node).get(Key("f")) for node in range(4)]
    assert after[0].meta != before[0].meta
    for mixed in ([*before[:2], *after[2:]], [*after[:2], *before[2:]]):
        seen = sorted(i for frame in mixed for i in frame._local_chunks())
        assert seen == list(range(before[0].nchunks))


def test_a_source_that_cannot_be_read_is_data_lost_and_repair_goes_on(cluster, tmp_path):
    path = sor_file(tmp_path)
    kv = store(cluster)
    kv.read_sor(str(path), Key("file"), blocksize=10_000)
    kv.put(Key("blob"), b"x", replicas=2)
    path.unlink()
    path.mkdir()  # now a directory: reading it fails with an OSError, not FileNotFoundError
    cluster.kill(1)
    with pytest.raises(DataLost, match="cannot be rebuilt"):
        store(cluster).get(Key("file")).to_arrow()
    kv.repair()
    assert {info.key.name: info.status for info in kv.keys()}["blob"] == "ok"


def test_a_wait_for_a_key_whose_home_is_gone_fails_at_once_unless_a_copy_is_there(cluster):
    cluster.kill(1)
    store(cluster).put(Key("moved", 1), b"on the next node")
    assert store(cluster).get_and_wait(Key("moved", 1), timeout=5) == b"on the next node"
    started = time.monotonic()
    with pytest.raises(NodeLost, match="its home node 1 is gone"):
        store(cluster).get_and_wait(Key("never", 1), timeout=20)
    assert time.monotonic() - started < 2


def test_a_wait_goes_on_when_a_new_worker_takes_the_home_number(cluster):
    got = []
    waiter = threading.Thread(target=lambda: got.append(store(cluster).get_and_wait(Key("v", 1), timeout=20)))
    waiter.start()
    time.sleep(0.2)
    cluster.kill(1)
    cluster.restart(1)
    store(cluster).put(Key("v", 1), b"back home")
    waiter.join(10)
    assert got == [b"back home"]


def test_delete_frees_what_an_abandoned_earlier_write_of_the_key_left(cluster):
    kv = store(cluster)
    abandoned = kv.writer(Key("f"))
    abandoned.put_chunk(0, pa.table({"x": [1]}))  # its process died here: no rollback
    kv.put(Key("f"), ramp(100))
    kv.delete(Key("f"))
    assert raw_keys(cluster) == []
    with pytest.raises(KeyError):
        abandoned.put_chunk(1, pa.table({"x": [2]}))  # and a late put of it is refused


def test_a_frame_deleted_while_it_is_written_is_not_committed(cluster):
    kv = store(cluster)
    with pytest.raises(KeyError, match="taken back or deleted"), kv.writer(Key("f")) as writer:
        writer.put_chunk(0, pa.table({"x": [1, 2]}))
        kv.delete(Key("f"))
        writer.commit("I", ["x"])
    assert kv.keys() == [] and raw_keys(cluster) == []


def test_a_repair_does_not_bring_back_the_metadata_of_a_deleted_frame(cluster):
    kv = store(cluster, replicas=2)
    kv.put(Key("f"), ramp(3_000))
    meta = kv.get(Key("f")).meta
    kv.delete(Key("f"))
    for node in range(4):  # a repair that surveyed before the delete puts its copies late
        with pytest.raises(KeyError, match="taken back or deleted"):
            cluster.transport(None).put(node, Key("f"), meta)
    assert kv.keys() == []


def test_copies_already_there_count_and_dead_holders_do_not(cluster):
    kv = store(cluster)
    with kv.writer(Key("f"), replicas=2) as writer:
        writer.put_chunk(0, pa.table({"x": [1, 2]}))
        first = writer.home_of(0)
        kv.transport.put(first + 1, writer.chunk_key(0), pa.table({"x": [1, 2]}))  # a re-run sent it
        writer.put_chunk(1, pa.table({"x": [3]}))
        writer.stored(1, (3, writer.home_of(1)), 1, 8)  # node 3 died before the commit
        cluster.kill(3)
        writer.commit("I", ["x"])
    frame = kv.get(Key("f"))
    assert frame.chunk_holders(0) == (first, first + 1)
    assert len([node for node in frame.chunk_holders(1) if node != 3]) == 2
    assert [(info.key.name, info.status) for info in kv.keys()] == [("f", "ok")]


def test_a_repair_copy_of_a_value_deleted_meanwhile_is_taken_back(cluster, monkeypatch):
    from eau2.distributed import repair, survey

    kv = store(cluster)
    kv.put(Key("v"), b"x", replicas=2)
    cluster.kill(1)
    before_delete = survey.survey(kv.transport)
    kv.delete(Key("v"))
    monkeypatch.setattr(repair, "survey", lambda transport: before_delete)
    kv.repair()
    with pytest.raises(KeyError):
        kv.get(Key("v"))
    assert raw_keys(cluster) == []


def test_a_wait_on_a_node_killed_as_it_starts_waiting_does_not_hang(cluster):
    store_of_two = cluster.stores[2]
    cluster.kill(2)
    woken = []
    store_of_two.when_put(Key("x", 2), lambda: woken.append(True))  # a wait that began as it died
    assert woken == [True]
    started = time.monotonic()
    with pytest.raises(NodeLost):
        store(cluster).get_and_wait(Key("x", 2), timeout=10)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("change", ["truncate", "append"])
def test_a_file_changed_while_it_is_loaded_fails_the_load_and_stores_nothing(
    cluster, tmp_path, monkeypatch, change
):
    """Its blocks would not all be rows of one file: some of the old, some cut or added."""
    from eau2.distributed import load

    path = sor_file(tmp_path)
    planned = load.LoadPlan.make

    def plan_then_change(*args, **kwargs):
        plan = planned(*args, **kwargs)
        with path.open("r+b") as file:
            file.truncate(20_000) if change == "truncate" else (
                file.seek(0, 2),
                file.write(b'<1> <"s"> <2.5>\n'),
            )
        return plan

    monkeypatch.setattr(load.LoadPlan, "make", plan_then_change)
    kv = store(cluster)
    with pytest.raises(
        SorError, match=r"data\.sor \(block at byte \d+\): the file changed while it was being read"
    ):
        kv.read_sor(str(path), Key("file"), blocksize=10_000)
    assert kv.keys() == []


def test_a_load_planned_where_the_file_has_other_times_reads_it(cluster, tmp_path, monkeypatch):
    """The same bytes on the machine that plans a load and on those that read it (a copy
    on each, an object store listing against its HEAD) may differ in times: not a change."""
    from dataclasses import replace

    from eau2.distributed import load

    path = sor_file(tmp_path)
    planned = load.LoadPlan.make

    def planned_elsewhere(*args, **kwargs):
        plan = planned(*args, **kwargs)
        elsewhere = [
            replace(o, fingerprint={**o.fingerprint, "mtime": "1.0", "created": "1.0"}) for o in plan.origins
        ]
        return replace(plan, origins=elsewhere)

    monkeypatch.setattr(load.LoadPlan, "make", planned_elsewhere)
    frame = store(cluster).read_sor(str(path), Key("file"), blocksize=10_000)
    assert frame.to_arrow().equals(read_sor_local(path).to_arrow())


def test_a_block_asks_its_file_system_of_the_file_twice(tmp_path, monkeypatch):
    """Once as it opens the file and once after reading it: on an object store each is a
    request, so the check for a changed file costs one more than the read itself."""
    import fsspec.implementations.local as local

    from eau2.distributed import load
    from eau2.sor.origin import read_block

    path = sor_file(tmp_path)
    plan = load.LoadPlan.make(str(path), 10_000)
    asked = []
    info = local.LocalFileSystem.info

    def counted(fs, *args, **kwargs):
        asked.append(args)
        return info(fs, *args, **kwargs)

    monkeypatch.setattr(local.LocalFileSystem, "info", counted)
    read_block(plan.origins[1])
    assert len(asked) == 2


def test_reading_a_frame_deleted_meanwhile_says_so(cluster, tmp_path):
    kv = store(cluster)
    frame = kv.read_sor(str(sor_file(tmp_path)), Key("file"), blocksize=10_000)
    kv.delete(Key("file"))
    with pytest.raises(
        KeyError, match="frame 'file' is no longer stored: deleted since this reader looked it up"
    ):
        frame.to_arrow()


def test_a_deleted_frame_is_never_read_again_from_its_file_by_nodes_restarted_since(cluster, tmp_path):
    """A restarted node no longer knows which writes were deleted: an old reader must not
    get it to read a deleted frame's chunks from their file, and keep them."""
    kv = store(cluster)
    old = kv.read_sor(str(sor_file(tmp_path)), Key("file"), blocksize=10_000)
    kv.delete(Key("file"))
    for node in range(4):
        cluster.kill(node)
        cluster.restart(node)
    with pytest.raises(
        KeyError, match="frame 'file' is no longer stored: deleted since this reader looked it up"
    ):
        old.to_arrow()
    assert all(node_store.keys() == [] for node_store in cluster.stores), (
        "chunks of the deleted frame came back"
    )
    assert kv.keys() == []


def test_a_frame_written_again_is_not_called_lost_by_an_old_reader(cluster):
    kv = store(cluster)
    kv.put(Key("t"), ramp())
    old = kv.get(Key("t"))
    kv.delete(Key("t"))
    kv.put(Key("t"), ramp(500))
    with pytest.raises(
        KeyError, match="frame 't' was written again since this reader looked it up: get it again"
    ):
        old.to_arrow()
    assert kv.get(Key("t")).to_arrow().num_rows == 500


def rebuilt_while_hung(cluster, tmp_path) -> tuple[DataFrame, int]:
    """A loaded frame with a chunk on node 1 only, read while node 1 hung, so rebuilt on
    another node too: its copies are then more than its replicas."""
    path = sor_file(tmp_path)
    loaded = store(cluster).read_sor(str(path), Key("file"), blocksize=10_000)
    index = next(i for i, chunk in enumerate(loaded.meta.chunks) if chunk.holders == (1,))
    KVStore(HungNodes(cluster, hung={1})).get(Key("file")).chunk(index)
    return loaded, index


def holding(cluster, key: Key) -> list[int]:
    live = cluster.transport(None).live_nodes()
    return [node for node in live if cluster.transport(node).exists(node, key)]


def test_repair_removes_copies_beyond_the_replicas_left_by_a_hang(cluster, tmp_path):
    loaded, index = rebuilt_while_hung(cluster, tmp_path)
    chunk = loaded.meta.chunks[index]
    assert len(holding(cluster, chunk.key)) == 2
    kv = store(cluster)  # node 1 answers again
    report = kv.repair()
    assert report.trimmed == 1 and "removed 1 extra copies (beyond their frames' replicas)" in str(report)
    assert holding(cluster, chunk.key) == [1]
    frame = kv.get(Key("file"))
    assert frame.chunk_holders(index) == (1,)
    assert frame.to_arrow().equals(loaded.to_arrow())
    assert kv.repair().trimmed == 0


class KillsAtUpdate(InProcessTransport):
    """Kills node `victim` when a repair first updates a frame's metadata: after the
    repair's survey, before it removes extra copies."""

    def __init__(self, cluster: InProcessCluster, victim: int):
        super().__init__(cluster, None)
        self.cluster, self.victim = cluster, victim

    def update(self, node: int, key: Key, meta) -> None:
        if self.victim in self.live_nodes() and node != self.victim:
            self.cluster.kill(self.victim)
        super().update(node, key, meta)


def test_repair_keeps_an_extra_copy_whose_kept_copy_was_lost_since_its_survey(cluster, tmp_path):
    loaded, index = rebuilt_while_hung(cluster, tmp_path)
    chunk = loaded.meta.chunks[index]
    extra = [node for node in holding(cluster, chunk.key) if node != 1]
    report = KVStore(KillsAtUpdate(cluster, victim=1)).repair()
    assert report.trimmed == 0
    assert holding(cluster, chunk.key) == extra  # the only copy left
    assert store(cluster).get(Key("file")).to_arrow().equals(loaded.to_arrow())


class SlowCopies(InProcessTransport):
    """Copies that wait for `go`: a repair of many large chunks, or over a slow network."""

    def __init__(self, cluster: InProcessCluster):
        super().__init__(cluster, None)
        self.go = threading.Event()

    def copy(self, node: int, key: Key, source: int, replicas: int = 1) -> None:
        assert self.go.wait(30)
        super().copy(node, key, source, replicas)


def test_a_repair_waited_for_with_a_timeout_says_so_in_time_and_goes_on(cluster):
    kv = store(cluster, replicas=2)
    kv.put(Key("frame"), ramp())
    expected = kv.get(Key("frame")).to_arrow()
    cluster.kill(0)
    cluster.restart(0)  # back, but empty: copies to make
    slow = KVStore(SlowCopies(cluster))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"did not finish within 0.2 s; it goes on in the background"):
        slow.repair(timeout=0.2)
    assert time.monotonic() - started < 5
    slow.transport.go.set()

    chunks = [chunk.key for chunk in kv.get(Key("frame")).meta.chunks]

    def restored() -> bool:
        return all(len(holding(cluster, key)) == 2 for key in [Key("frame"), *chunks])

    deadline = time.monotonic() + 30
    while not restored():  # by the repair that timed out, going on
        assert time.monotonic() < deadline, "the repair did not go on after its timeout"
        time.sleep(0.05)
    cluster.kill(1)  # a second loss: the copies the repair made are enough
    assert store(cluster).get(Key("frame")).to_arrow().equals(expected)


@pytest.mark.parametrize(("timeout", "error"), [(-1, ValueError), ("5", TypeError), (math.nan, ValueError)])
def test_a_repair_s_timeout_is_checked(cluster, timeout, error):
    with pytest.raises(error, match="a timeout is a number of seconds"):
        store(cluster).repair(timeout=timeout)


def as_written_before_checksum_kinds(meta: FrameMeta, wrong: int | None = None) -> FrameMeta:
    """`meta` as eau2 wrote it before origins named their checksum's kind: zlib's CRC-32
    of each block (off by one for chunk `wrong`), with no kind."""
    fields = json.loads(meta.to_bytes())
    for index, (chunk, written) in enumerate(zip(meta.chunks, fields["chunks"], strict=True)):
        del written["origin"]["checksum_kind"]
        _, crc32 = read_block(replace(chunk.origin, checksum_kind="crc32"))
        written["origin"]["checksum"] = crc32.value + (index == wrong)
    return FrameMeta.from_bytes(json.dumps(fields).encode())


@pytest.mark.parametrize("wrong", [None, 2], ids=["same bytes", "changed bytes"])
def test_a_frame_loaded_before_crc32c_is_rebuilt_from_its_file_checked_by_crc32(cluster, tmp_path, wrong):
    path = sor_file(tmp_path)
    kv = store(cluster)
    loaded = kv.read_sor(str(path), Key("file"), blocksize=10_000)
    expected = loaded.to_arrow()
    assert {chunk.origin.checksum_kind for chunk in loaded.meta.chunks} == {KIND}
    old = as_written_before_checksum_kinds(loaded.meta, wrong)
    assert {chunk.origin.checksum_kind for chunk in old.chunks} == {"crc32"}
    for node in holding(cluster, Key("file")):
        cluster.transport(node).update(node, Key("file"), old)
    cluster.kill(loaded.chunk_home(2))  # its chunks are rebuilt from the file
    if wrong is None:
        assert store(cluster).get(Key("file")).to_arrow().equals(expected)
    else:
        with pytest.raises(DataLost, match=r"data\.sor \(block at byte \d+\): its bytes changed"):
            store(cluster).get(Key("file")).to_arrow()


def test_repairs_asked_while_one_runs_share_the_next(cluster):
    store(cluster, replicas=2).put(Key("frame"), ramp())
    kv = KVStore(SlowCopies(cluster))
    cluster.kill(0)
    cluster.restart(0)  # back, but empty: copies to make
    for _ in range(5):  # a caller trying again and again
        with pytest.raises(TimeoutError):
            kv.repair(timeout=0.05)
    running = []
    run = kv._repairs._run
    kv._repairs._run = lambda: running.append(1) or run()  # counts those that start from now
    kv.transport.go.set()
    report = kv.repair(timeout=30)
    assert report.lost == {} and len(running) in (1, 2)  # not one for each request


def test_a_repair_s_own_timeout_error_reaches_its_caller_as_it_is(cluster):
    kv = store(cluster)

    def times_out():
        raise TimeoutError("node 3 did not answer within 10 s")

    kv._repairs._run = times_out
    for timeout in (None, 30):
        with pytest.raises(TimeoutError, match="node 3 did not answer within 10 s"):
            kv.repair(timeout=timeout)


def test_a_block_is_summed_with_the_parsing_node_s_kind_and_recorded_with_it(cluster, tmp_path, monkeypatch):
    # A node whose google-crc32c has no compiled code sums with zlib's CRC-32, whatever the
    # client that planned the load uses: CRC-32C in Python is a thousand times slower.
    monkeypatch.setattr("eau2.sor.origin.KIND", "crc32")
    path = sor_file(tmp_path)
    loaded = store(cluster).read_sor(str(path), Key("file"), blocksize=10_000)
    assert {chunk.origin.checksum_kind for chunk in loaded.meta.chunks} == {"crc32"}
    expected = loaded.to_arrow()
    monkeypatch.setattr("eau2.sor.origin.KIND", "crc32c")  # checked with the kind recorded
    cluster.kill(loaded.chunk_home(2))
    assert store(cluster).get(Key("file")).to_arrow().equals(expected)


def test_a_repair_whose_caller_cancelled_its_future_does_not_stop_the_next(cluster):
    kv = KVStore(SlowCopies(cluster))
    store(cluster, replicas=2).put(Key("frame"), ramp())
    cluster.kill(0)
    cluster.restart(0)
    running = kv._repairs.request()
    deadline = time.monotonic() + 30
    while not running.running():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    waiting = kv._repairs.request()
    assert waiting.cancel()  # a caller that gave up on the next one
    assert not running.cancel()  # one under way cannot be
    kv.transport.go.set()
    assert running.result(30).copied > 0
    assert kv.repair(timeout=30).lost == {}  # repairs still run
