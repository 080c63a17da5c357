"""The one way a frame is saved, whoever makes its chunks (`KVStore.put`, the parallel SoR
reader, `from_dask`): chunk names, placement, replicas, the metadata written last, and
rollback of everything a failed or interrupted write left."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pyarrow as pa

from eau2.distributed.placement import holders, in_runs, meta_replicas, others, ring
from eau2.distributed.survey import holds
from eau2.errors import KeyExistsError, NodeLost
from eau2.sor.origin import BlockOrigin
from eau2.store.key import Key
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, StoredChunk, chunk_key, chunk_prefix, missing_columns

COPIES_AT_ONCE = 8
"""Replica copies under way at once while a frame is committed (each runs node to node)."""


class FrameWriter:
    """Saves one frame under `key` with `replicas` copies of each chunk.

    The caller stores chunk i under ``writer.chunk_key(i)`` on the node it likes (or
    lets `put_chunk` place it), tells `stored`, and calls `commit`. Used as a context
    manager, any exception (a failure, Ctrl-C) takes back every chunk of the write on
    every live node; nodes that are gone are skipped.
    """

    def __init__(self, transport: Transport, key: Key, replicas: int):
        self.transport = transport
        self.key = key
        self.replicas = replicas
        self.tag = uuid.uuid4().hex[:12]
        self.live = transport.live_nodes()
        ring(self.live, key.home)  # NodeLost if no node is left
        if any(holds(transport, node, key) for node in self.live):
            raise KeyExistsError.of(key)
        self._chunks: dict[int, StoredChunk] = {}
        self._committed = False

    def chunk_key(self, index: int) -> Key:
        return chunk_key(f"{chunk_prefix(self.key, self.tag)}{index}")

    def home_of(self, index: int) -> int:
        """Where chunk `index` goes when the number of chunks is not known ahead: the live
        nodes in turn from the key's home."""
        nodes = ring(self.live, self.key.home)
        return nodes[index % len(nodes)]

    def homes(self, sizes: list[int]) -> list[int]:
        """Where each chunk goes when all are known ahead, by their `sizes`: runs of
        consecutive chunks on each live node from the key's home, of about equal bytes."""
        return in_runs(ring(self.live, self.key.home), sizes)

    def put_chunk(self, index: int, table: pa.Table, node: int | None = None) -> None:
        """Store chunk `index` on `node` (`home_of` it by default) and record it."""
        node = self.home_of(index) if node is None else node
        self.transport.put(node, self.chunk_key(index), table)
        self.stored(index, (node,), table.num_rows, table.nbytes, missing=missing_columns(table))

    def stored(
        self,
        index: int,
        holders: tuple[int, ...],
        rows: int,
        nbytes: int,
        origin: BlockOrigin | None = None,
        missing: tuple[int, ...] | None = None,
    ) -> None:
        """Chunk `index` is on the nodes `holders` (the rest of its copies are made at commit);
        `missing` are the positions of its columns with a missing value (see `missing_columns`)."""
        name = self.chunk_key(index).name
        self._chunks[index] = StoredChunk(name, rows, nbytes, tuple(holders), origin, missing)

    def commit(self, schema: str, names: list[str], dropped_rows: int = 0) -> FrameMeta:
        """Copy chunks up to the replica count, then write the metadata: the frame exists."""
        chunks = [self._chunks[index] for index in range(len(self._chunks))]
        self._sync({node for chunk in chunks for node in chunk.holders})
        chunks = self._replicate(chunks)
        self._check_held(chunks)
        live = self.transport.live_nodes()
        meta_nodes = holders(live, self.key.home, meta_replicas(self.replicas, live))
        meta = FrameMeta(schema, names, chunks, self.replicas, dropped_rows, self.tag)
        self.transport.put(meta_nodes[0], self.key, meta)  # write-once: of racing writers, one wins
        self._committed = True  # from here on the frame exists: a failure below only degrades it
        for node in meta_nodes[1:]:
            with contextlib.suppress(NodeLost, KeyExistsError):
                self.transport.put(node, self.key, meta)
        return meta

    def rollback(self) -> None:
        """Delete every chunk of this write from every live node, and make them refuse its
        chunks from now on (a task still running cannot store one after this)."""
        prefix = chunk_prefix(self.key, self.tag)
        for node in self.transport.live_nodes():
            with contextlib.suppress(NodeLost):
                self.transport.drop(node, prefix)

    def _sync(self, nodes: set[int]) -> None:
        """Wait until the chunks' holders have them on disk (those that keep a directory);
        a holder lost meanwhile is `_check_held`'s to judge."""
        prefix = chunk_prefix(self.key, self.tag)
        for node in sorted(nodes.intersection(self.transport.live_nodes())):
            with contextlib.suppress(NodeLost):
                self.transport.sync(node, prefix)

    def _check_held(self, chunks: list[StoredChunk]) -> None:
        """`NodeLost` (and so a rollback) if a chunk that cannot be rebuilt from a file has
        no live holder: the caller still has the data, and can write it again."""
        live = set(self.transport.live_nodes())
        for index, chunk in enumerate(chunks):
            if chunk.origin is None and not live.intersection(chunk.holders):
                raise NodeLost(
                    chunk.holders[0],
                    f"key {self.key.name!r}: node {chunk.holders[0]}, holding chunk {index} of the frame "
                    "being written, is gone; the write was taken back",
                )

    def _replicate(self, chunks: list[StoredChunk]) -> list[StoredChunk]:
        live = self.transport.live_nodes()
        plans = []
        for chunk in chunks:
            sources = [node for node in chunk.holders if node in live]
            wanted = self.replicas - len(sources) if sources else 0
            plans.append((chunk, sources[:1], others(live, chunk.holders[0], wanted, exclude=chunk.holders)))
        if not any(targets for *_, targets in plans):
            return chunks
        with ThreadPoolExecutor(COPIES_AT_ONCE) as pool:
            copies = [
                [(node, pool.submit(self.transport.copy, node, chunk.key, sources[0])) for node in targets]
                for chunk, sources, targets in plans
            ]
            return [
                replace(chunk, holders=(*chunk.holders, *(node for node, done in made if _succeeded(done))))
                for (chunk, *_), made in zip(plans, copies, strict=True)
            ]

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if error is not None and not self._committed:
            self.rollback()


def _succeeded(future) -> bool:
    """Whether a copy was made (or was there already); a copy to a node that died
    meanwhile is just not made."""
    error = future.exception()
    if error is None or isinstance(error, KeyExistsError):
        return True
    if isinstance(error, (NodeLost, KeyError)):  # the target, or the source, is gone
        return False
    raise error
