"""Which live nodes hold what: a ring over the live nodes, starting at a key's home."""

from __future__ import annotations

import bisect

from eau2.errors import NodeLost

META_REPLICAS = 2
"""Copies of a frame's metadata at the least: it is tiny, and without it no chunk is reachable."""


def ring(live: list[int], start: int) -> list[int]:
    """The live nodes in ring order from `start` (or the first live node after it)."""
    if not live:
        raise NodeLost(start, "no node is left: every worker left the cluster")
    first = bisect.bisect_left(live, start) % len(live)
    return live[first:] + live[:first]


def holders(live: list[int], start: int, replicas: int) -> list[int]:
    """`replicas` distinct live nodes from `start` on (fewer if fewer are live)."""
    return ring(live, start)[:replicas]


def meta_replicas(replicas: int, live: list[int]) -> int:
    return min(len(live), max(replicas, META_REPLICAS))


def spread(live: list[int], turn: int, count: int, exclude=()) -> list[int]:
    """`count` live nodes not in `exclude`, starting at the `turn`-th live node: successive
    turns start at successive nodes, so restored copies spread over the cluster."""
    if not live or count <= 0:
        return []
    return [node for node in ring(live, live[turn % len(live)]) if node not in exclude][:count]


def others(live: list[int], after: int, count: int, exclude=()) -> list[int]:
    """`count` live nodes not in `exclude` (nor `after` itself), in ring order after `after`."""
    if count <= 0:
        return []
    skip = {after, *exclude}
    return [node for node in ring(live, after + 1) if node not in skip][:count]


def in_runs(nodes: list[int], sizes: list[int]) -> list[int]:
    """A node for each of a frame's chunks, in order, given their `sizes`: consecutive
    chunks share a node, each of `nodes` gets a run of about an equal share of the bytes,
    and the first chunk goes to the first node. A run of chunks on one node can be read as
    one dask partition without leaving that node, which keeps row order."""
    if not nodes:
        raise NodeLost(0, "no node is left: every worker left the cluster")
    count, total = len(nodes), sum(sizes)
    if total <= 0:
        return [nodes[index * count // max(len(sizes), 1)] for index in range(len(sizes))]
    placed, start = [], 0
    for size in sizes:  # a chunk goes to the node whose share holds its middle byte
        placed.append(nodes[min(count - 1, int((start + size / 2) * count / total))] if placed else nodes[0])
        start += size
    return placed
