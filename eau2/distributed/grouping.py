"""Which chunks of a frame one dask partition reads: runs of consecutive chunks held by one
node, so a partition never leaves its node and rows keep their order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from eau2.store.values import StoredChunk

PARTITION_SIZE = "256MiB"
"""Stored bytes a dask partition of a frame reads at most, by default."""


def group_chunks(
    chunks: list[StoredChunk], threads: Mapping[int, int], partition_bytes: int | None
) -> list[range]:
    """The chunks of each partition, in order: consecutive chunks whose first holder is the
    same node, at most `partition_bytes` (stored) each, and split finer where a node holds
    too little for one partition per thread it has (`threads`, by node; 1 when unknown).
    One chunk per partition when `partition_bytes` is None."""
    if partition_bytes is None:
        return [range(index, index + 1) for index in range(len(chunks))]
    held: dict[int, int] = defaultdict(int)
    for chunk in chunks:
        held[_primary(chunk)] += chunk.nbytes
    limit = {
        node: min(partition_bytes, -(-total // max(threads.get(node, 1), 1))) for node, total in held.items()
    }
    groups: list[range] = []
    start, size = 0, 0
    for index, chunk in enumerate(chunks):
        node = _primary(chunk)
        if index > start and (node != _primary(chunks[start]) or size + chunk.nbytes > limit[node]):
            groups.append(range(start, index))
            start, size = index, 0
        size += chunk.nbytes
    if chunks:
        groups.append(range(start, len(chunks)))
    return groups


def _primary(chunk: StoredChunk) -> int:
    return chunk.holders[0] if chunk.holders else -1
