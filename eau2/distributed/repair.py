"""Repair after a node is lost: every frame back to its replica count on the live nodes,
copied from a surviving holder or rebuilt from its file, its metadata updated to match."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from eau2.distributed.placement import meta_replicas, others, spread
from eau2.distributed.survey import Survey, holds, survey
from eau2.errors import KeyExistsError, NodeLost, SorError
from eau2.sor.origin import BlockOrigin
from eau2.store.key import Key
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta

logger = logging.getLogger("eau2")

REPAIRS_AT_ONCE = 8


@dataclass
class RepairReport:
    """What one repair did: chunks copied and rebuilt (and their bytes), copies beyond a
    frame's replicas removed, frames updated, and the chunks that could not be repaired,
    by frame name."""

    copied: int = 0
    rebuilt: int = 0
    trimmed: int = 0
    bytes: int = 0
    frames: int = 0
    lost: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        lost = "; ".join(f"{name}: chunks {chunks}" for name, chunks in self.lost.items())
        return (
            f"repaired {self.frames} frame(s): {self.copied} chunk(s) copied, {self.rebuilt} rebuilt "
            f"from their files, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s"
            + (
                f"; removed {self.trimmed} extra copies (beyond their frames' replicas)"
                if self.trimmed
                else ""
            )
            + (f"; lost for good: {lost}" if lost else "")
        )


class OneRepairAtATime:
    """Runs `run` (a repair) in a daemon thread when asked, never two at once (each
    decides from what it surveyed: two could each remove copies the other counts on).
    Every request made while a repair runs is answered by one more repair, which starts
    when that one ends, so it sees what changed since the request."""

    def __init__(self, run: Callable[[], RepairReport]):
        self._run = run
        self._lock = threading.Lock()
        self._running: Future | None = None
        self._next: Future | None = None

    def request(self) -> Future:
        """The future report of the next repair to start (started now if none runs)."""
        with self._lock:
            if self._running is None:
                self._running = Future()
                try:
                    threading.Thread(target=self._repairs, name="eau2-repair", daemon=True).start()
                except BaseException:
                    self._running = None
                    raise
                return self._running
            if self._next is None:
                self._next = Future()
            return self._next

    def _repairs(self) -> None:
        with self._lock:
            answer = self._running
        while answer is not None:
            try:
                if answer.set_running_or_notify_cancel():  # from now on, no one can cancel it
                    try:
                        answer.set_result(self._run())
                    except BaseException as error:  # handed to whoever asked
                        answer.set_exception(error)
            finally:  # the next runs, whatever became of this one
                with self._lock:
                    answer = self._running = self._next
                    self._next = None


def waited_for(asked: Future, timeout: float | None, goes_on: str) -> RepairReport:
    """The report of the repair `asked`, waited for at most `timeout` seconds (None: until
    it ends); after that `TimeoutError`, which says what `goes_on`."""
    finished, _ = wait([asked], timeout)
    if not finished:
        raise TimeoutError(f"the repair did not finish within {timeout:g} s; {goes_on}")
    return asked.result()


def repair(transport: Transport) -> RepairReport:
    """Restore the replica count of every stored frame on the live nodes; returns what it did."""
    started = time.monotonic()
    report = RepairReport()
    found = survey(transport)
    for key in found.user_keys():
        try:
            if found.infos[key].kind != "frame":
                _repair_value(transport, found, key, report)
            elif (meta := found.meta(transport, key)) is not None:
                _repair_frame(transport, found, key, meta, report)
        except (NodeLost, KeyError):
            pass  # a node lost, or the key deleted, meanwhile: the next repair sees it
        except Exception:
            logger.exception("eau2 repair of %r failed; the other keys are repaired", key.name)
    report.seconds = time.monotonic() - started
    if report.frames or report.lost:
        (logger.error if report.lost else logger.info)("eau2 %s", report)
    return report


def _repair_value(transport: Transport, found: Survey, key: Key, report: RepairReport) -> None:
    """Copy a value (not a frame) to new nodes until it has the copies it was put with."""
    info = found.infos[key]
    have = [node for node in found.held[key] if node in found.live]
    targets = others(found.live, have[0], min(info.replicas, len(found.live)) - len(have), exclude=have)
    holders, copied, _ = _restore(transport, key, None, have, targets, info.replicas)
    if not any(holds(transport, node, key) for node in have):  # deleted meanwhile: so are the copies
        for node in set(holders) - set(have):
            with contextlib.suppress(KeyError, NodeLost):
                transport.delete(node, key)
        return
    report.copied += copied
    report.bytes += copied * info.nbytes


def _repair_frame(
    transport: Transport, found: Survey, key: Key, meta: FrameMeta, report: RepairReport
) -> None:
    live = found.live
    plans = []
    surplus: list[tuple[Key, list[int], list[int]]] = []  # a chunk's copies to keep, and the others
    turn = 0
    for index, chunk in enumerate(meta.chunks):
        have = [node for node in found.held.get(chunk.key, []) if node in live]
        if len(have) > meta.replicas:  # a rebuild or copy made while a holder was hung or lost
            have, extra = _trimmed(chunk, have, meta.replicas)
            surplus.append((chunk.key, have, extra))
        targets = spread(live, turn, min(meta.replicas, len(live)) - len(have), exclude=have)
        if not have and chunk.origin is None:
            report.lost.setdefault(key.name, []).append(index)
            targets = []
        turn += bool(targets)
        plans.append((index, chunk, have, targets))
    if (
        not surplus
        and not any(targets for *_, targets in plans)
        and _meta_is_current(meta, plans, found, key)
    ):
        return
    logger.info(
        "eau2 repair: frame %r, %d chunk(s) to restore, %d extra copies to remove",
        key.name,
        sum(1 for *_, t in plans if t),
        sum(len(extra) for *_, extra in surplus),
    )
    with ThreadPoolExecutor(REPAIRS_AT_ONCE) as pool:
        made = [
            pool.submit(_restore, transport, chunk.key, chunk.origin, have, targets)
            for _, chunk, have, targets in plans
        ]
        chunks = []
        for (_, chunk, *_), done in zip(plans, made, strict=True):
            holders, copied, rebuilt = done.result()
            report.copied += copied
            report.rebuilt += rebuilt
            report.bytes += (copied + rebuilt) * chunk.nbytes
            kept = _in_order(chunk.holders[0], holders) if holders else chunk.holders  # lost: who had it
            chunks.append(replace(chunk, holders=kept))
    # A frame deleted meanwhile stays deleted: its delete made every node drop and refuse
    # its chunks and its metadata, so neither the copies nor the metadata come back.
    if _write_meta(transport, found, key, replace(meta, chunks=chunks)):
        report.frames += 1
        for chunk_key, kept, extra in surplus:  # after the metadata: no reader is sent to them now
            report.trimmed += _remove_extra(transport, chunk_key, kept, extra)


def _remove_extra(transport: Transport, key: Key, kept: list[int], extra: list[int]) -> int:
    """Delete the copies of chunk `key` on `extra` if every copy to keep is still held on a
    node that answers (the survey may be old: a holder lost since then needs them); how
    many were deleted."""
    if not all(holds(transport, node, key) for node in kept):
        return 0
    removed = 0
    for node in extra:
        with contextlib.suppress(NodeLost, KeyError):
            transport.delete(node, key)
            removed += 1
    return removed


def _trimmed(chunk, have: list[int], replicas: int) -> tuple[list[int], list[int]]:
    """The `replicas` copies of a chunk to keep, and the others: the node it was first
    placed on first, then the holders its metadata names, then the rest."""
    ranked = sorted(have, key=lambda node: (node != chunk.holders[0], node not in chunk.holders))
    return ranked[:replicas], ranked[replicas:]


def _in_order(first: int, holders: list[int]) -> tuple[int, ...]:
    """The first node a chunk was placed on stays first (live or not: the frame's readers
    agree on who visits it, whichever copy of the metadata they have), then the others."""
    return (first, *(node for node in holders if node != first))


def _restore(
    transport: Transport,
    key: Key,
    origin: BlockOrigin | None,
    have: list[int],
    targets: list[int],
    replicas: int = 1,
) -> tuple[list[int], int, int]:
    """Copy the value under `key` (or rebuild it from `origin`) onto `targets`: the nodes
    holding it afterwards, and how many copies and rebuilds that took."""
    holders, copied, rebuilt = list(have), 0, 0
    for node in targets:
        try:
            if holders:
                transport.copy(node, key, holders[0], replicas)
                copied += 1
            else:
                transport.rebuild(node, key, origin)
                rebuilt += 1
        except KeyExistsError:
            pass
        except (NodeLost, KeyError, SorError) as error:
            logger.warning("eau2 repair: %s not restored on node %d: %s", key.name, node, error)
            continue
        holders.append(node)
    return holders, copied, rebuilt


def _meta_is_current(meta: FrameMeta, plans: list, found: Survey, key: Key) -> bool:
    same_holders = all(
        _in_order(chunk.holders[0], have) == chunk.holders or not have for _, chunk, have, _ in plans
    )
    meta_nodes = [node for node in found.held.get(key, []) if node in found.live]
    return same_holders and len(meta_nodes) >= meta_replicas(meta.replicas, found.live)


def _write_meta(transport: Transport, found: Survey, key: Key, meta: FrameMeta) -> bool:
    """Update the metadata where it is, then copy it to new nodes up to its replica count;
    False if it is nowhere any more (the frame was deleted meanwhile)."""
    have = [node for node in found.held.get(key, []) if node in found.live]
    targets = others(found.live, have[0], meta_replicas(meta.replicas, found.live) - len(have), exclude=have)
    updated = False
    for node in have:
        with contextlib.suppress(NodeLost, KeyError):
            transport.update(node, key, meta)
            updated = True
    if not updated:
        return False
    for node in targets:
        with contextlib.suppress(NodeLost, KeyExistsError):
            transport.put(node, key, meta)
    return True
