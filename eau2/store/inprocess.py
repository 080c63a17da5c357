"""Nodes as threads in one process: the seeds' "fake network", and fast unit tests."""

from __future__ import annotations

from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2.store.transport import Transport
from eau2.store.values import KeyInfo
from eau2.store.waits import Cancellation, wait_for


class InProcessCluster:
    """`nodes` node stores in this process. `transport(i)` is node i's view of all of them.

    >>> cluster = InProcessCluster(2)
    >>> cluster.transport(1).put(Key("x", 0), b"hello")
    >>> cluster.transport(0).get(Key("x", 0))
    b'hello'
    >>> cluster.close()
    """

    def __init__(self, nodes: int = 3, budget: int | None = None):
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.stores = [NodeStore(budget) for _ in range(nodes)]
        self.cancellation = Cancellation()

    def transport(self, node: int | None) -> InProcessTransport:
        return InProcessTransport(self, node)

    def cancel(self, reason: str) -> None:
        """Wake every waiting `get_and_wait` with `RunCancelled(reason)`."""
        self.cancellation.cancel(reason)

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def __enter__(self) -> InProcessCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcessTransport(Transport):
    """One node's (or, with node None, a client's) access to an `InProcessCluster`."""

    def __init__(self, cluster: InProcessCluster, node: int | None):
        self._cluster = cluster
        self._node = node

    def this_node(self) -> int | None:
        return self._node

    def num_nodes(self) -> int:
        return len(self._cluster.stores)

    def put(self, key: Key, value) -> None:
        self._store(key).put(key, value)

    def get(self, key: Key):
        return self._store(key).get(key)

    def wait(self, key: Key, timeout: float | None):
        return wait_for(self._store(key), key, timeout, self._cluster.cancellation)

    def delete(self, key: Key) -> None:
        self._store(key).delete(key)

    def keys(self, node: int) -> list[KeyInfo]:
        return self._cluster.stores[node].keys()

    def _store(self, key: Key) -> NodeStore:
        return self._cluster.stores[key.home]
