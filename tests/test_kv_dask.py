"""The KV conformance suite on Dask nodes: three worker processes, reached from the client."""

import pytest

import eau2_dask
from eau2 import KVStore
from tests.kv_conformance import CHUNK_BYTES, KVConformance


@pytest.fixture
def kvs(client):
    return [
        KVStore(eau2_dask.connect(client, node=node).transport, chunk_bytes=CHUNK_BYTES) for node in range(3)
    ]


class TestDaskKV(KVConformance):
    pass


def test_nodes_are_numbered_by_worker_name(client):
    directory = eau2_dask.ensure_ready(client)
    names = {
        address: str(info["name"]) for address, info in client.scheduler_info(n_workers=-1)["workers"].items()
    }
    assert [names[address] for address in directory] == ["0", "1", "2"]


def test_values_travel_worker_to_worker_without_the_scheduler(client):
    # The scheduler sees no eau2 value: it only answers the directory.
    handlers = client.run_on_scheduler(
        lambda dask_scheduler: sorted(h for h in dask_scheduler.handlers if "eau2" in h)
    )
    assert handlers == ["eau2_directory"]
