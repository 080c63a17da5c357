"""The KV store as users see it: any value by key, and DataFrames stored as chunks over the nodes."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

import pyarrow as pa

from eau2.distributed.chunking import CHUNK_BYTES, row_chunks
from eau2.frame.dataframe import DataFrame
from eau2.store.key import CHUNK_MARK, Key
from eau2.store.node import KeyExistsError
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, KeyInfo

CACHE_BYTES = 256 << 20
"""Default bound on the remote chunks a node keeps after reading them."""


class KVStore:
    """Values by `Key`, wherever their home node is.

    `put` stores a value on its key's home node; values are write-once. A `DataFrame` is
    cut into row chunks: chunk i of a frame homed on node h lives on node (h + i) mod n,
    and the value under the key is the frame's metadata. `get` of a frame returns a
    `DistributedDataFrame`; other values (numpy arrays, Arrow tables and arrays, bytes)
    come back as they went in.
    """

    def __init__(
        self, transport: Transport, *, chunk_bytes: int = CHUNK_BYTES, cache_bytes: int = CACHE_BYTES
    ):
        self.transport = transport
        self.chunk_bytes = chunk_bytes
        self._cache = _ChunkCache(cache_bytes)

    def this_node(self) -> int | None:
        """This node's number (None on a client that is not a node)."""
        return self.transport.this_node()

    def num_nodes(self) -> int:
        return self.transport.num_nodes()

    def put(self, key: Key, value) -> None:
        """Store `value` under `key`; `KeyExistsError` if the key already has a value."""
        from eau2.distributed.frame import DistributedDataFrame

        self._check_home(key)
        if isinstance(value, DistributedDataFrame):
            raise TypeError(f"key {key.name!r}: that frame is already stored (under {value.key.name!r})")
        if isinstance(value, DataFrame):
            self._put_frame(key, value)
        else:
            self.transport.put(key, value)

    def get(self, key: Key):
        """The value under `key` (a `DistributedDataFrame` for a frame); `KeyError` if none."""
        self._check_home(key)
        return self._wrap(key, self.transport.get(key))

    def get_and_wait(self, key: Key, timeout: float | None = None):
        """`get`, waiting until some node puts `key`; `TimeoutError` naming the key after `timeout` s."""
        self._check_home(key)
        return self._wrap(key, self.transport.wait(key, timeout))

    def delete(self, key: Key) -> None:
        """Remove `key` and free its value; for a frame, all its chunks too."""
        self._check_home(key)
        value = self.transport.get(key)
        self.transport.delete(key)
        if isinstance(value, FrameMeta):
            for index in range(len(value.chunk_keys)):
                chunk_key = value.chunk_key(index)
                self._cache.discard(chunk_key)
                self.transport.delete(chunk_key)

    def keys(self) -> list[KeyInfo]:
        """Every user key on every node, with its kind, size in bytes and chunk count."""
        listing = []
        for node in range(self.num_nodes()):
            for info in self.transport.keys(node):
                if info.key.is_internal:
                    continue
                if info.kind == "frame":
                    meta = self.transport.get(info.key)
                    info = KeyInfo(info.key, "frame", meta.nbytes, len(meta.chunk_keys))
                listing.append(info)
        return sorted(listing, key=lambda info: info.key)

    def chunk(self, meta: FrameMeta, index: int) -> pa.Table:
        """Chunk `index` of a stored frame: local ones directly, remote ones through the cache."""
        key = meta.chunk_key(index)
        if key.home == self.this_node():
            return self.transport.get(key)
        return self._cache.get_or_fetch(key, self.transport.get)

    def _put_frame(self, key: Key, frame: DataFrame) -> None:
        n = self.num_nodes()
        tag = uuid.uuid4().hex[:12]
        chunks = row_chunks(frame.to_arrow(), self.chunk_bytes)
        chunk_keys = [
            Key.internal(f"{key.name}{CHUNK_MARK}{tag}{CHUNK_MARK}{i}", (key.home + i) % n)
            for i in range(len(chunks))
        ]
        meta = FrameMeta(
            schema=str(frame.schema),
            names=frame.column_names,
            chunk_rows=[chunk.num_rows for chunk in chunks],
            chunk_bytes=[chunk.nbytes for chunk in chunks],
            chunk_keys=[(k.name, k.home) for k in chunk_keys],
            dropped_rows=frame.dropped_rows,
        )
        stored = []
        try:
            if self._has(key):
                raise KeyExistsError(f"key {key.name!r} already has a value: values are write-once")
            for chunk_key, chunk in zip(chunk_keys, chunks, strict=True):
                self.transport.put(chunk_key, chunk)
                stored.append(chunk_key)
            self.transport.put(key, meta)
        except BaseException:
            for chunk_key in stored:
                self.transport.delete(chunk_key)
            raise

    def _has(self, key: Key) -> bool:
        try:
            self.transport.get(key)
        except KeyError:
            return False
        return True

    def _wrap(self, key: Key, value):
        from eau2.distributed.frame import DistributedDataFrame

        if isinstance(value, FrameMeta):
            return DistributedDataFrame(self, key, value)
        return value

    def _check_home(self, key: Key) -> None:
        if not isinstance(key, Key):
            raise TypeError(f"a key is an eau2.Key, not {type(key).__name__}")
        if key.home >= self.num_nodes():
            raise ValueError(
                f"key {key.name!r} has home node {key.home}, but there are {self.num_nodes()} nodes"
            )


class _ChunkCache:
    """Remote chunks read lately, least recently used first out, within a byte bound."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._chunks: OrderedDict[Key, pa.Table] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_or_fetch(self, key: Key, fetch) -> pa.Table:
        with self._lock:
            if key in self._chunks:
                self._chunks.move_to_end(key)
                return self._chunks[key]
        chunk = fetch(key)
        if chunk.nbytes <= self.capacity:
            with self._lock:
                if key not in self._chunks:
                    self._chunks[key] = chunk
                    self._bytes += chunk.nbytes
                while self._bytes > self.capacity:
                    _, evicted = self._chunks.popitem(last=False)
                    self._bytes -= evicted.nbytes
        return chunk

    def discard(self, key: Key) -> None:
        with self._lock:
            chunk = self._chunks.pop(key, None)
            if chunk is not None:
                self._bytes -= chunk.nbytes
