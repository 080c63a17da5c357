"""Nodes as threads in one process: the seeds' "fake network", and fast unit tests."""

from __future__ import annotations

import threading

from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2.store.transport import RunCancelled, Transport
from eau2.store.values import KeyInfo


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
        self.stores = [NodeStore(node, budget) for node in range(nodes)]
        self._cancel_reason: str | None = None
        self._waiting: set[threading.Event] = set()
        self._lock = threading.Lock()

    def transport(self, node: int | None) -> InProcessTransport:
        return InProcessTransport(self, node)

    def cancel(self, reason: str) -> None:
        """Wake every waiting `get_and_wait` with `RunCancelled(reason)`."""
        with self._lock:
            self._cancel_reason = reason
            waiting = list(self._waiting)
        for event in waiting:
            event.set()

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
        store = self._store(key)
        event = threading.Event()
        with self._cluster._lock:
            self._raise_if_cancelled()
            self._cluster._waiting.add(event)
        cancel = store.when_put(key, event.set)
        try:
            arrived = event.wait(timeout)
        finally:
            cancel()
            with self._cluster._lock:
                self._cluster._waiting.discard(event)
        if key in store:
            return store.get(key)
        self._raise_if_cancelled()
        assert not arrived
        raise TimeoutError(f"key {key.name!r} was not put on node {key.home} within {timeout} s")

    def delete(self, key: Key) -> None:
        self._store(key).delete(key)

    def keys(self, node: int) -> list[KeyInfo]:
        return self._cluster.stores[node].keys()

    def _store(self, key: Key) -> NodeStore:
        return self._cluster.stores[key.home]

    def _raise_if_cancelled(self) -> None:
        if self._cluster._cancel_reason is not None:
            raise RunCancelled(self._cluster._cancel_reason)
