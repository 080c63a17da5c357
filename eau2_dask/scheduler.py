"""The scheduler side: node numbers, stable by worker name, and the directory of node addresses."""

from __future__ import annotations

import re

from distributed.diagnostics.plugin import SchedulerPlugin


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

    async def start(self, scheduler) -> None:
        self._scheduler = scheduler
        scheduler.handlers["eau2_directory"] = self.directory
        for state in sorted(scheduler.workers.values(), key=lambda state: _natural(state.name)):
            self._number(state.name)

    def add_worker(self, scheduler, worker: str) -> None:
        self._number(scheduler.workers[worker].name)

    def directory(self) -> list[str | None]:
        """Each node's worker address, by node number (None for a node whose worker is gone)."""
        addresses = {str(state.name): state.address for state in self._scheduler.workers.values()}
        nodes: list[str | None] = [None] * len(self._numbers)
        for name, node in self._numbers.items():
            nodes[node] = addresses.get(name)
        return nodes

    def _number(self, name) -> None:
        self._numbers.setdefault(str(name), len(self._numbers))
