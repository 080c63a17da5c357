"""One node's values: write-once, waitable, kept within a byte budget, on disk when asked."""

from __future__ import annotations

import contextlib
import logging
import queue
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from eau2.errors import KeyExistsError, NodeLost
from eau2.store.files import DamagedFile, FileEntry, IncomingFile, ValueFiles
from eau2.store.key import Key
from eau2.store.pieces import Shape
from eau2.store.values import (
    FrameMeta,
    KeyInfo,
    check_storable,
    chunk_prefix,
    compact,
    immutable,
    kind,
    nbytes,
    read_only_array,
    write_of,
)

__all__ = ["KeyExistsError", "NodeStore", "missing_key"]

logger = logging.getLogger("eau2")


def missing_key(key: Key) -> KeyError:
    return KeyError(f"no value under key {key.name!r} on node {key.home}")


class NodeStore:
    """The values homed on one node.

    Values are write-once: a second `put` of a key raises `KeyExistsError`, atomically,
    so of two racing puts exactly one wins. With a `budget` (bytes), memory holds the most
    recently used values within it and the others are read back memory-mapped from files
    in `directory`. A `durable` directory gets every value's file, synced, before `put`
    returns, and a store opened on it again serves what it held; without it, files are a
    spill tier (in a temporary directory if none is given), removed on close.

    A value whose file turns out damaged is dropped, logged, reported to `on_damage` with
    why, and read as missing: readers then use another copy or rebuild it. `on_forget` is
    told of every key deleted or dropped, `on_drop` of every write dropped, held here or
    not (what was derived from their values can go too).
    """

    def __init__(
        self,
        budget: int | None = None,
        directory: str | Path | None = None,
        *,
        durable: bool = False,
        on_damage: Callable[[Key, str], None] | None = None,
        on_forget: Callable[[Key], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
    ):
        if durable and directory is None:
            raise ValueError("a durable store needs a directory")
        self.budget = budget
        self.closed = False
        self._lock = threading.Lock()
        self._info: dict[Key, KeyInfo] = {}
        self._writing: set[Key] = set()
        self._memory = _Memory()
        self._together: dict[str, frozenset[str]] = {}
        """Slots of values in memory that share memory (`share`), each with all of its group."""
        self._waiters: dict[Key, list[Callable[[], None]]] = {}
        self._dropped: set[str] = set()
        self._on_damage = on_damage
        self._on_forget = on_forget
        self._on_drop = on_drop
        self._unsynced: dict[str, object] = {}
        self._writes: queue.Queue = queue.Queue()
        self._write_errors: dict[str, OSError] = {}
        if directory is None and budget is not None:
            directory = tempfile.mkdtemp(prefix="eau2-spill-")
        self._files = None if directory is None else ValueFiles(directory, durable)
        self.damaged: list[tuple[str, str]] = []
        """Values found unusable when the directory was opened: (name, why)."""
        if self._files is not None:
            self.damaged = list(self._files.damaged)
            self._find_values()
        if durable:
            threading.Thread(target=self._write_in_background, name="eau2-writer", daemon=True).start()

    def _find_values(self) -> None:
        """Serve what the directory holds: entries whose names are no keys are damaged."""
        try:
            for entry in self._files:
                key = _key_of(entry.name)
                if key is None:
                    self.damaged.append((entry.name, "it is not the name of a stored value"))
                    self._files.remove(entry.name)
                else:
                    self._info[key] = KeyInfo(key, entry.kind, entry.nbytes, replicas=entry.replicas)
        except BaseException:
            self._files.close()  # let go of the directory's lock
            raise

    @property
    def durable(self) -> bool:
        return self._files is not None and self._files.durable

    @property
    def directory(self) -> Path | None:
        return None if self._files is None else self._files.directory

    def put(self, key: Key, value, replicas: int = 1, *, owned: bool = False, deferred: bool = False) -> None:
        """Store `value` under `key`; `KeyExistsError` if the key already has a value.
        `replicas` records how many nodes were asked to keep a copy (for repair). An
        `owned` value (just received, or made for the store) is not copied; others are
        copied, since the caller could change them later. Either way no code can change a
        stored value through the arrays `get` returns. A `deferred` value that fits the
        budget is served at once and written to a durable directory in the background:
        `sync` waits for it (a parse task goes on with the next block while its chunk is
        synced)."""
        check_storable(key, value)
        if isinstance(value, bytearray):
            value = bytes(value)
        if isinstance(value, np.ndarray):
            value = _frozen(value, owned)
        compacted = compact(value)  # a copy if it was a slice
        value = immutable(compacted, copy=not owned and compacted is value)
        size, value_kind, slot = nbytes(value), kind(value), _slot(key)
        self._reserve(key, value)
        deferred = deferred and self.durable and (self.budget is None or size <= self.budget)
        try:
            if self.durable and not deferred:
                self._files.write(slot, value_kind, value, replicas, size)  # outside the lock: it syncs
            with self._lock:
                try:
                    self._check_open()
                    self._check_not_dropped(key, value)
                    if deferred:
                        self._make_room(size)
                        self._memory.add(slot, value, size)
                        self._unsynced[slot] = value
                    else:
                        self._hold(slot, value_kind, value, replicas, size)
                except BaseException:
                    if self._files is not None:
                        self._files.remove(slot)
                    raise
                self._info[key] = KeyInfo(key, value_kind, size, replicas=replicas)
                woken = self._waiters.pop(key, [])
            if deferred:
                self._writes.put((slot, value_kind, value, replicas, size))
        finally:
            self._done_writing(key)
        for wake in woken:
            wake()

    def sync(self, prefix: str = "") -> None:
        """Wait until every deferred value is in its file; a `DiskError` if one whose name
        starts with `prefix` could not be written (it is then dropped from the store)."""
        self._writes.join()
        with self._lock:
            failed = [slot for slot in self._write_errors if _key_of(slot).name.startswith(prefix)]
            errors = [self._write_errors.pop(slot) for slot in failed]
        if errors:
            raise errors[0]

    def _write_in_background(self) -> None:
        while (write := self._writes.get()) is not None:
            slot, value_kind, value, replicas, size = write
            try:
                written = self._files.prepare(slot, value_kind, value, replicas, size)
                with self._lock:
                    if self._unsynced.get(slot) is not value:
                        written.discard()  # deleted or dropped while it was written
                        continue
                    written.commit()
                    del self._unsynced[slot]
                    with contextlib.suppress(OSError):
                        self._make_room(0)  # it may leave memory now
            except OSError as error:
                with self._lock:
                    if self._unsynced.get(slot) is value:
                        self._write_errors[slot] = error
                        self._forget(_key_of(slot))
            finally:
                self._writes.task_done()

    def _received(self, key: Key, entry: FileEntry) -> None:
        """A value that arrived in pieces is complete on disk: it has its key now (unless
        its write was taken back meanwhile, or the node closed)."""
        with self._lock:
            self._writing.discard(key)
            try:
                self._check_open()
                self._check_not_dropped(key, None)
            except BaseException:
                self._files.remove(entry.name)
                raise
            self._info[key] = KeyInfo(key, entry.kind, entry.nbytes, replicas=entry.replicas)
            woken = self._waiters.pop(key, [])
        for wake in woken:
            wake()

    def _reserve(self, key: Key, value) -> None:
        """Claim `key` for a write under way: `KeyExistsError` if it has a value or another
        write; refused on a closing node and for a write that was taken back."""
        with self._lock:
            self._check_open()
            if key in self._info or key in self._writing:
                raise KeyExistsError.of(key)
            self._check_not_dropped(key, value)
            self._writing.add(key)

    def _done_writing(self, key: Key) -> None:
        with self._lock:
            self._writing.discard(key)

    def receive(self, key: Key, shape: Shape, replicas: int = 1) -> Incoming:
        """Start a `put` of a value that arrives in pieces (see `eau2.store.pieces`): each is
        written to the value's file as it comes, so memory never holds the whole value."""
        if self._files is None:
            raise ValueError(f"key {key.name!r}: this node has no directory to receive a value in pieces")
        self._reserve(key, None)
        try:
            return Incoming(self, key, self._files.incoming(_slot(key), shape, replicas))
        except BaseException:
            self._done_writing(key)
            raise

    def get(self, key: Key):
        """The value under `key`; `KeyError` naming the key if there is none."""
        slot = _slot(key)
        with self._lock:
            info = self._info.get(key)
            if info is None:
                raise missing_key(key)
            if slot in self._memory:
                return self._memory.get(slot)
            entry = self._files.entries.get(slot)
        try:
            value = self._files.read(slot)  # outside the lock: a first read checks the whole file
        except (DamagedFile, KeyError) as damage:
            if not self._dropped_as_damaged(key, info, entry, str(damage)):
                raise missing_key(key) from None  # deleted or replaced meanwhile
            raise KeyError(f"the value under key {key.name!r} was dropped on this node: {damage}") from None
        with self._lock:
            if self._info.get(key) is info and slot not in self._memory:
                self._cache(slot, info, value)
        return value

    def scrub(self) -> int:
        """Check every file not yet checked against its checksum, dropping and reporting
        the damaged ones (as a read would); returns how many were damaged. A durable node
        runs it in the background when it starts, so a damaged copy is found and restored
        before it is needed."""
        damaged = 0
        for key in [info.key for info in self.keys()]:
            slot = _slot(key)
            with self._lock:
                entry = None if self._files is None else self._files.entries.get(slot)
                info = self._info.get(key)
            if entry is None or info is None:
                continue
            try:
                self._files.verify(slot)
            except (DamagedFile, KeyError) as damage:
                damaged += self._dropped_as_damaged(key, info, entry, str(damage))
        return damaged

    def _dropped_as_damaged(self, key: Key, info: KeyInfo, entry, why: str) -> bool:
        """Drop a value whose file was found damaged, log it and report it; False if it was
        deleted or replaced meanwhile (not damage)."""
        with self._lock:
            if self._info.get(key) is not info or self._files.entries.get(_slot(key)) is not entry:
                return False
            self._forget(key)
        logger.error("eau2 dropped the value under key %r: %s", key.name, why)
        if self._on_damage is not None:
            self._on_damage(key, why)
        return True

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
            info = self._info.get(key)
            old = self._read(key) if info is not None else None
            if not isinstance(old, FrameMeta):
                raise missing_key(key)
            if [c.name for c in old.chunks] != [c.name for c in meta.chunks]:
                raise ValueError(f"key {key.name!r}: an update must describe the same chunks")
            self._check_not_dropped(key, meta)
            slot, size = _slot(key), nbytes(meta)
            if self.durable:
                self._files.write(slot, "frame", meta, info.replicas, size)
            elif self._files is not None:
                self._files.remove(slot)
            self._memory.pop(slot)
            self._hold(slot, "frame", meta, info.replicas, size)
            self._info[key] = replace(info, nbytes=size)

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._info

    def share(self, replacements: dict[Key, tuple[pa.Table, pa.Table]]) -> bool:
        """Hold each `new` table of `replacements` (key: (old, new)) in place of `old`, the
        table held in memory under its key, which it must equal: so that values held apart
        share memory (a dask view's joined column with the chunks it was joined from). From
        then on they leave memory together, since one of them left in memory would keep the
        others' shared bytes. All or none: False, and nothing replaced, unless every key
        still holds its `old` value in memory (not one still being written) and shares
        with no other values than these (a value on two joins would keep both alive).
        `ValueError` if a `new` value differs from its `old` one."""
        for key, (old, new) in replacements.items():
            if not _equal(old, new):
                raise ValueError(f"key {key.name!r}: a shared value must equal the value it replaces")
        with self._lock:
            group = frozenset(_slot(key) for key in replacements)
            for key, (old, _) in replacements.items():
                slot = _slot(key)
                if slot not in self._memory or self._memory.values[slot] is not old or slot in self._unsynced:
                    return False
                if self._together.get(slot, group) != group:
                    return False
            for key, (_, new) in replacements.items():
                self._memory.values[_slot(key)] = new
                self._together[_slot(key)] = group
            return True

    def in_memory(self, key: Key) -> bool:
        """Whether the value under `key` is held in memory (not only on disk)."""
        with self._lock:
            return _slot(key) in self._memory

    def delete(self, key: Key) -> None:
        """Remove `key` and free its value (in memory and on disk)."""
        with self._lock:
            if key not in self._info:
                raise missing_key(key)
            self._forget(key)

    def drop(self, prefix: str) -> int:
        """Delete the chunks of the write `prefix` names (a `chunk_prefix`), and refuse its
        chunks and its frame's metadata from now on: after a write is taken back or its
        frame deleted, no late put (a task still running, a repair) brings them back.
        Returns how many were deleted."""
        with self._lock:
            self._dropped.add(prefix)
            doomed = [key for key in self._info if key.is_internal and key.name.startswith(prefix)]
            for key in doomed:
                self._forget(key)
        if self._on_drop is not None:
            self._on_drop(prefix)
        return len(doomed)

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
        """Bytes of values held in memory."""
        with self._lock:
            return self._memory.total

    @property
    def spilled_bytes(self) -> int:
        """Bytes of values held only on disk (not in memory)."""
        with self._lock:
            return sum(info.nbytes for info in self._info.values()) - self._memory.total

    @property
    def disk_bytes(self) -> int:
        """Bytes of the node's files."""
        with self._lock:
            return 0 if self._files is None else self._files.disk_bytes

    def close(self) -> None:
        """Let go of every value and wake every waiter; spill files are removed, the files
        of a durable directory kept for the next store opened on it (after the deferred
        ones are written)."""
        if self.durable:
            self._writes.join()
            self._writes.put(None)  # the writer thread ends
        with self._lock:
            self.closed = True
            self._memory = _Memory()
            self._together.clear()
            self._info.clear()
            waiters, self._waiters = self._waiters, {}
            if self._files is not None:
                self._files.close()
        for wakes in waiters.values():
            for wake in wakes:
                wake()

    def _hold(self, slot: str, value_kind: str, value, replicas: int, size: int) -> None:
        """Keep a new value: in memory if it fits the budget (spilling older ones as
        needed), else in its file. Raises (a `DiskError`) before anything changes if a
        file cannot be written."""
        if self.budget is None:
            self._memory.add(slot, value, size)
        elif size > self.budget:
            if slot not in self._files:
                self._files.write(slot, value_kind, value, replicas, size)
        else:
            self._make_room(size)
            self._memory.add(slot, value, size)

    def _make_room(self, size: int) -> None:
        """Move the least recently used values out of memory until `size` more bytes fit
        the budget; each goes to its file first unless it has one."""
        evictable = (slot for slot in list(self._memory.values) if slot not in self._unsynced)
        while self.budget is not None and self._memory.total + size > self.budget:
            slot = next(evictable, None)
            if slot is None:
                return  # the rest is being written: memory is over the budget for a moment
            for member in sorted(self._together.get(slot, {slot}), key=lambda member: member != slot):
                if member in self._memory and member not in self._unsynced:
                    self._spill(member)

    def _spill(self, slot: str) -> None:
        """Move a value out of memory, to its file first unless it has one."""
        value = self._memory.values[slot]
        if slot not in self._files:
            info = self._info[_key_of(slot)]
            self._files.write(slot, info.kind, value, info.replicas, info.nbytes)
        self._memory.pop(slot)
        self._together.pop(slot, None)

    def _cache(self, slot: str, info: KeyInfo, value) -> None:
        """Keep a value read from its file in memory too, if that fits without a spill
        that fails (a full disk must not fail a read)."""
        if self.budget is not None and info.nbytes > self.budget:
            return
        try:
            self._make_room(info.nbytes)
        except OSError:
            return
        self._memory.add(slot, value, info.nbytes)

    def _read(self, key: Key):
        slot = _slot(key)
        return self._memory.get(slot) if slot in self._memory else self._files.read(slot)

    def _forget(self, key: Key) -> None:
        slot = _slot(key)
        self._unsynced.pop(slot, None)
        self._info.pop(key, None)
        self._memory.pop(slot)
        for member in self._together.pop(slot, ()):  # the rest share with no one from now on
            self._together.pop(member, None)
        if self._files is not None:
            self._files.remove(slot)
        if self._on_forget is not None:
            self._on_forget(key)

    def _check_open(self) -> None:
        if self.closed:
            raise NodeLost(None, "this node is closing")

    def _check_not_dropped(self, key: Key, value) -> None:
        if isinstance(value, FrameMeta):
            write = chunk_prefix(key, value.tag)
        else:
            write = write_of(key.name) if key.is_internal else None
        if write in self._dropped:
            raise KeyError(f"key {key.name!r} belongs to a write that was taken back or deleted")

    def _cancel(self, key: Key, wake: Callable[[], None]) -> None:
        with self._lock:
            waiters = self._waiters.get(key, [])
            if wake in waiters:
                waiters.remove(wake)


class Incoming:
    """A value arriving in pieces: `write` each in order, then `finish` (or `abort`)."""

    def __init__(self, store: NodeStore, key: Key, file: IncomingFile):
        self._store, self.key, self._file = store, key, file

    def write(self, data) -> None:
        try:
            self._file.write(data)
        except BaseException:
            self.abort()
            raise

    def finish(self) -> None:
        try:
            entry = self._file.finish()
        except BaseException:
            self._store._done_writing(self.key)
            raise
        self._store._received(self.key, entry)

    def abort(self) -> None:
        self._file.abort()
        self._store._done_writing(self.key)


class _Memory:
    """Values held in memory by name, least recently used first, and their total size."""

    def __init__(self) -> None:
        self.values: OrderedDict[str, object] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self.total = 0

    def __contains__(self, slot: str) -> bool:
        return slot in self.values

    def get(self, slot: str):
        self.values.move_to_end(slot)
        return self.values[slot]

    def add(self, slot: str, value, size: int) -> None:
        self.values[slot] = value
        self._sizes[slot] = size
        self.total += size

    def pop(self, slot: str) -> None:
        if self.values.pop(slot, None) is not None:
            self.total -= self._sizes.pop(slot)


def _slot(key: Key) -> str:
    return f"{key.home}/{key.name}"


def _key_of(slot: str) -> Key | None:
    """The key a slot names (None if it names none: a damaged entry)."""
    home, _, name = slot.partition("/")
    try:
        return Key.internal(name, int(home))
    except ValueError:
        return None


def _equal(old, new) -> bool:
    """Whether two Arrow tables hold the same values, bit for bit (a NaN equals itself)."""
    if not (isinstance(old, pa.Table) and isinstance(new, pa.Table)):
        return False
    if old.schema != new.schema or old.num_rows != new.num_rows:
        return False
    return all(_same_values(a, b) for a, b in zip(old.columns, new.columns, strict=True))


def _same_values(old: pa.ChunkedArray, new: pa.ChunkedArray) -> bool:
    old, new = _whole(old), _whole(new)
    if old.offset == new.offset and _addresses(old) == _addresses(new):
        return True  # the same memory
    if pa.types.is_floating(old.type) and not old.null_count and not new.null_count:
        bits = np.dtype(f"u{old.type.byte_width}")
        return np.array_equal(old.to_numpy().view(bits), new.to_numpy().view(bits))
    return old.equals(new)


def _whole(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _addresses(array: pa.Array) -> list[int | None]:
    return [None if buffer is None else buffer.address for buffer in array.buffers()]


def _frozen(array: np.ndarray, owned: bool) -> np.ndarray:
    """An array no code can make writable: a copy unless the store owns `array` (the
    caller's may change later, the stored value may not)."""
    return read_only_array(array if owned else np.array(array, copy=True))
