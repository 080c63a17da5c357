"""The scheduler side: node numbers for workers as users start them, the directory of node
addresses, chunk reads pinned where their chunks live, and repair after a node is lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pickle
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from dask._task_spec import DataNode, Task
from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin

from eau2.distributed.repair import OneRepairAtATime, RepairReport, repair
from eau2_dask import config, metrics
from eau2_dask.dashboard import Overview, add_page, remove_page
from eau2_dask.refs import PARSE_TASK_PREFIX, ChunkRef
from eau2_dask.transport import DaskTransport

logger = logging.getLogger("eau2")

_SEARCH_DEPTH = 8


def _natural(name) -> list:
    """Sort key that puts worker "2" before "10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


@dataclass
class _Slot:
    """One node number: the name of the worker that last had it, and its address while it
    is there; `kept` if its worker keeps its values in a directory (it claims the number
    again when it comes back, so others do not take it)."""

    name: str
    address: str | None
    kept: bool = False


class Eau2SchedulerPlugin(SchedulerPlugin):
    """Numbers eau2's nodes 0..n-1 and answers ``eau2_directory``: node number → worker address.

    A worker whose node directory records a number (``--eau2-directory``) takes that
    number. Other workers present when the plugin starts are numbered in name order. A
    worker that joins takes the number its name had (a nanny restart of a named worker),
    else the lowest number whose worker is gone and kept no directory (a restart of a
    worker without ``--name``, or a replacement), else a new one. While a number has no
    worker its address is None, and no new data goes there. When a worker leaves or
    joins, a repair brings every frame back to its replica count on the live nodes, in a
    thread of this process.
    """

    name = "eau2"

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._scheduler = None
        self._pinned: set = set()  # keys of tasks pinned to the workers of their chunks
        self._repair: _Repairs | None = None  # made in start(): the plugin travels pickled
        self._overview: Overview | None = None  # the figures of the dashboard page and metrics

    async def start(self, scheduler) -> None:
        self._scheduler = scheduler
        self._repair = _Repairs(self)
        scheduler.handlers["eau2_directory"] = self.directory
        scheduler.handlers["eau2_repair"] = self.repair_soon
        scheduler.handlers["eau2_repair_now"] = self.repair_now
        self._overview = Overview(scheduler, self.directory)
        add_page(scheduler, self._overview)
        metrics.export_cluster(self._overview)
        states = sorted(scheduler.workers.values(), key=lambda state: _natural(state.name))
        for state in sorted(states, key=lambda state: _claim(state)[0] is None):
            self._join(str(state.name), state.address, *_claim(state), tell="eau2" in state.extra)

    async def close(self) -> None:
        if self._overview is not None:
            remove_page(self._scheduler)
            metrics.forget_cluster(self._overview)

    def add_worker(self, scheduler, worker: str) -> None:
        state = scheduler.workers[worker]
        self._join(str(state.name), worker, *_claim(state), tell="eau2" in state.extra)
        self.repair_soon()  # a node back (or new) is room for copies a loss left short of

    def repair_soon(self) -> None:
        """Restore every frame's copies in a moment (after a loss, a join, a damaged file)."""
        if self._repair is not None:
            self._repair.soon()

    async def repair_now(self) -> dict:
        """Restore every frame's copies now, after any repair under way (never two at
        once); what it did, as `RepairReport` fields under ``report``, or the error it
        raised, pickled, under ``error`` (so that only a lost connection fails the call)."""
        if self._scheduler.status != Status.running:
            return _failed(ConnectionError("the scheduler is closing: it runs no more repairs"))
        loop = asyncio.get_running_loop()
        answer = loop.create_future()

        def settle(done: Future) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(done))

        self._repair.now().add_done_callback(settle)
        done = await answer
        error = RuntimeError("the repair was cancelled") if done.cancelled() else done.exception()
        if error is not None:
            logger.error("eau2 repair asked by a client or task failed: %s: %s", type(error).__name__, error)
            return _failed(error)
        return {"report": dataclasses.asdict(done.result())}

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        for number, slot in enumerate(self._slots):
            if slot.address == worker:
                slot.address = None
                logger.info("eau2 node %d lost: worker %s left the cluster", number, worker)
                if self._repair is not None:
                    self._repair.soon()

    def update_graph(self, scheduler, *, tasks=(), **kwargs) -> None:
        """Pin each new task that reads stored chunks to the workers holding them (loosely:
        if they are gone, any worker may run it and fetch or rebuild the chunk).

        Dask would place such tasks by free slots, reading most chunks remotely; and work
        stealing may move a loosely pinned task, so `transition` keeps pinned tasks out of
        its reach. `read_sor`'s parse tasks, placed by the load, are kept out of it too."""
        for key in tasks:
            state = scheduler.tasks.get(key)
            if state is None or state.run_spec is None:
                continue
            if isinstance(key, str) and key.startswith(PARSE_TASK_PREFIX):
                self._pinned.add(key)  # placed by read_sor: stealing would move its chunk
                continue
            addresses = _workers_holding(list(_find(state.run_spec, ChunkRef, _SEARCH_DEPTH)), self._address)
            if addresses:
                state.worker_restrictions = addresses
                state.loose_restrictions = True
                self._pinned.add(key)

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if key not in self._pinned:
            return
        if finish == "processing":
            stealing = self._scheduler.extensions.get("stealing")
            if stealing is not None:
                stealing.remove_key_from_stealable(self._scheduler.tasks[key])
        elif finish in ("memory", "erred", "forgotten"):
            self._pinned.discard(key)

    def _address(self, node: int) -> str | None:
        """Node `node`'s worker, if it has one the scheduler knows."""
        address = self._slots[node].address if 0 <= node < len(self._slots) else None
        return address if address in self._scheduler.workers else None

    def directory(self) -> list[str | None]:
        """Each node's worker address, by node number (None for a node whose worker is gone)."""
        return [slot.address for slot in self._slots]

    def _join(
        self, name: str, address: str, claim: int | None = None, kept: bool = False, tell: bool = False
    ) -> None:
        """Give the worker at `address` a number; `tell` it (a node that was there when the
        worker registered: a durable one records it, every one logs it)."""
        if any(slot.address == address for slot in self._slots):
            return
        if claim is not None:
            self._slots.extend(_Slot("", None, kept=True) for _ in range(claim + 1 - len(self._slots)))
            holder = self._slots[claim]
            if holder.address is None:
                self._slots[claim] = _Slot(name, address, kept)
                logger.info("eau2 node %d is worker %s (%s), back with its directory", claim, address, name)
                if tell:
                    self._tell(address, claim)
                return
            logger.error(
                "worker %s (%s) keeps the values of eau2 node %d, but worker %s is node %d: it gets "
                "another number, and its values are not served",
                address,
                name,
                claim,
                holder.address,
                claim,
            )
        vacant = [number for number, slot in enumerate(self._slots) if slot.address is None]
        same_name = [number for number in vacant if self._slots[number].name == name]
        free = [number for number in vacant if not self._slots[number].kept]
        if same_name or free:
            number = (same_name or free)[0]
            self._slots[number] = _Slot(name, address, kept)
            logger.info("eau2 node %d is worker %s (%s)", number, address, name)
        else:
            number = len(self._slots)
            self._slots.append(_Slot(name, address, kept))
        if tell:
            self._tell(address, number)

    def _tell(self, address: str, number: int) -> None:
        """Tell a node its number as it joins."""

        async def tell() -> None:
            with contextlib.suppress(Exception):  # the worker left meanwhile
                await self._scheduler.rpc(address).eau2_numbered(number=number)

        self._scheduler.loop.add_callback(tell)


def _claim(state) -> tuple[int | None, bool]:
    """The node number a joining worker's directory records (None if it has none), and
    whether it keeps its values in a directory."""
    info = state.extra.get("eau2") or {}
    return info.get("node"), bool(info.get("durable"))


class _Repairs:
    """Repairs run one at a time in a thread: a moment after a loss (a loss during a repair
    makes it run once more), and now when asked."""

    def __init__(self, plugin: Eau2SchedulerPlugin):
        self._plugin = plugin
        self._runner = OneRepairAtATime(self._repair)

    def soon(self) -> None:
        asyncio.get_running_loop().call_later(config.seconds_setting("repair-delay"), self._start)

    def _start(self) -> None:
        if self._plugin._scheduler.status != Status.running:
            return  # the cluster is closing: nothing to restore
        self._runner.request().add_done_callback(self._log_failure)

    def now(self) -> Future:
        """The future report of the next repair to start (at once if none runs)."""
        return self._runner.request()

    def _repair(self) -> RepairReport:
        scheduler = self._plugin._scheduler

        async def directory() -> list[str | None]:
            return self._plugin.directory()

        return repair(DaskTransport(scheduler.loop, scheduler.rpc, directory))

    def _log_failure(self, done: Future) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is not None and self._plugin._scheduler.status == Status.running:
            logger.error("eau2 repair failed; it runs again at the next loss", exc_info=error)


def _failed(error: BaseException) -> dict:
    """The answer to a repair asked that raised `error`: pickled where it can be, and as
    text (for a caller that cannot unpickle it)."""
    text = f"{type(error).__name__}: {error}"
    try:
        pickled = pickle.dumps(error)
    except Exception:
        pickled = pickle.dumps(RuntimeError(text))
    return {"error": pickled, "error_text": text}


def _workers_holding(refs: list[ChunkRef], address: Callable[[int], str | None]) -> set[str]:
    """The live workers holding every chunk `refs` name, or if none holds them all, those
    holding any of them (`address` gives a node's live worker, or None)."""
    held = [{address(node) for node in ref.chunk.holders} - {None} for ref in refs]
    held = [workers for workers in held if workers]
    if not held:
        return set()
    return set.intersection(*held) or set.union(*held)


def _find(spec, kind: type, depth: int):
    """The instances of `kind` inside a task spec (tasks, fused subgraphs, containers)."""
    if isinstance(spec, kind):
        yield spec
    elif depth == 0:
        return
    elif isinstance(spec, Task):
        for part in (*spec.args, *spec.kwargs.values()):
            yield from _find(part, kind, depth - 1)
    elif isinstance(spec, DataNode):
        yield from _find(spec.value, kind, depth - 1)
    elif isinstance(spec, dict):
        for part in spec.values():
            yield from _find(part, kind, depth - 1)
    elif isinstance(spec, (list, tuple, set, frozenset)):
        for part in spec:
            yield from _find(part, kind, depth - 1)
