"""One node's values: write-once, waitable, kept within a byte budget by spilling to disk."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zict

from eau2.errors import KeyExistsError
from eau2.store.key import Key
from eau2.store.spill import SpillDirectory
from eau2.store.values import (
    FrameMeta,
    KeyInfo,
    check_storable,
    chunk_prefix,
    compact,
    kind,
    nbytes,
    write_of,
)

__all__ = ["KeyExistsError", "NodeStore", "missing_key"]


def missing_key(key: Key) -> KeyError:
    return KeyError(f"no value under key {key.name!r} on node {key.home}")


class NodeStore:
    """The values homed on one node.

    Values are write-once: a second `put` of a key raises `KeyExistsError`, atomically,
    so of two racing puts exactly one wins. With a `budget` (bytes), the least recently
    used values beyond it move to files in `spill_dir` and are read back memory-mapped.
    """

    def __init__(self, budget: int | None = None, spill_dir: str | Path | None = None):
        self.budget = budget
        self._lock = threading.Lock()
        self._info: dict[Key, KeyInfo] = {}
        self._waiters: dict[Key, list[Callable[[], None]]] = {}
        self._spill_dir = None
        self.closed = False
        self._dropped: set[str] = set()
        if budget is None:
            self._values: dict = {}
            self._spill = None
        else:
            if spill_dir is None:
                spill_dir = tempfile.mkdtemp(prefix="eau2-spill-")
            self._spill_dir = spill_dir
            self._spill = SpillDirectory(spill_dir)
            self._values = zict.Buffer({}, self._spill, n=budget, weight=lambda _, value: nbytes(value))

    def put(self, key: Key, value, replicas: int = 1) -> None:
        """Store `value` under `key`; `KeyExistsError` if the key already has a value.
        `replicas` records how many nodes were asked to keep a copy (for repair)."""
        check_storable(key, value)
        if isinstance(value, bytearray):
            value = bytes(value)
        if isinstance(value, np.ndarray):
            value = _frozen(value)
        value = compact(value)
        with self._lock:
            if key in self._info:
                raise KeyExistsError.of(key)
            self._check_not_dropped(key, value)
            self._values[_slot(key)] = value
            self._info[key] = KeyInfo(key, kind(value), nbytes(value), replicas=replicas)
            woken = self._waiters.pop(key, [])
        for wake in woken:
            wake()

    def get(self, key: Key):
        """The value under `key`; `KeyError` naming the key if there is none."""
        with self._lock:
            if key not in self._info:
                raise missing_key(key)
            return self._values[_slot(key)]

    def info(self, key: Key) -> KeyInfo | None:
        """What is stored under `key` (kind and size), or None; the value is not read."""
        with self._lock:
            return self._info.get(key)

    def update(self, key: Key, meta: FrameMeta) -> None:
        """Replace a frame's metadata with `meta`, which describes the same chunks (repair
        moves holders, never rows); `KeyError` if there is none."""
        if not isinstance(meta, FrameMeta):
            raise TypeError(f"key {key.name!r}: only a frame's metadata can be updated")
        with self._lock:
            old = self._values[_slot(key)] if self._info.get(key) is not None else None
            if not isinstance(old, FrameMeta):
                raise missing_key(key)
            if [c.name for c in old.chunks] != [c.name for c in meta.chunks]:
                raise ValueError(f"key {key.name!r}: an update must describe the same chunks")
            self._check_not_dropped(key, meta)
            self._values[_slot(key)] = meta
            self._info[key] = KeyInfo(key, "frame", nbytes(meta))

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._info

    def delete(self, key: Key) -> None:
        """Remove `key` and free its value (in memory or on disk)."""
        with self._lock:
            if self._info.pop(key, None) is None:
                raise missing_key(key)
            del self._values[_slot(key)]

    def drop(self, prefix: str) -> int:
        """Delete the chunks of the write `prefix` names (a `chunk_prefix`), and refuse its
        chunks and its frame's metadata from now on: after a write is taken back or its
        frame deleted, no late put (a task still running, a repair) brings them back.
        Returns how many were deleted."""
        with self._lock:
            self._dropped.add(prefix)
            doomed = [key for key in self._info if key.is_internal and key.name.startswith(prefix)]
            for key in doomed:
                del self._info[key]
                del self._values[_slot(key)]
        return len(doomed)

    def _check_not_dropped(self, key: Key, value) -> None:
        if isinstance(value, FrameMeta):
            write = chunk_prefix(key, value.tag)
        else:
            write = write_of(key.name) if key.is_internal else None
        if write in self._dropped:
            raise KeyError(f"key {key.name!r} belongs to a write that was taken back or deleted")

    def when_put(self, key: Key, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake()` once `key` has a value (now, if it has); returns a function that cancels."""
        with self._lock:
            if key not in self._info and not self.closed:
                self._waiters.setdefault(key, []).append(wake)
                return lambda: self._cancel(key, wake)
        wake()
        return lambda: None

    def keys(self) -> list[KeyInfo]:
        with self._lock:
            return list(self._info.values())

    @property
    def memory_bytes(self) -> int:
        """Bytes held in memory (not spilled)."""
        with self._lock:
            if self._spill is None:
                return sum(info.nbytes for info in self._info.values())
            return int(self._values.fast.total_weight)

    @property
    def spilled_bytes(self) -> int:
        """Bytes held in spill files."""
        with self._lock:
            total = sum(info.nbytes for info in self._info.values())
            return 0 if self._spill is None else total - int(self._values.fast.total_weight)

    def close(self) -> None:
        """Drop every value, wake every waiter, and remove the spill directory."""
        with self._lock:
            self.closed = True
            self._values.clear()
            self._info.clear()
            waiters, self._waiters = self._waiters, {}
        for wakes in waiters.values():
            for wake in wakes:
                wake()
        if self._spill_dir:
            shutil.rmtree(self._spill_dir, ignore_errors=True)

    def _cancel(self, key: Key, wake: Callable[[], None]) -> None:
        with self._lock:
            waiters = self._waiters.get(key, [])
            if wake in waiters:
                waiters.remove(wake)


def _slot(key: Key) -> str:
    return f"{key.home}/{key.name}"


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy: the caller's array may change later, the stored value may not."""
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    return copy
