"""The interface between the KV store and the nodes: raw values by key, wherever they live."""

from __future__ import annotations

from abc import ABC, abstractmethod

from eau2.errors import Eau2Error
from eau2.store.key import Key
from eau2.store.values import KeyInfo


class RunCancelled(Eau2Error, RuntimeError):
    """An application run was cancelled (another node failed) while this node waited."""


class Transport(ABC):
    """How one node, or a client, reaches the values homed on every node.

    Values here are raw: Arrow tables and arrays, numpy arrays, bytes, frame metadata.
    `eau2.KVStore` builds frames and the user's API on top. Implementations: in-process
    nodes (`eau2.store.inprocess`) and Dask nodes (`eau2_dask`); both pass one conformance
    suite.
    """

    @abstractmethod
    def this_node(self) -> int | None:
        """This node's number, or None on a client that is not a node."""

    @abstractmethod
    def num_nodes(self) -> int: ...

    @abstractmethod
    def put(self, key: Key, value) -> None:
        """Store `value` on node `key.home`; `KeyExistsError` if the key has a value."""

    @abstractmethod
    def get(self, key: Key):
        """The value under `key`; `KeyError` naming the key if there is none."""

    @abstractmethod
    def wait(self, key: Key, timeout: float | None):
        """The value under `key` once it is put; `TimeoutError` naming the key after `timeout` s."""

    @abstractmethod
    def delete(self, key: Key) -> None:
        """Remove `key`; `KeyError` if there is none."""

    @abstractmethod
    def keys(self, node: int) -> list[KeyInfo]:
        """The keys homed on `node`, with their kinds and sizes."""

    def to_dask(self, meta):
        """A dask DataFrame over a stored frame's chunks; only transports on Dask have one."""
        raise NotImplementedError(f"to_dask() needs eau2 nodes on Dask; these are {type(self).__name__}'s")
