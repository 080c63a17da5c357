"""The Transport over Dask: values on this worker directly, on other workers by RPC."""

from __future__ import annotations

from collections.abc import Callable

from distributed.utils import sync

from eau2.errors import Eau2Error
from eau2.store.key import Key
from eau2.store.transport import Transport
from eau2.store.values import KeyInfo
from eau2.store.waits import wait_for
from eau2_dask.node import EXPECTED_ERRORS, Eau2Node
from eau2_dask.wire import unwire, wire


class NodeLost(Eau2Error, ConnectionError):
    """A node's worker is not in the cluster (it died, or has not come back yet)."""


class DaskTransport(Transport):
    """A node's (or a client's) access to the eau2 nodes of a Dask cluster.

    Calls block the calling thread: use it from a task or a client's thread, never from
    the event loop. Peer traffic goes worker to worker (or client to worker) over Dask's
    comms; nothing passes through the scheduler but the directory of node addresses.
    """

    def __init__(
        self,
        loop,
        rpc: Callable,
        scheduler,
        *,
        node: int | None = None,
        local: Eau2Node | None = None,
        run_id: str | None = None,
        directory: list[str | None] | None = None,
    ):
        self._loop = loop
        self._rpc = rpc
        self._scheduler = scheduler
        self._node = node
        self._local = local
        self._run_id = run_id
        self._directory = directory

    def this_node(self) -> int | None:
        return self._node

    def num_nodes(self) -> int:
        return len(self.directory())

    def directory(self, refresh: bool = False) -> list[str | None]:
        """Each node's worker address, by node number."""
        if self._directory is None or refresh:
            self._directory = sync(self._loop, self._scheduler.eau2_directory)
        return self._directory

    def put(self, key: Key, value) -> None:
        if self._is_local(key):
            self._local.store.put(key, value)
        else:
            self._call(key.home, "eau2_put", name=key.name, home=key.home, value=wire(value))

    def get(self, key: Key):
        if self._is_local(key):
            return self._local.store.get(key)
        return unwire(self._call(key.home, "eau2_get", name=key.name, home=key.home)["value"])

    def wait(self, key: Key, timeout: float | None):
        if self._is_local(key):
            cancellation = self._local.cancellation(self._run_id) if self._run_id else None
            return wait_for(self._local.store, key, timeout, cancellation)
        reply = self._call(
            key.home, "eau2_wait", name=key.name, home=key.home, timeout=timeout, run_id=self._run_id
        )
        return unwire(reply["value"])

    def delete(self, key: Key) -> None:
        if self._is_local(key):
            self._local.store.delete(key)
        else:
            self._call(key.home, "eau2_delete", name=key.name, home=key.home)

    def keys(self, node: int) -> list[KeyInfo]:
        if node == self._node and self._local is not None:
            return self._local.store.keys()
        rows = self._call(node, "eau2_keys")
        return [KeyInfo(Key.internal(name, home), kind, nbytes) for name, home, kind, nbytes in rows]

    def to_dask(self, meta):
        from eau2_dask.collection import to_dask

        return to_dask(meta, self.directory())

    def _is_local(self, key: Key) -> bool:
        return self._local is not None and key.home == self._node

    def _call(self, node: int, verb: str, **arguments):
        address = self._address(node)
        reply = sync(self._loop, getattr(self._rpc(address), verb), **arguments)
        if isinstance(reply, dict) and "error" in reply:
            raise EXPECTED_ERRORS[reply["error"]](reply["message"])
        return reply

    def _address(self, node: int) -> str:
        nodes = self.directory()
        if node >= len(nodes) or nodes[node] is None:
            nodes = self.directory(refresh=True)
        if node >= len(nodes):
            raise NodeLost(f"there is no node {node}: the cluster has {len(nodes)} nodes")
        if nodes[node] is None:
            raise NodeLost(f"node {node} has left the cluster")
        return nodes[node]
