"""Node loss on a real cluster: worker processes killed with -9, with and without nannies and
worker names, while idle, during `read_sor`, during `to_dask().compute()` and during an
application's reads. Data read afterwards is what was loaded, or `DataLost` names exactly
the frames that lost a chunk; no call waits longer than `BOUND` seconds."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time

import dask
import distributed
import numpy as np
import pandas as pd
import pytest
from distributed import futures_of

import eau2_dask
from eau2 import Application, ApplicationError, DataFrame, DataLost, Key, NodeLost, read_sor
from eau2.distributed.repair import repair
from eau2.examples import Trivial
from eau2_dask.node import EXTENSION
from tests.dask_clusters import RealCluster

BOUND = 20.0
"""Seconds any read may take after a loss (Dask notices a killed worker within about 1 s)."""


def sor_file(path, rows: int) -> str:
    path.write_bytes(b"".join(b'<%d> <"user%d"> <%d.5>\n' % (i, i % 101, i) for i in range(rows)))
    return str(path)


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    assert time.monotonic() - started < BOUND, f"{call.__name__} took {time.monotonic() - started:.1f} s"
    return result


@pytest.mark.parametrize(
    ("nanny", "named"), [(True, False), (False, True)], ids=["nanny-unnamed", "no-nanny-named"]
)
def test_kill_while_idle(tmp_path, nanny, named):
    path = sor_file(tmp_path / "data.sor", 30_000)
    expected = read_sor(path).to_arrow()
    with RealCluster(tmp_path / "cluster.log", nanny=nanny, named=named) as cluster:
        kv = eau2_dask.connect(cluster.client)
        from_file = eau2_dask.read_sor(path, "from-file", client=cluster.client, blocksize=50_000)
        kv.put(Key("twice"), DataFrame(expected), replicas=2)
        kv.chunk_bytes = 100_000  # several chunks a node, so a lost node loses several
        kv.put(Key("once"), DataFrame(expected))
        victim = kv.get(Key("once")).chunk_home(0)
        assert from_file.nchunks > 6
        eau2_dask.read_sor(path, "deleted", client=cluster.client, blocksize=50_000)
        stale = kv.get(Key("deleted")).to_dask()  # a view made before the delete
        kv.delete(Key("deleted"))  # the victim's new worker will not know it was deleted
        old = cluster.directory()[victim]
        cluster.kill(victim)
        cluster.wait_for(lambda: cluster.directory()[victim] != old, what="the scheduler noticing")
        if nanny:  # the nanny's new worker, on a new port and name, takes the free number
            cluster.wait_for(lambda: cluster.directory()[victim] is not None, what="the nanny's restart")
        reader = eau2_dask.connect(cluster.client)
        for part in range(stale.npartitions):  # each, the restarted node's too: not read from its file
            with pytest.raises(KeyError, match="frame 'deleted' is no longer stored"):
                timed(stale.partitions[part]["0"].sum().compute)
        assert "deleted" not in {info.key.name for info in reader.keys()}  # nor kept anywhere
        assert timed(reader.get(Key("from-file")).to_arrow).equals(expected)
        assert timed(reader.get(Key("twice")).to_arrow).equals(expected)
        with pytest.raises(DataLost, match=rf"frame 'once' lost: held by node {victim}") as lost:
            timed(reader.get(Key("once")).to_arrow)
        with pytest.raises(DataLost) as lost_in_view:  # every lost chunk, not a partition's first
            timed(reader.get(Key("once")).to_dask()["0"].sum().compute)
        assert (lost_in_view.value.chunks, lost_in_view.value.nodes) == (lost.value.chunks, [victim])
        assert len(lost.value.chunks) > 1
        cluster.wait_for(
            lambda: (
                {i.key.name: i.status for i in reader.keys()}
                == {"from-file": "ok", "twice": "ok", "once": "lost"}
            ),
            what="background repair",
        )
        assert reader.repair().lost == {"once": lost.value.chunks}  # a list, as from a local repair
        # Partitions run where their chunks are now, not on the lost node they were placed on.
        cluster.client.run(lambda dask_worker: dask_worker.extensions["eau2"].reads.clear())
        view = reader.get(Key("from-file")).to_dask()
        assert timed(view["0"].sum().compute) == expected.column(0).to_pandas().sum()
        reads = cluster.client.run(lambda dask_worker: dict(dask_worker.extensions["eau2"].reads))
        assert sum(count.get("remote", 0) for count in reads.values()) == 0, reads
        reader.delete(Key("once"))
        # The cluster is still usable: new data, and (with every node there) applications.
        assert eau2_dask.read_sor(path, client=cluster.client, blocksize=50_000).nrows == 30_000
        if nanny:
            assert eau2_dask.run(Trivial, client=cluster.client, timeout=60)[0] == {"sum": 499_999_500_000.0}
        else:
            with pytest.raises(ApplicationError, match=rf"\[{victim}\] have no worker"):
                eau2_dask.run(Trivial, client=cluster.client, timeout=60)


def test_kill_during_read_sor_and_during_compute(tmp_path):
    path = sor_file(tmp_path / "data.sor", 200_000)
    expected = read_sor(path).to_pandas()
    with RealCluster(tmp_path / "cluster.log", nanny=False) as cluster:
        killer = threading.Thread(target=kill_once_it_holds_chunks, args=(cluster, 1))
        killer.start()
        stored = timed(eau2_dask.read_sor, path, "big", client=cluster.client, blocksize=20_000)
        killer.join()
        assert cluster.directory()[1] is None  # it died during the read
        pd.testing.assert_frame_equal(stored.to_pandas(), expected)
        # A second loss while a dask computation reads the chunks, and a persisted view
        # loses the partitions that worker held.
        ddf = eau2_dask.connect(cluster.client).get(Key("big")).to_dask()
        kept = ddf.persist()
        distributed.wait(futures_of(kept), timeout=BOUND)
        threading.Timer(0.5, cluster.kill, args=(2,)).start()
        assert timed(ddf.compute).reset_index(drop=True).equals(expected)
        sums = timed(lambda: dask.compute(ddf["0"].sum(), ddf["2"].sum()))
        assert sums == (expected["0"].sum(), expected["2"].sum())
        assert timed(kept.compute).reset_index(drop=True).equals(expected)


def kill_once_it_holds_chunks(cluster: RealCluster, node: int, chunks: int = 5) -> None:
    """kill -9 `node` as soon as it holds `chunks` chunks (so, in the middle of a load)."""
    kv = eau2_dask.connect(cluster.client)
    cluster.wait_for(lambda: sum(info.key.is_internal for info in kv.transport.keys(node)) >= chunks)
    cluster.kill(node)


class ReadsUntilLost(Application):
    """Every node sums its chunks again and again; node 2's worker dies meanwhile."""

    def run(self):
        frame = self.kv.get(Key("shared"))
        for _ in range(60):
            total = sum(frame.local_map_batches(lambda batch: int(batch.column(0).to_numpy().sum())))
            time.sleep(0.05)
        return total


def test_kill_during_an_application_s_reads(tmp_path):
    path = sor_file(tmp_path / "data.sor", 30_000)
    expected = read_sor(path).to_arrow()
    with RealCluster(tmp_path / "cluster.log", nanny=False) as cluster:
        eau2_dask.read_sor(path, "shared", client=cluster.client, blocksize=20_000)
        threading.Timer(1.0, cluster.kill, args=(2,)).start()
        with pytest.raises(ApplicationError, match=r"node 2: its worker .* left the cluster"):
            timed(eau2_dask.run, ReadsUntilLost, client=cluster.client, timeout=60)
        assert timed(eau2_dask.connect(cluster.client).get(Key("shared")).to_arrow).equals(expected)


def test_waits_do_not_starve_other_calls(tmp_path):
    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        waiters = [
            threading.Thread(target=_wait_quietly, args=(kv, Key(f"never-{i}", 1)), daemon=True)
            for i in range(600)
        ]
        for thread in waiters:
            thread.start()
        time.sleep(2)
        timed(kv.put, Key("meanwhile", 1), b"still works")
        assert timed(kv.get, Key("meanwhile", 1)) == b"still works"
        kv.put(Key("never-7", 1), b"woken")
        cluster.kill(1)  # every other waiter fails at once with NodeLost
        for thread in waiters:
            thread.join(BOUND)
        assert not any(thread.is_alive() for thread in waiters)


def _wait_quietly(kv, key: Key) -> None:
    with contextlib.suppress(Exception):
        kv.get_and_wait(key, timeout=120)


def test_random_kills_and_restarts(tmp_path):
    """Frames with replicas 1 and 2, from files and from puts; workers (with nannies, no
    names) killed at random, one at a time; after each loss every frame reads back what
    was loaded, or `DataLost` names exactly a frame that held a chunk on no other node."""
    rng = random.Random(11)
    path = sor_file(tmp_path / "data.sor", 20_000)
    expected = read_sor(path).to_arrow()
    with RealCluster(tmp_path / "cluster.log", workers=4, nanny=True, named=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        kv.chunk_bytes = 100_000
        eau2_dask.read_sor(path, "file-1", client=cluster.client, blocksize=40_000)
        eau2_dask.read_sor(path, "file-2", client=cluster.client, blocksize=40_000, replicas=2)
        kv.put(Key("put-1"), DataFrame(expected))
        kv.put(Key("put-2"), DataFrame(expected), replicas=2)
        alive = {"file-1", "file-2", "put-1", "put-2"}
        for _ in range(3):
            victim = rng.randrange(4)
            held = {
                name for name in alive if any(victim == c.holders[0] for c in kv.get(Key(name)).meta.chunks)
            }
            old = cluster.directory()[victim]
            cluster.kill(victim)
            cluster.wait_for(lambda old=old, victim=victim: cluster.directory()[victim] not in (old, None))
            reader = eau2_dask.connect(cluster.client)
            for name in sorted(alive):
                try:
                    assert timed(reader.get(Key(name)).to_arrow).equals(expected), name
                except DataLost as lost:
                    assert name == "put-1" and name in held and lost.key == Key(name), (name, held)
                    reader.delete(Key(name))
                    alive.discard(name)
            cluster.wait_for(
                lambda reader=reader: all(info.status == "ok" for info in reader.keys()), what="repair"
            )
        assert {"file-1", "file-2", "put-2"} <= alive


def test_a_hung_worker_makes_calls_fail_in_bounded_time_not_hang(tmp_path, monkeypatch):
    """SIGSTOP a node's worker (hung, as a worker stuck in a GIL-holding call or swapping
    is): a frame's chunks there are rebuilt from the file, the node found hung once for
    them all; listing the store answers, leaving that node out, a value homed there is read
    from its other copy, and a run with a time-out ends with `TimeoutError`; none waits
    for Dask to give up on the worker (minutes). A home only busy (its event loop answers)
    is waited for: another node's copy may be older."""
    monkeypatch.setattr("eau2_dask.transport.ANSWER_SECONDS", 3.0)  # 10 s each, shortened
    monkeypatch.setattr("eau2_dask.install.PROBE_SECONDS", 3.0)
    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        path = sor_file(tmp_path / "loaded.sor", 4000)
        eau2_dask.read_sor(path, "loaded", client=cluster.client, blocksize=10_000)
        on_hung = [i for i, chunk in enumerate(kv.get(Key("loaded")).meta.chunks) if chunk.holders == (1,)]
        assert len(on_hung) >= 4, on_hung
        kv.put(Key("both"), DataFrame.from_array(np.arange(1000.0)), replicas=2)
        kv.put(Key("homed-on-hung", 1), np.arange(10), replicas=2)
        kv.put(Key("homed-on-busy"), np.array([1]), replicas=2)
        kv.put(Key("only-on-hung", 1), np.array([1]))
        address = cluster.directory()[1]
        pid = cluster.client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()  # each chunk there would wait 6 s if the transport forgot it was hung
            read = eau2_dask.connect(cluster.client).get(Key("loaded")).to_pandas()
            assert read.equals(read_sor(path).to_pandas())
            assert time.monotonic() - started < 15
            with pytest.raises(NodeLost, match=r"every node but node\(s\) 1, which do not answer"):
                kv.delete(Key("homed-on-busy"))  # the hung node keeps its old copy, and says so
            kv.put(Key("homed-on-busy"), np.array([2]))
            started = time.monotonic()
            listing = eau2_dask.connect(cluster.client).keys()
            assert time.monotonic() - started < 15
            assert [(info.key.name, info.copies) for info in listing] == [
                ("both", 1),
                ("homed-on-busy", 1),
                ("homed-on-hung", 1),
                ("loaded", 1),
            ]
            started = time.monotonic()  # a wait on a hung home ends near its time-out, not minutes on
            with pytest.raises(TimeoutError, match="'only-on-hung' was not had within 2 s"):
                kv.get_and_wait(Key("only-on-hung", 1), timeout=2)
            assert time.monotonic() - started < 10  # its get's 3 s and a question; no second round
            started = time.monotonic()  # its home does not answer: read from the other copy
            assert list(eau2_dask.connect(cluster.client).get(Key("homed-on-hung", 1))) == list(range(10))
            assert time.monotonic() - started < 15
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="did not finish within 3"):
                eau2_dask.run(Trivial, client=cluster.client, timeout=3)
            assert time.monotonic() - started < 20
        finally:
            os.kill(pid, signal.SIGCONT)
        home = cluster.directory()[0]
        cluster.client.run(_keep_busy, 9, workers=[home])  # its event loop answers, its store waits
        started = time.monotonic()  # the busy home is waited for, not read around (node 1's is old)
        assert list(kv.get(Key("homed-on-busy"))) == [2]
        assert 7 < time.monotonic() - started < 20


def test_a_reader_waiting_on_a_hung_holder_fails_at_once_when_it_is_killed(tmp_path, monkeypatch):
    """A frame put from memory with one copy waits for its hung holder (no other way to the
    data); kill -9 that worker meanwhile, and the wait ends with `DataLost` naming the lost
    chunks, at once, not after Dask's worker-ttl; the other node's chunks are untouched."""
    monkeypatch.setattr("eau2_dask.transport.ANSWER_SECONDS", 3.0)
    monkeypatch.setattr("eau2_dask.install.PROBE_SECONDS", 3.0)
    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        kv.chunk_bytes = 160_000  # 20,000 rows a chunk
        kv.put(Key("memory"), DataFrame.from_array(np.arange(200_000.0)))
        frame = kv.get(Key("memory"))
        on_hung = [i for i, chunk in enumerate(frame.meta.chunks) if chunk.holders == (1,)]
        kept = next(i for i, chunk in enumerate(frame.meta.chunks) if chunk.holders == (0,))
        assert on_hung
        address = cluster.directory()[1]
        pid = cluster.client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGSTOP)
        outcome: dict = {}

        def read() -> None:
            try:
                frame.to_arrow()
            except DataLost as lost:
                outcome["lost"], outcome["at"] = lost, time.monotonic()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(10)  # found hung (3 s and a question), then waiting for its only copy
        assert reader.is_alive()
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        reader.join(BOUND)
        assert not reader.is_alive() and outcome["at"] - killed < BOUND
        assert set(on_hung) <= set(outcome["lost"].chunks)
        assert kv.get(Key("memory")).chunk(kept).nrows == 20_000


def test_a_repair_keeps_extra_copies_whose_kept_copy_is_killed_after_its_survey(tmp_path):
    """Extra copies (left by a hang) are removed by a repair, which the scheduler runs one
    at a time, and only while the copies kept are there: kill -9 a kept holder after a
    repair looked, and the frame keeps its other copies."""
    with RealCluster(tmp_path / "cluster.log", workers=3, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client, replicas=2)
        kv.put(Key("memory"), DataFrame.from_array(np.arange(50_000)))
        (chunk,) = kv.get(Key("memory")).meta.chunks
        transport = kv.transport
        first, victim = chunk.holders
        (third,) = set(range(3)) - {first, victim}

        def copies() -> list[int]:
            return sorted(node for node in transport.live_nodes() if transport.exists(node, chunk.key))

        transport.copy(third, chunk.key, first, 2)  # as a rebuild while a holder hung
        report = kv.repair()  # on the scheduler
        assert report.trimmed == 1 and copies() == [first, victim]
        transport.copy(third, chunk.key, first, 2)
        update = transport.update

        def kill_then_update(node: int, key: Key, meta) -> None:
            if victim in transport.live_nodes():
                cluster.kill(victim)
                cluster.wait_for(lambda: victim not in transport.live_nodes(), BOUND)
            update(node, key, meta)

        transport.update = kill_then_update
        assert repair(transport).trimmed == 0  # here, on a survey from before the kill
        transport.update = update
        assert copies() == sorted([first, third])
        # The scheduler's repair after the kill puts the metadata's second copy on `third`.
        cluster.wait_for(lambda: transport.exists(third, Key("memory")), BOUND)
        cluster.kill(first)  # one more loss: a copy is left
        cluster.wait_for(lambda: first not in transport.live_nodes(), BOUND)
        assert kv.get(Key("memory")).to_arrow().column(0).to_pylist() == list(range(50_000))


def _keep_busy(seconds: float, dask_worker) -> None:
    """Keep a worker's store busy for `seconds`: its lock held, as a long spill to disk
    holds it, so that reads wait (and so would a question about a key)."""
    store = dask_worker.extensions[EXTENSION].store

    def hold() -> None:
        with store._lock:
            time.sleep(seconds)

    threading.Thread(target=hold, daemon=True).start()


def test_the_scheduler_killed_during_a_repair_a_client_waits_on_is_one_clear_error(tmp_path):
    def hold_repairs(dask_scheduler) -> None:  # a long repair
        dask_scheduler.plugins["eau2"]._repair._runner._run = lambda: time.sleep(3600)

    with RealCluster(tmp_path / "cluster.log", workers=2, nanny=False) as cluster:
        kv = eau2_dask.connect(cluster.client)
        cluster.client.run_on_scheduler(hold_repairs)
        outcome = {}

        def wait_on_repair() -> None:
            try:
                kv.repair()
            except Exception as error:
                outcome["error"] = error

        waiting = threading.Thread(target=wait_on_repair, daemon=True)
        waiting.start()
        time.sleep(1)
        assert waiting.is_alive()
        cluster._processes[0].kill()  # the scheduler
        waiting.join(BOUND)
        assert not waiting.is_alive()
        assert isinstance(outcome["error"], ConnectionError)
        assert str(outcome["error"]).startswith(f"lost the scheduler at {cluster.address} during the repair")
