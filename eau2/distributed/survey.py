"""What the live nodes really hold: one listing per node, and each frame's health from it."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

from eau2.errors import NodeLost
from eau2.store.key import Key
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, KeyInfo, frame_of_chunk


def holds(transport: Transport, node: int, key: Key) -> bool:
    """Whether `node` holds `key` (False if the node is gone, or not answering: hung)."""
    if not transport.answering(node):
        return False
    try:
        return transport.exists(node, key)
    except NodeLost:
        return False


@dataclass
class Survey:
    """Every key on every live node: who holds it (`held`) and what it is (`infos`); the
    live nodes that did not answer (`silent`: hung) are left out of `live`."""

    live: list[int]
    held: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    infos: dict[Key, KeyInfo] = field(default_factory=dict)
    silent: list[int] = field(default_factory=list)

    def user_keys(self) -> list[Key]:
        return sorted(key for key in self.held if not key.is_internal)

    def meta(self, transport: Transport, key: Key) -> FrameMeta | None:
        """The metadata of the frame under `key`, from any live holder."""
        for node in self.held.get(key, []):
            with contextlib.suppress(KeyError, NodeLost):
                return transport.get(node, key)
        return None

    def partial_chunks(self, committed: set[tuple[Key, str]]) -> dict[Key, list[Key]]:
        """Chunks of writes that have no metadata, by frame key."""
        partial: dict[Key, list[Key]] = defaultdict(list)
        for chunk in self.held:
            owner = frame_of_chunk(chunk.name) if chunk.is_internal else None
            if owner is not None and owner not in committed:
                partial[owner[0]].append(chunk)
        return partial


def survey(transport: Transport) -> Survey:
    """List every live node once; nodes that die or do not answer meanwhile are left out."""
    result = Survey(transport.live_nodes())
    for node in list(result.live):
        try:
            if not transport.answering(node):  # found hung: not asked again until it answers
                raise NodeLost(node, f"node {node} does not answer")
            listing = transport.keys(node)
        except NodeLost:
            result.live.remove(node)
            if node in transport.live_nodes():
                result.silent.append(node)
            continue
        for info in listing:
            result.held[info.key].append(node)
            result.infos.setdefault(info.key, info)
    return result


def frame_health(meta: FrameMeta, found: Survey) -> tuple[int, str]:
    """(copies of the least-replicated chunk, status) of a frame, from what nodes hold: a
    chunk with no copy in sight and no file is "lost", or "unknown" while one of its
    holders is there but does not answer."""
    copies = [len(found.held.get(chunk.key, [])) for chunk in meta.chunks]
    fewest = min(copies, default=meta.replicas)
    gone = [chunk for n, chunk in zip(copies, meta.chunks, strict=True) if n == 0 and chunk.origin is None]
    if any(set(chunk.holders) & set(found.silent) for chunk in gone):
        return fewest, "unknown"
    if gone:
        return fewest, "lost"
    return fewest, "ok" if fewest >= min(meta.replicas, len(found.live)) else "degraded"
