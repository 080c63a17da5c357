"""Columns a node has converted for dask partitions, kept for the next computation."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from eau2.store.values import read_only_array, write_of

Part = tuple[str, ...]
"""A dask partition of a stored frame, named by its chunks' names (which name their write)."""

Entry = tuple[Part, str]


class ConvertedColumns:
    """The pandas columns of dask partitions that conversion had to build, least recently
    used first out, within `capacity` bytes.

    A stored frame is immutable and a write's chunk names are its own, so a kept column
    never goes stale; `discard` and `drop_write` let go of a deleted frame's columns at
    once, and a dropped write's columns are not kept again."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.nbytes = 0
        self.hits = 0
        self._columns: OrderedDict[Entry, tuple[pd.Series, int]] = OrderedDict()
        self._by_chunk: dict[str, set[Entry]] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def get(self, part: Part, column: str) -> pd.Series | None:
        with self._lock:
            found = self._columns.get((part, column))
            if found is None:
                return None
            self._columns.move_to_end((part, column))
            self.hits += 1
            return found[0]

    def keep(self, part: Part, column: str, values: pd.Series, nbytes: int) -> None:
        """Keep `values` (read-only: see `frozen`), of which `nbytes` are the conversion's
        own, if they fit at all and their write was not dropped."""
        if nbytes > self.capacity:
            return
        with self._lock:
            if (part, column) in self._columns or write_of(part[0]) in self._dropped:
                return
            self._columns[part, column] = (values, nbytes)
            for chunk in part:
                self._by_chunk.setdefault(chunk, set()).add((part, column))
            self.nbytes += nbytes
            while self.nbytes > self.capacity:
                self._remove(next(iter(self._columns)))

    def discard(self, chunk: str) -> None:
        """Let go of the columns of the partitions that read the chunk named `chunk`."""
        with self._lock:
            for entry in self._by_chunk.get(chunk, set()).copy():
                self._remove(entry)

    def drop_write(self, prefix: str) -> None:
        """Let go of the columns of the write whose chunk names start with `prefix`, and
        keep none of it from now on (a read still under way may try)."""
        with self._lock:
            self._dropped.add(prefix)
            for chunk in [chunk for chunk in self._by_chunk if chunk.startswith(prefix)]:
                for entry in self._by_chunk.get(chunk, set()).copy():
                    self._remove(entry)

    def _remove(self, entry: Entry) -> None:
        self.nbytes -= self._columns.pop(entry)[1]
        for chunk in entry[0]:
            entries = self._by_chunk[chunk]
            entries.discard(entry)
            if not entries:
                del self._by_chunk[chunk]


def frozen(column: pd.Series) -> pd.Series:
    """`column` on read-only memory, so that no computation can change it through a
    partition (pandas' copy-on-write covers setitem, not writes to ``.array``): every array
    its values view is read-only, so no view of them can be made writable again."""
    array = column.array
    if isinstance(array, ExtensionArray) and hasattr(array, "_mask"):  # pandas' masked arrays
        array = type(array)(_read_only(array._data), _read_only(array._mask))
        return pd.Series(array, index=column.index, name=column.name, copy=False)
    if isinstance(column.dtype, pd.StringDtype):
        return column  # Arrow's memory: immutable
    values = _read_only(column.to_numpy())
    return pd.Series(values, index=column.index, name=column.name, copy=False)


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view of `values` that no code can make writable: every array it views is
    made read-only, and memory an array owns is seen through `read_only_array`."""
    owner, owned = values, False
    while isinstance(owner, np.ndarray):
        owner.flags.writeable = False
        owned = owned or owner.flags.owndata
        owner = owner.base
    return read_only_array(values) if owned else values.view()
