"""Runs that clean up after themselves: a failed, timed-out or killed run takes back what it
stored; cancelled ranks stop at their next call and their puts are refused; the nodes'
verbs refuse what no client should send."""

import threading
import time

import numpy as np
import pyarrow as pa
import pytest

import eau2_dask
from eau2 import Application, ApplicationError, DataFrame, Key, RunCancelled
from eau2.store.pieces import shape_of
from eau2_dask.node import raise_reply
from tests.dask_clusters import RealCluster


def user_keys(client) -> list[str]:
    """Every key the cluster lists (committed frames, values and partial frames), by name."""
    return [info.key.name for info in eau2_dask.connect(client).keys()]


def call(client, node: int, verb: str, **arguments):
    """A node's verb called directly, as any client could; its reported error raised."""
    address = eau2_dask.ensure_ready(client)[node]
    reply = client.sync(getattr(client.rpc(address), verb), **arguments)
    raise_reply(reply)
    return reply


class StoresThenFails(Application):
    """Every node stores a value, a frame homed on the next node and half a frame; then
    node 1 fails once the others' writes are in."""

    def run(self):
        node, nodes = self.this_node(), self.num_nodes()
        self.kv.put(Key(f"value-{node}", node), np.arange(10))
        DataFrame.from_array(Key(f"frame-{node}", (node + 1) % nodes), self.kv, np.arange(1000.0))
        writer = self.kv.writer(Key(f"half-{node}", node))
        writer.put_chunk(0, pa.table({"x": np.arange(100)}))
        self.kv.put(Key(f"done-{node}", 0), b"")
        if node == 1:
            for other in range(nodes):
                self.kv.get_and_wait(Key(f"done-{other}", 0), timeout=30)
            raise ValueError("node 1 gives up")
        return self.kv.get_and_wait(Key("never"), timeout=60)


def test_a_failed_run_takes_back_what_it_stored_and_nothing_else(client):
    kv = eau2_dask.connect(client)
    kv.put(Key("kept-before", 1), b"the user's")
    with pytest.raises(ApplicationError, match="node 1: ValueError: node 1 gives up"):
        eau2_dask.run(StoresThenFails, client=client, timeout=60)
    assert user_keys(client) == ["kept-before"]
    assert kv.get(Key("kept-before", 1)) == b"the user's"
    for node in range(3):
        assert call(client, node, "eau2_status")["values"] == (1 if node == 1 else 0)
    kv.delete(Key("kept-before", 1))


def test_keep_on_failure_keeps_it(client):
    with pytest.raises(ApplicationError):
        eau2_dask.run(StoresThenFails, client=client, timeout=60, keep_on_failure=True)
    listed = {info.key.name: info for info in eau2_dask.connect(client).keys()}
    assert {f"value-{n}" for n in range(3)} | {f"frame-{n}" for n in range(3)} <= set(listed)
    assert {listed[f"half-{n}"].status for n in range(3)} == {"partial"}
    kv = eau2_dask.connect(client)
    for info in listed.values():
        kv.delete(info.key)
    assert user_keys(client) == []


class TakesAnExistingKey(Application):
    """Node 0 tries to store under a key someone else holds, and fails."""

    def run(self):
        if self.this_node() == 0:
            DataFrame.from_array(Key("theirs"), self.kv, np.arange(5.0))
            self.kv.put(Key("theirs-too"), b"mine")
        return None


def test_a_run_failing_on_someone_else_s_keys_leaves_them(client):
    kv = eau2_dask.connect(client)
    kv.put(Key("theirs"), DataFrame.from_arrow(pa.table({"v": [1.0, 2.0]})))
    kv.put(Key("theirs-too"), b"theirs")
    with pytest.raises(ApplicationError, match="KeyExistsError"):
        eau2_dask.run(TakesAnExistingKey, client=client, timeout=60)
    assert kv.get(Key("theirs")).to_arrow().column("v").to_pylist() == [1.0, 2.0]
    assert kv.get(Key("theirs-too")) == b"theirs"
    for key in (Key("theirs"), Key("theirs-too")):
        kv.delete(key)
    assert user_keys(client) == []


class ComputesThenPuts(Application):
    """Node 0 computes for a while without calling the store, then tries to store."""

    def run(self):
        if self.this_node() != 0:
            return None
        time.sleep(2)
        try:
            self.kv.put(Key("late"), b"too late")
        except RunCancelled as refused:
            raise RuntimeError(f"refused: {refused}") from None
        return "stored"


def test_a_timed_out_rank_that_is_computing_is_refused_at_its_next_put(client):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still running: nodes \\[0\\]"):
        eau2_dask.run(ComputesThenPuts, client=client, timeout=0.5)
    assert time.monotonic() - started < 2
    time.sleep(3)  # the rank reaches its put, which is refused
    assert user_keys(client) == []


def test_a_cancelled_run_s_puts_are_refused_by_every_node(client):
    call(client, 2, "eau2_cancel", run_id="cancelled-run", reason="stopped by a test")
    with pytest.raises(RunCancelled, match="stopped by a test"):
        call(client, 2, "eau2_put", name="x", home=2, value=b"v", run_id="cancelled-run")
    with pytest.raises(RunCancelled):
        shape = shape_of(b"v").to_dict()
        call(client, 2, "eau2_receive", name="x", home=2, shape=shape, run_id="cancelled-run")
    call(client, 2, "eau2_put", name="x", home=2, value=b"v", run_id="another-run")
    assert user_keys(client) == ["x"]
    eau2_dask.connect(client).delete(Key("x", 2))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "../../etc/passwd", "home": 0}, "is not valid"),
        ({"name": "a/b", "home": 0}, "is not valid"),
        ({"name": "x", "home": "0"}, "home node must be an int"),
        ({"name": "x", "home": -1}, "home node must be an int"),
        ({"name": 7, "home": 0}, "is not valid"),
        ({"name": "x#0#abc#1", "home": 3}, "is not a chunk's key"),
        ({"name": "x", "home": 99}, "'x' has home node 99, but the cluster has 3 nodes"),
        ({"name": "zz#99#abcdef012345#0", "home": 0}, "'zz' has home node 99, but the cluster has 3"),
        ({"name": "x", "home": 0, "replicas": 0}, "replicas is a whole number"),
        ({"name": "x", "home": 0, "run_id": "r" * 65}, "a run id is a string"),
    ],
)
def test_verbs_refuse_what_no_client_should_send(client, arguments, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(client, 0, "eau2_put", value=b"v", **{"replicas": 1, **arguments})
    assert user_keys(client) == []  # keys() still works for everyone


def test_a_node_cannot_be_told_to_drop_or_sync_everything(client):
    kv = eau2_dask.connect(client)
    kv.put(Key("survivor"), DataFrame.from_arrow(pa.table({"v": [1, 2, 3]})))
    for verb in ("eau2_drop", "eau2_sync"):
        for prefix in ("", "survivor", "survivor#"):
            with pytest.raises(ValueError, match="is not the prefix of a frame write"):
                call(client, 0, verb, prefix=prefix)
    with pytest.raises((ValueError, TypeError), match="timeout"):
        call(client, 0, "eau2_wait", name="survivor", home=0, timeout=-1, run_id=None)
    assert kv.get(Key("survivor")).to_arrow().column("v").to_pylist() == [1, 2, 3]
    kv.delete(Key("survivor"))


def test_cancellation_records_are_bounded(client):
    for index in range(1100):
        call(client, 1, "eau2_cancel", run_id=f"run-{index}", reason="x" * 5000)
    address = client.sync(client.scheduler.eau2_directory)[1]
    kept = client.run(
        lambda dask_worker: len(dask_worker.extensions["eau2"].runs._records), workers=[address]
    )
    assert kept[address] <= 1024


class PutsElsewhereThenWaits(Application):
    """Every node stores a value homed on node 0 and a frame, tells node 0, and waits."""

    def run(self):
        node = self.this_node()
        self.kv.put(Key(f"from-{node}", 0), np.arange(5))
        DataFrame.from_array(Key(f"frame-of-{node}", node), self.kv, np.arange(10_000.0))
        self.kv.put(Key(f"ready-{node}", 0), b"")
        return self.kv.get_and_wait(Key("never"), timeout=120)


def test_a_run_whose_worker_is_killed_takes_back_what_that_worker_stored(tmp_path):
    """kill -9 node 2's worker mid-run: the run fails naming it, and what node 2's rank
    stored on the nodes still alive (a value homed on node 0, chunks of its frame) is gone
    too, as is everything the other ranks stored."""
    with RealCluster(tmp_path / "cluster.log", workers=3, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)

        def kill_when_ready() -> None:
            cluster.wait_for(
                lambda: {f"ready-{n}" for n in range(3)} <= set(user_keys(cluster.client)),
                what="every node storing its values",
            )
            cluster.kill(2)

        killer = threading.Thread(target=kill_when_ready)
        killer.start()
        with pytest.raises(ApplicationError, match="node 2"):
            eau2_dask.run(PutsElsewhereThenWaits, client=cluster.client, timeout=120)
        killer.join()
        assert [info.key.name for info in kv.keys()] == []
        for node in (0, 1):
            assert call(cluster.client, node, "eau2_status")["values"] == 0


def test_run_records_drop_runs_not_cancelled_first():
    from eau2.store.waits import Runs

    runs = Runs(kept=4)
    runs.cancellation("stopped").cancel("the run failed")
    for index in range(100):
        runs.cancellation(f"run-{index}")
    assert list(runs._records) == ["stopped", "run-97", "run-98", "run-99"]
    assert runs.cancellation("stopped").cancelled


def _slow_puts(seconds: float, dask_worker=None) -> None:
    """Make this node's store take `seconds` over each put (0: as it was)."""
    store = dask_worker.extensions["eau2"].store
    if not hasattr(store, "fast_put"):
        store.fast_put = store.put
    fast = store.fast_put
    store.put = fast if not seconds else lambda *a, **k: (time.sleep(seconds), fast(*a, **k))[1]


def test_a_put_under_way_when_its_run_is_cancelled_is_taken_back_by_the_node(client):
    address = eau2_dask.ensure_ready(client)[2]
    client.run(_slow_puts, 1.0, workers=[address])
    try:
        outcome = []

        def put() -> None:
            try:
                call(client, 2, "eau2_put", name="mid", home=2, value=b"v", run_id="mid-run")
                outcome.append("stored")
            except RunCancelled as refused:
                outcome.append(str(refused))

        putting = threading.Thread(target=put)
        putting.start()
        time.sleep(0.3)  # the node is storing the value
        call(client, 2, "eau2_cancel", run_id="mid-run", reason="stopped meanwhile")
        putting.join()
    finally:
        client.run(_slow_puts, 0, workers=[address])
    assert outcome == ["stopped meanwhile"]
    assert user_keys(client) == []
