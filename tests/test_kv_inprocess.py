"""The KV conformance suite on in-process nodes."""

import pytest

from eau2 import KVStore
from eau2.store.inprocess import InProcessCluster
from tests.kv_conformance import CHUNK_BYTES, KVConformance


@pytest.fixture
def kvs():
    with InProcessCluster(3) as cluster:
        yield [KVStore(cluster.transport(node), chunk_bytes=CHUNK_BYTES) for node in range(3)]


class TestInProcessKV(KVConformance):
    pass
