"""The KV conformance suite on Dask nodes: three worker processes, reached from the client,
and from inside the workers themselves (each transport call runs as a task on its node)."""

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


def _count_repairs(dask_scheduler) -> None:
    repairs = dask_scheduler.plugins["eau2"]._repair
    run = repairs.now

    def counted():
        repairs.counted = getattr(repairs, "counted", 0) + 1
        return run()

    repairs.now = counted


def _repairs_counted(dask_scheduler) -> int:
    return getattr(dask_scheduler.plugins["eau2"]._repair, "counted", 0)


def _repair_from_a_task() -> dict:
    from eau2_dask.kv import DaskKVStore
    from eau2_dask.transport import worker_transport

    return DaskKVStore(worker_transport()).repair().lost


def test_repairs_asked_by_clients_and_tasks_run_on_the_scheduler(client):
    eau2_dask.ensure_ready(client)
    client.run_on_scheduler(_count_repairs)
    report = eau2_dask.connect(client).repair()
    assert report.lost == {} and client.run_on_scheduler(_repairs_counted) == 1
    assert client.submit(_repair_from_a_task, pure=False).result(timeout=60) == {}
    assert client.run_on_scheduler(_repairs_counted) == 2


def _hold_repairs(hold: bool, dask_scheduler) -> None:
    """Hold (or let go) the scheduler's one-repair-at-a-time lock, as a long repair does."""
    lock = dask_scheduler.plugins["eau2"]._repair._one_at_a_time
    lock.acquire() if hold else lock.release()


def _repair_from_a_task_within(timeout: float) -> str:
    from eau2_dask.kv import DaskKVStore

    try:
        DaskKVStore(worker_transport()).repair(timeout=timeout)
    except TimeoutError as error:
        return str(error)
    return "finished"


def test_a_repair_on_the_scheduler_waited_for_with_a_timeout_says_so_in_time(client):
    kv = eau2_dask.connect(client)
    client.run_on_scheduler(_hold_repairs, True)  # a repair under way
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not finish within 0.5 s; it goes on on the scheduler"):
            kv.repair(timeout=0.5)
        assert time.monotonic() - started < 5
        said = client.submit(_repair_from_a_task_within, 0.5, pure=False).result(timeout=60)
        assert said == "the repair did not finish within 0.5 s; it goes on on the scheduler"
    finally:
        client.run_on_scheduler(_hold_repairs, False)
    assert kv.repair(timeout=60).lost == {}
    with pytest.raises(ValueError, match="a timeout is a number of seconds"):
        kv.repair(timeout=-1)
