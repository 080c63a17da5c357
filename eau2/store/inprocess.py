"""Nodes as threads in one process: the seeds' "fake network", and fast unit tests."""

from __future__ import annotations

from eau2.errors import NodeLost
from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, KeyInfo
from eau2.store.waits import Cancellation, wait_for


class InProcessCluster:
    """`nodes` node stores in this process. `transport(i)` is node i's view of all of them.

    `kill(i)` loses node i and everything it holds, as a killed worker would;
    `restart(i)` brings it back empty.

    Examples:
        >>> cluster = InProcessCluster(2)
        >>> cluster.transport(1).put(0, Key("x", 0), b"hello")
        >>> cluster.transport(0).get(0, Key("x", 0))
        b'hello'
        >>> cluster.close()
    """

    def __init__(self, nodes: int = 3, budget: int | None = None):
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.budget = budget
        self.stores: list[NodeStore | None] = [NodeStore(budget) for _ in range(nodes)]
        self.cancellation = Cancellation()

    def transport(self, node: int | None) -> InProcessTransport:
        return InProcessTransport(self, node)

    def kill(self, node: int) -> None:
        """Lose node `node` and every value it holds."""
        store, self.stores[node] = self.stores[node], None
        if store is not None:
            store.close()

    def restart(self, node: int) -> None:
        """Bring node `node` back, empty (a nanny's restart)."""
        if self.stores[node] is None:
            self.stores[node] = NodeStore(self.budget)

    def cancel(self, reason: str) -> None:
        """Wake every waiting `get_and_wait` with `RunCancelled(reason)`; every later call
        of a transport raises it too (a run's ranks stop at their next call)."""
        self.cancellation.cancel(reason)

    def close(self) -> None:
        for node in range(len(self.stores)):
            self.kill(node)

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

    def live_nodes(self) -> list[int]:
        return [node for node, store in enumerate(self._cluster.stores) if store is not None]

    def put(self, node: int, key: Key, value, replicas: int = 1) -> None:
        self._store(node).put(key, value, replicas)

    def get(self, node: int, key: Key, impatient: bool = False):
        return self._store(node).get(key)  # a node in this process answers at once

    def wait(self, node: int, key: Key, timeout: float | None):
        store = self._store(node)
        try:
            return wait_for(store, key, timeout, self._cluster.cancellation)
        except TimeoutError:
            if store.closed:
                raise NodeLost(node) from None
            raise

    def info(self, node: int, key: Key) -> KeyInfo | None:
        return self._store(node).info(key)

    def delete(self, node: int, key: Key) -> None:
        self._store(node).delete(key)

    def keys(self, node: int) -> list[KeyInfo]:
        return self._store(node).keys()

    def drop(self, node: int, prefix: str) -> int:
        return self._store(node).drop(prefix)

    def update(self, node: int, key: Key, meta: FrameMeta) -> None:
        self._store(node).update(key, meta)

    def _store(self, node: int) -> NodeStore:
        self._cluster.cancellation.check()
        if not 0 <= node < len(self._cluster.stores):
            raise NodeLost(node, f"there is no node {node}: the cluster has {len(self._cluster.stores)}")
        store = self._cluster.stores[node]
        if store is None:
            raise NodeLost(node)
        return store
