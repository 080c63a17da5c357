"""The KV store as users see it: any value by key, and DataFrames stored as chunks over the nodes."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import pyarrow as pa

from eau2.distributed.checks import check_replicas, check_timeout
from eau2.distributed.chunking import CHUNK_BYTES, row_chunks
from eau2.distributed.commit import FrameWriter
from eau2.distributed.frame import DistributedDataFrame
from eau2.distributed.load import BLOCK_BYTES, BlockResult, LoadPlan, parse_chunk
from eau2.distributed.placement import holders
from eau2.distributed.reads import find_value, read_chunk
from eau2.distributed.repair import OneRepairAtATime, RepairReport, repair, waited_for
from eau2.distributed.survey import Survey, frame_health, holds, survey
from eau2.errors import KeyExistsError, NodeLost
from eau2.frame.dataframe import DataFrame
from eau2.sor.block import MAX_COLUMNS, MAX_LINE_BYTES
from eau2.store.key import Key
from eau2.store.node import missing_key
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, KeyInfo, chunk_prefix, frame_of_chunk

CACHE_BYTES = 256 << 20
"""Default bound on the remote chunks a node keeps after reading them."""

__all__ = ["CACHE_BYTES", "KVStore", "KeyExistsError"]


class KVStore:
    """Values by `Key`, wherever their home node is, kept on `replicas` nodes each.

    `put` stores a value on its key's home node (the next live node if that one is gone)
    and on the live nodes after it, up to `replicas`; values are write-once. A
    `DataFrame` is cut into row chunks spread over the live nodes from the key's home,
    each chunk on `replicas` nodes; the value under the key is the frame's metadata. `get`
    of a frame returns a `DistributedDataFrame`; other values (numpy arrays, Arrow tables
    and arrays, bytes) come back as they went in. Reads use any live copy, this node's
    first; a chunk with no copy left is read again from its file, or `eau2.DataLost`.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        cache_bytes: int = CACHE_BYTES,
        replicas: int = 1,
        on_write: Callable[[Key, str | None], None] | None = None,
    ):
        self.transport = transport
        self.chunk_bytes = chunk_bytes
        self.replicas = check_replicas(replicas)
        self._cache = _ChunkCache(cache_bytes)
        self._repairs = OneRepairAtATime(lambda: repair(self.transport))
        self._on_write = on_write
        """Told of each write this store makes, to take it back later (`take_back`): a
        value put, as (key, None) once it is stored; a frame, as (key, its write's tag)
        before its first chunk goes out."""

    def this_node(self) -> int | None:
        """This node's number (None on a client that is not a node)."""
        return self.transport.this_node()

    def num_nodes(self) -> int:
        return self.transport.num_nodes()

    def put(self, key: Key, value, *, replicas: int | None = None) -> None:
        """Store `value` under `key` on `replicas` nodes (the store's setting by default);
        `KeyExistsError` if the key already has a value."""
        self._check_home(key)
        replicas = self.replicas if replicas is None else check_replicas(replicas)
        if isinstance(value, DistributedDataFrame):
            raise TypeError(f"key {key.name!r}: that frame is already stored (under {value.key.name!r})")
        if isinstance(value, FrameMeta):
            raise TypeError(f"key {key.name!r}: cannot store a frame's metadata; store the DataFrame")
        if isinstance(value, DataFrame):
            self._put_frame(key, value, replicas)
            return
        live = self.transport.live_nodes()
        nodes = holders(live, key.home, replicas)
        if any(holds(self.transport, node, key) for node in live if node != nodes[0]):
            raise KeyExistsError.of(key)
        self.transport.put(nodes[0], key, value, replicas)  # write-once: of racing writers, one wins
        if self._on_write:
            self._on_write(key, None)
        for node in nodes[1:]:
            with contextlib.suppress(NodeLost, KeyExistsError):
                self.transport.put(node, key, value, replicas)

    def get(self, key: Key):
        """The value under `key` (a `DistributedDataFrame` for a frame); `KeyError` if none."""
        self._check_home(key)
        return self._wrap(key, find_value(self.transport, key))

    def get_and_wait(self, key: Key, timeout: float | None = None):
        """`get`, waiting until some node puts `key`; `TimeoutError` naming the key after
        `timeout` seconds, `eau2.NodeLost` if the key's home node is gone (or dies while
        this waits) and no live node has the value."""
        self._check_home(key)
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with contextlib.suppress(KeyError):  # a hung home is waited for below, with the deadline
                return self._wrap(key, find_value(self.transport, key, wait_for_hung_home=False))
            if key.home not in self.transport.live_nodes():
                raise NodeLost(key.home, f"key {key.name!r}: its home node {key.home} is gone")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return self._wrap(key, self.transport.wait(key.home, key, left))
            except TimeoutError:
                raise TimeoutError(f"key {key.name!r} was not put within {timeout} s") from None
            except NodeLost:  # gone for good, a new worker has its number, or hung: ask again
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"key {key.name!r} was not had within {timeout:g} s: its home node {key.home} "
                        "does not answer"
                    ) from None
                time.sleep(0.05)

    def delete(self, key: Key) -> None:
        """Remove `key` and free its value on every node; for a frame, all its chunks too,
        whatever state it is in (degraded, lost, or partly written: a write of `key` still
        under way fails). `NodeLost` naming the live nodes that did not answer (hung), after
        removing it everywhere else: they may keep copies, which come back when they answer."""
        self._check_home(key)
        found = survey(self.transport)
        tags = {owner[1] for chunk in found.held if (owner := frame_of_chunk(chunk.name)) and owner[0] == key}
        if self._kind(found, key) == "frame" and (meta := found.meta(self.transport, key)) is not None:
            tags.add(meta.tag)
        if key not in found.held and not tags:
            raise missing_key(key)
        for node in found.held.get(key, []):
            with contextlib.suppress(KeyError, NodeLost):
                self.transport.delete(node, key)
        for tag in tags:
            prefix = chunk_prefix(key, tag)
            self._cache.discard_prefix(prefix)
            for node in found.live:  # every live node refuses these chunks from now on
                with contextlib.suppress(NodeLost):
                    self.transport.drop(node, prefix)
        if found.silent:
            nodes = ", ".join(map(str, found.silent))
            raise NodeLost(
                found.silent[0],
                f"key {key.name!r} was removed from every node but node(s) {nodes}, which do not "
                "answer (hung): a copy they hold comes back when they answer; delete it again then",
            )

    def take_back(self, writes: list[tuple[Key, str | None]]) -> None:
        """Remove what some writes stored, surveying the nodes once: for (key, None), the
        value put under `key` (not a frame stored there since); for (key, tag), the frame
        write with that tag, committed or not, with all its chunks. Another write's frame
        under the key stays, and keys gone already are skipped. Nodes that fail meanwhile
        are skipped too (their copies are the limits' "deletes are not remembered")."""
        found = survey(self.transport)
        for key, tag in writes:
            kind = self._kind(found, key)
            if tag is None:
                if kind is not None and kind != "frame":
                    self._delete_copies(found, key)
                continue
            meta = found.meta(self.transport, key) if kind == "frame" else None
            if meta is not None and meta.tag == tag:
                self._delete_copies(found, key)
            prefix = chunk_prefix(key, tag)
            self._cache.discard_prefix(prefix)
            for node in found.live:
                with contextlib.suppress(NodeLost):
                    self.transport.drop(node, prefix)

    def _delete_copies(self, found: Survey, key: Key) -> None:
        for node in found.held.get(key, []):
            with contextlib.suppress(KeyError, NodeLost):
                self.transport.delete(node, key)

    def keys(self) -> list[KeyInfo]:
        """Every user key on the live nodes: its kind, size in bytes, chunk count, copies
        asked for and copies there are (of its least-replicated chunk), its status ("ok",
        "degraded", "lost", "partial", "unknown": see `KeyInfo.status`) and a frame's rows."""
        found = survey(self.transport)
        listing = []
        for key in found.user_keys():
            info = found.infos[key]
            if info.kind == "frame":
                meta = found.meta(self.transport, key)
                if meta is None:
                    continue
                copies, status = frame_health(meta, found)
                info = KeyInfo(
                    key, "frame", meta.nbytes, len(meta.chunks), meta.replicas, copies, status, meta.nrows
                )
            else:
                copies = len(found.held[key])
                wanted = min(info.replicas, len(found.live))
                status = "ok" if copies >= wanted else "degraded"
                info = KeyInfo(key, info.kind, info.nbytes, 0, info.replicas, copies, status)
            listing.append(info)
        for key, chunks in self._partial(found).items():
            if key not in found.held:
                nbytes = sum(found.infos[chunk].nbytes for chunk in chunks)
                status = "unknown" if found.silent else "partial"  # its metadata may be on them
                listing.append(KeyInfo(key, "frame", nbytes, len(chunks), 1, 0, status))
        return sorted(listing, key=lambda info: info.key)

    def chunk(self, meta: FrameMeta, index: int, frame: Key) -> pa.Table:
        """Chunk `index` of a stored frame: from this node if it holds a copy, else from a
        live holder through the cache, else rebuilt from its file."""
        chunk = meta.chunks[index]
        if self.this_node() in chunk.holders:  # read_chunk tries this node's copy first
            return read_chunk(self.transport, frame, index, chunk)
        return self._cache.get_or_fetch(chunk.key, lambda _: read_chunk(self.transport, frame, index, chunk))

    def read_sor(
        self,
        urlpath,
        key: Key | None = None,
        *,
        blocksize: int = BLOCK_BYTES,
        schema=None,
        columns: list[int | str] | None = None,
        storage_options: dict | None = None,
        replicas: int | None = None,
        max_columns: int = MAX_COLUMNS,
        max_line_bytes: int = MAX_LINE_BYTES,
    ):
        """Load SoR files (a path, fsspec URL, glob or list) as a frame under `key`, one chunk
        per block, parsed in this process; each chunk records its block, so it is read again
        from its file when every copy of it is lost. `eau2_dask.read_sor` is the parallel one.
        `columns` (positions such as ``[0, 3]``) keeps only those columns, as `eau2.read_sor`
        does, also when a chunk is read again; `max_columns` and `max_line_bytes` are the
        limits of `eau2.read_sor`.

        Examples:
            >>> from eau2.store.inprocess import InProcessCluster
            >>> kv = KVStore(InProcessCluster(2).transport(0))
            >>> kv.read_sor("eau2/data/worked.sor", Key("worked"), blocksize=20).nchunks
            2
        """
        key = key or Key(f"sor-{uuid.uuid4().hex[:12]}")
        plan = LoadPlan.make(
            urlpath,
            blocksize,
            schema,
            storage_options,
            columns=columns,
            max_columns=max_columns,
            max_line_bytes=max_line_bytes,
        )
        with self.writer(key, replicas) as writer:
            results = []
            for index, (origin, node) in enumerate(zip(plan.origins, plan.homes(writer), strict=True)):
                table, parsed, checksum = parse_chunk(origin, storage_options)
                self.transport.put(node, writer.chunk_key(index), table)
                results.append(BlockResult.of((node,), table, parsed, checksum))
            plan.finish(writer, results)
        return self.get(key)

    def writer(self, key: Key, replicas: int | None = None) -> FrameWriter:
        """The commit path for a frame under `key` whose chunks are made elsewhere."""
        self._check_home(key)
        writer = FrameWriter(
            self.transport, key, self.replicas if replicas is None else check_replicas(replicas)
        )
        if self._on_write:
            self._on_write(key, writer.tag)
        return writer

    def repair(self, timeout: float | None = None) -> RepairReport:
        """Bring every frame back to its replica count now (nodes do it after a loss
        anyway), after any repair this store is running. `TimeoutError` if it has not
        finished within `timeout` seconds (None: no limit); it then goes on in the background."""
        timeout = check_timeout(timeout)
        return waited_for(self._repairs.request(), timeout, "it goes on in the background")

    def to_dask(self, meta: FrameMeta, frame: Key, partition_size: int | str | None):
        """A dask DataFrame over a stored frame's chunks; only stores on Dask have one."""
        raise NotImplementedError(
            f"to_dask() needs eau2 nodes on Dask; these are {type(self.transport).__name__}'s"
        )

    def _put_frame(self, key: Key, frame: DataFrame, replicas: int) -> None:
        with self.writer(key, replicas) as writer:
            chunks = list(row_chunks(frame.to_arrow(), self.chunk_bytes))
            homes = writer.homes([chunk.nbytes for chunk in chunks])
            for index, (chunk, node) in enumerate(zip(chunks, homes, strict=True)):
                writer.put_chunk(index, chunk, node)
            writer.commit(str(frame.schema), frame.column_names, frame.dropped_rows)

    def _kind(self, found: Survey, key: Key) -> str | None:
        info = found.infos.get(key)
        return info.kind if info else None

    def _partial(self, found: Survey) -> dict[Key, list[Key]]:
        committed = set()
        for key in found.user_keys():
            if found.infos[key].kind == "frame":
                meta = found.meta(self.transport, key)
                if meta is not None:
                    committed.add((key, meta.tag))
        return found.partial_chunks(committed)

    def _wrap(self, key: Key, value):
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

    def discard_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [key for key in self._chunks if key.name.startswith(prefix)]:
                self._bytes -= self._chunks.pop(key).nbytes
