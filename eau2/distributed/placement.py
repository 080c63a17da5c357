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
