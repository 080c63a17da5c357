"""The KV conformance suite on Dask nodes: three worker processes, reached from the client,
and from inside the workers themselves (each transport call runs as a task on its node)."""

import functools
import re
import threading
import time

import pytest
from distributed import Client, secede

import eau2_dask
from eau2 import KVStore
from eau2.store.transport import Transport
from eau2_dask.transport import worker_transport
from tests.kv_conformance import CHUNK_BYTES, KVConformance


@pytest.fixture
def kvs(client):
    return [
        KVStore(eau2_dask.connect(client, node=node).transport, chunk_bytes=CHUNK_BYTES) for node in range(3)
    ]


class TestDaskKV(KVConformance):
    pass


class OnWorker(Transport):
    """Node `node`'s own transport, as its tasks use it: every call runs in a task on that
    node's worker (its own values directly, the others' by worker-to-worker RPC)."""

    def __init__(self, client: Client, node: int):
        self._client = client
        self._node = node
        self._address = eau2_dask.ensure_ready(client)[node]

    def _run(self, method: str, *args):
        future = self._client.submit(
            _call_on_worker, method, args, workers=[self._address], allow_other_workers=False, pure=False
        )
        return future.result(timeout=120)

    def this_node(self):
        return self._node

    def num_nodes(self):
        return self._run("num_nodes")

    def live_nodes(self):
        return self._run("live_nodes")

    def put(self, node, key, value, replicas=1):
        return self._run("put", node, key, value, replicas)

    def get(self, node, key, impatient=False):
        return self._run("get", node, key, impatient)

    def wait(self, node, key, timeout):
        return self._run("wait", node, key, timeout)

    def info(self, node, key):
        return self._run("info", node, key)

    def delete(self, node, key):
        return self._run("delete", node, key)

    def keys(self, node):
        return self._run("keys", node)

    def update(self, node, key, meta):
        return self._run("update", node, key, meta)

    def drop(self, node, prefix):
        return self._run("drop", node, prefix)

    def copy(self, node, key, source, replicas=1):
        return self._run("copy", node, key, source, replicas)

    def rebuild(self, node, key, origin):
        return self._run("rebuild", node, key, origin)


def _call_on_worker(method: str, args: tuple):
    secede()  # waits must not hold the worker's one thread
    return getattr(worker_transport(), method)(*args)


@pytest.fixture
def worker_kvs(client):
    return [KVStore(OnWorker(client, node), chunk_bytes=CHUNK_BYTES) for node in range(3)]


class TestDaskKVFromInsideWorkers(KVConformance):
    @pytest.fixture
    def kvs(self, worker_kvs):
        return worker_kvs


def test_nodes_are_numbered_by_worker_name(client):
    directory = eau2_dask.ensure_ready(client)
    names = {
        address: str(info["name"]) for address, info in client.scheduler_info(n_workers=-1)["workers"].items()
    }
    assert [names[address] for address in directory] == ["0", "1", "2"]


def test_values_travel_worker_to_worker_without_the_scheduler(client):
    # The scheduler sees no eau2 value: it only answers the directory and runs repairs.
    eau2_dask.ensure_ready(client)
    handlers = client.run_on_scheduler(
        lambda dask_scheduler: sorted(h for h in dask_scheduler.handlers if "eau2" in h)
    )
    assert handlers == ["eau2_directory", "eau2_repair", "eau2_repair_now"]


def _watch_repairs(dask_scheduler, hold: bool = False, fail=None) -> None:
    """Count the scheduler's repairs as they run; with `hold`, each waits for
    `_let_repairs_go` (as a long repair takes its time); with `fail`, each raises the
    error it makes."""
    repairs = dask_scheduler.plugins["eau2"]._repair
    runner = repairs._runner
    run = runner.__dict__.setdefault("unwatched", runner._run)
    repairs.ran, repairs.go = 0, threading.Event()
    if not hold:
        repairs.go.set()

    def watched():
        repairs.go.wait(60)
        repairs.ran += 1
        if fail is not None:
            raise fail()
        return run()

    runner._run = watched


def _let_repairs_go(dask_scheduler) -> None:
    dask_scheduler.plugins["eau2"]._repair.go.set()


def _repairs_run(dask_scheduler) -> int:
    return dask_scheduler.plugins["eau2"]._repair.ran


def _unwatch_repairs(dask_scheduler) -> None:
    repairs = dask_scheduler.plugins["eau2"]._repair
    repairs.go.set()
    repairs._runner._run = repairs._runner.unwatched


@pytest.fixture
def watched(client):
    """The scheduler's repairs counted (and held or failed, see `_watch_repairs`)."""
    eau2_dask.ensure_ready(client)
    try:
        yield lambda **how: client.run_on_scheduler(_watch_repairs, **how)
    finally:
        client.run_on_scheduler(_unwatch_repairs)


def _repair_from_a_task(timeout: float | None = None) -> str | dict:
    from eau2_dask.kv import DaskKVStore

    try:
        return DaskKVStore(worker_transport()).repair(timeout=timeout).lost
    except TimeoutError as error:
        return str(error)


def test_repairs_asked_by_clients_and_tasks_run_on_the_scheduler(client, watched):
    watched()
    report = eau2_dask.connect(client).repair()
    assert report.lost == {} and client.run_on_scheduler(_repairs_run) == 1
    assert client.submit(_repair_from_a_task, pure=False).result(timeout=60) == {}
    assert client.run_on_scheduler(_repairs_run) == 2


def test_a_repair_on_the_scheduler_waited_for_with_a_timeout_says_so_in_time(client, watched):
    kv = eau2_dask.connect(client)
    watched(hold=True)  # a long repair
    goes_on = "if the scheduler at .* had the request, the repair goes on there"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"did not finish within 0.5 s; {goes_on}"):
        kv.repair(timeout=0.5)
    assert time.monotonic() - started < 5
    said = client.submit(_repair_from_a_task, 0.5, pure=False).result(timeout=60)
    assert re.fullmatch(rf"the repair did not finish within 0.5 s; {goes_on}", said)
    for _ in range(5):  # a caller trying again and again
        with pytest.raises(TimeoutError):
            kv.repair(timeout=0.1)
    client.run_on_scheduler(_let_repairs_go)
    assert kv.repair(timeout=60).lost == {}
    # The one under way, then one for all 7 requests made meanwhile (and one more for the
    # last, if it came after that one began), not one each.
    assert client.run_on_scheduler(_repairs_run) in (2, 3)
    with pytest.raises(ValueError, match="a timeout is a number of seconds"):
        kv.repair(timeout=-1)


def test_a_repair_s_own_error_reaches_its_caller_as_it_is(client, watched):
    watched(fail=functools.partial(PermissionError, 13, "cannot write the node directory"))
    with pytest.raises(PermissionError, match="cannot write the node directory"):
        eau2_dask.connect(client).repair(timeout=60)


class _NotUnpickled(Exception):
    def __init__(self, what: str, where: str):
        super().__init__(f"{what} at {where}")


def test_a_repair_s_error_that_cannot_be_unpickled_reaches_its_caller_as_text(client, watched):
    watched(fail=functools.partial(_NotUnpickled, "the disk is gone", "/data/eau2"))
    with pytest.raises(RuntimeError, match=r"^_NotUnpickled: the disk is gone at /data/eau2$"):
        eau2_dask.connect(client).repair(timeout=60)


def test_a_repair_asked_through_a_closed_client_says_so(client):
    eau2_dask.ensure_ready(client)
    with Client(client.scheduler.address) as other:
        kv = eau2_dask.connect(other)
    with pytest.raises(ConnectionError, match="this store's client is closed"):
        kv.repair(timeout=10)
