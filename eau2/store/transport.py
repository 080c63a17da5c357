"""The interface between the KV store and the nodes: raw values by node and key."""

from __future__ import annotations

from abc import ABC, abstractmethod

from eau2.errors import RunCancelled
from eau2.sor.origin import BlockOrigin, reload_block
from eau2.store.key import Key
from eau2.store.values import FrameMeta, KeyInfo

__all__ = ["RunCancelled", "Transport"]


class Transport(ABC):
    """How one node, or a client, reaches the values held by every node.

    Every call names the node it acts on; which nodes hold what (replicas, failover,
    repair) is decided above, in `eau2.KVStore`. A call on a node that is gone raises
    `eau2.NodeLost` at once. Values are raw: Arrow tables and arrays, numpy arrays,
    bytes, frame metadata. Implementations: in-process nodes (`eau2.store.inprocess`)
    and Dask nodes (`eau2_dask`); both pass one conformance suite.
    """

    @abstractmethod
    def this_node(self) -> int | None:
        """This node's number, or None on a client that is not a node."""

    @abstractmethod
    def num_nodes(self) -> int:
        """How many node numbers there are, live or gone."""

    @abstractmethod
    def live_nodes(self) -> list[int]:
        """The nodes whose workers are there now, in order."""

    @abstractmethod
    def put(self, node: int, key: Key, value, replicas: int = 1) -> None:
        """Store `value` on `node`; `KeyExistsError` if `node` has a value under `key`.
        `replicas`: how many nodes are asked to keep a copy (the node records it for repair)."""

    @abstractmethod
    def get(self, node: int, key: Key, impatient: bool = False):
        """The value under `key` on `node`; `KeyError` naming the key if it has none.
        `impatient`: `NodeLost` if the node is hung (it has not answered in the time a call
        that moves no data has, nor answers such a call then), rather than waiting while its
        worker is there; a node that is only busy, or slow to send, is waited for."""

    def answering(self, node: int) -> bool:
        """False while `node` is hung as far as this transport knows: a call found it so
        (no answer within its time), and it has not answered since. Reads with another way to their data
        go around such a node instead of asking it."""
        return True

    @abstractmethod
    def wait(self, node: int, key: Key, timeout: float | None):
        """The value under `key` on `node` once it is put; `TimeoutError` after `timeout` s,
        `NodeLost` if the node is gone or hung (answers neither the wait nor a quick question)."""

    @abstractmethod
    def info(self, node: int, key: Key) -> KeyInfo | None:
        """What `node` holds under `key` (kind and size), or None; the value does not travel."""

    @abstractmethod
    def delete(self, node: int, key: Key) -> None:
        """Remove `key` from `node`; `KeyError` if it has none."""

    @abstractmethod
    def keys(self, node: int) -> list[KeyInfo]:
        """Every key `node` holds (internal ones too), with kinds and sizes."""

    @abstractmethod
    def drop(self, node: int, prefix: str) -> int:
        """Delete `node`'s internal keys whose names start with `prefix`, and make it refuse
        them from now on; how many were deleted."""

    @abstractmethod
    def update(self, node: int, key: Key, meta: FrameMeta) -> None:
        """Replace the frame metadata under `key` on `node` (repair only)."""

    def exists(self, node: int, key: Key) -> bool:
        return self.info(node, key) is not None

    def sync(self, node: int, prefix: str) -> None:  # noqa: B027 - most nodes have nothing to sync
        """Wait until `node` has written to its directory every value it was given to
        write in the background; `DiskError` if one whose name starts with `prefix` could
        not be written."""

    def copy(self, node: int, key: Key, source: int, replicas: int = 1) -> None:
        """Make `node` hold the value `source` holds under `key` (a replica)."""
        self.put(node, key, self.get(source, key), replicas)

    def rebuild(self, node: int, key: Key, origin: BlockOrigin) -> None:
        """Make `node` hold the chunk `origin` describes, read again from its file."""
        self.put(node, key, reload_block(origin))
