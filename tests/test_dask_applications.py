"""Applications on Dask nodes: real worker processes, any start order, failures, lost workers."""

import itertools
import os
import time

import pytest

import eau2_dask
from eau2 import Application, ApplicationError, Key
from eau2.examples import Demo, Trivial
from tests.dask_clusters import assert_no_new_processes, children


class DemoStartingLate(Demo):
    """The Demo, each node starting after its own delay."""

    def __init__(self, delays):
        self.delays = delays

    def run(self):
        time.sleep(self.delays[self.this_node()])
        return super().run()


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_demo_in_every_start_order(client, capsys, order):
    delays = [0.4 * order.index(node) for node in range(3)]
    results = eau2_dask.run(DemoStartingLate, delays, client=client, timeout=120)
    assert results == [None, {"sum": 4_999_950_000.0}, {"result": "SUCCESS"}]
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == ["[node 1] The sum is 4999950000", "[node 2] SUCCESS"]


def test_trivial(client):
    assert eau2_dask.run(Trivial, client=client, timeout=120)[0] == {"sum": 499_999_500_000.0}


class NodeOneFails(Application):
    def run(self):
        if self.this_node() == 1:
            raise ValueError("bad input on node 1")
        return self.kv.get_and_wait(Key("never-put"))


def test_a_failure_names_its_node_and_cancels_the_rest(client):
    started = time.monotonic()
    with pytest.raises(ApplicationError, match="node 1: ValueError: bad input on node 1") as caught:
        eau2_dask.run(NodeOneFails, client=client, timeout=60)
    assert caught.value.node == 1
    assert time.monotonic() - started < 30
    # The cluster is still usable afterwards.
    assert eau2_dask.run(Trivial, client=client, timeout=120)[0] == {"sum": 499_999_500_000.0}


class WaitsForever(Application):
    def run(self):
        return self.kv.get_and_wait(Key("never-put-either", 2))


def test_timeout(client):
    with pytest.raises(TimeoutError, match="did not finish within 1 s"):
        eau2_dask.run(WaitsForever, client=client, timeout=1)


class WorkerDies(Application):
    def run(self):
        if self.this_node() == 1:
            time.sleep(0.5)
            os._exit(1)  # the worker process dies, as on a crash or an OOM kill
        return self.kv.get_and_wait(Key("never-put-again"))


def test_a_killed_worker_fails_the_run_naming_its_node():
    before = children()
    with eau2_dask.embedded_cluster(2, quiet=True) as client:
        started = time.monotonic()
        with pytest.raises(ApplicationError, match=r"node 1: its worker .* left the cluster"):
            eau2_dask.run(WorkerDies, client=client, timeout=120)
        assert time.monotonic() - started < 30
    assert_no_new_processes(before)


def test_read_sor_and_run_use_the_client_given_even_with_no_default_one(client, tmp_path, monkeypatch):
    """A script whose clients were made with ``set_as_default=False`` still loads and runs
    on the cluster of the client it names."""
    import distributed.client

    from eau2 import read_sor

    path = tmp_path / "small.sor"
    path.write_text("<1> <2.5> <a>\n<2> <3.5> <b>\n")
    monkeypatch.setattr(distributed.client, "_global_clients", {})
    no_current = distributed.client._current_client.set(None)
    try:
        with pytest.raises(ValueError, match="No clients found"):
            distributed.client.default_client()
        frame = eau2_dask.read_sor(str(path), client=client, timeout=60)
        assert frame.to_arrow().equals(read_sor(path).to_arrow())
        assert eau2_dask.run(Trivial, client=client, timeout=120)[0] == {"sum": 499_999_500_000.0}
        eau2_dask.connect(client).delete(frame.key)
    finally:
        distributed.client._current_client.reset(no_current)
