"""The scheduler side: node numbers, stable by worker name, and the directory of node addresses."""

from __future__ import annotations

import re

from dask._task_spec import DataNode, Task
from distributed.diagnostics.plugin import SchedulerPlugin

_SEARCH_DEPTH = 8


def _natural(name) -> list:
    """Sort key that puts worker "2" before "10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


class Eau2SchedulerPlugin(SchedulerPlugin):
    """Numbers eau2's nodes 0..n-1 and answers ``eau2_directory``: node number → worker address.

    Workers present when the plugin starts are numbered in name order; later ones in the
    order they join. A worker that comes back under the same name (a nanny restart)
    keeps its number; while it is gone its address is None.
    """

    name = "eau2"

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._scheduler = None
        self._pinned: set = set()  # keys of tasks pinned to the workers of their chunks

    async def start(self, scheduler) -> None:
        self._scheduler = scheduler
        scheduler.handlers["eau2_directory"] = self.directory
        for state in sorted(scheduler.workers.values(), key=lambda state: _natural(state.name)):
            self._number(state.name)

    def add_worker(self, scheduler, worker: str) -> None:
        self._number(scheduler.workers[worker].name)

    def update_graph(self, scheduler, *, tasks=(), **kwargs) -> None:
        """Pin each new task that reads stored chunks to the worker holding them (loosely:
        if that worker is gone, any worker may run it and fetch the chunk).

        Dask would place such tasks by free slots, reading most chunks remotely; and work
        stealing may move a loosely pinned task, so `transition` keeps pinned tasks out of
        its reach."""
        from eau2_dask.collection import ChunkRef

        for key in tasks:
            state = scheduler.tasks.get(key)
            if state is None or state.run_spec is None:
                continue
            addresses = {ref.address for ref in _find(state.run_spec, ChunkRef, _SEARCH_DEPTH)}
            addresses &= set(scheduler.workers)
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

    def directory(self) -> list[str | None]:
        """Each node's worker address, by node number (None for a node whose worker is gone)."""
        addresses = {str(state.name): state.address for state in self._scheduler.workers.values()}
        nodes: list[str | None] = [None] * len(self._numbers)
        for name, node in self._numbers.items():
            nodes[node] = addresses.get(name)
        return nodes

    def _number(self, name) -> None:
        self._numbers.setdefault(str(name), len(self._numbers))


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
