"""Columns a node has converted for dask partitions, kept for the next computation."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pandas as pd

Part = tuple[str, ...]
"""A dask partition of a stored frame, named by its chunks' names (which name their write)."""


class ConvertedColumns:
    """The pandas columns of dask partitions that conversion had to build (they share no
    memory with the chunks), least recently used first out, within `capacity` bytes.

    A stored frame is immutable and a write's chunk names are its own, so a kept column
    never goes stale; `discard` lets go of a deleted frame's columns at once."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.nbytes = 0
        self.hits = 0
        self._columns: OrderedDict[tuple[Part, str], tuple[pd.Series, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, entry: tuple[Part, str]) -> bool:
        with self._lock:
            return entry in self._columns

    def get(self, part: Part, column: str) -> pd.Series | None:
        with self._lock:
            found = self._columns.get((part, column))
            if found is None:
                return None
            self._columns.move_to_end((part, column))
            self.hits += 1
            return found[0]

    def keep(self, part: Part, column: str, values: pd.Series, nbytes: int) -> None:
        """Keep `values`, of which `nbytes` are the conversion's own, if they fit at all."""
        if nbytes > self.capacity:
            return
        with self._lock:
            if (part, column) in self._columns:
                return
            self._columns[part, column] = (values, nbytes)
            self.nbytes += nbytes
            while self.nbytes > self.capacity:
                _, (_, evicted) = self._columns.popitem(last=False)
                self.nbytes -= evicted

    def discard(self, chunk: str) -> None:
        """Let go of the columns of the partitions that read the chunk named `chunk`."""
        with self._lock:
            for entry in [entry for entry in self._columns if chunk in entry[0]]:
                self.nbytes -= self._columns.pop(entry)[1]
