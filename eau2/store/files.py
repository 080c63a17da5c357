"""A node's values as files: one file per value with a checksummed entry beside it, read
back memory-mapped, verified before the first use."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from eau2.store.pieces import Shape
from eau2.store.values import FrameMeta

_SUFFIXES = {"table": ".table", "array": ".array", "ndarray": ".npy", "frame": ".meta", "bytes": ".bytes"}


@dataclass(frozen=True)
class FileEntry:
    """What a value file holds, written beside it: the value's name and kind, its size in
    memory, the copies asked for, and the file's size and CRC-32."""

    name: str
    kind: str
    nbytes: int
    replicas: int
    size: int
    crc32: int
    file: str
    """The name of the value's file in the directory (each version of a value has its own)."""


class DamagedFile(Exception):
    """A value's file is missing, shorter or longer than written, or fails its checksum."""


class DiskError(OSError):
    """Writing to a node's directory failed (full, read-only, gone): names the directory."""


class ValueFiles:
    """Values by name as files in `directory`: Arrow IPC for tables and arrays, ``.npy`` for
    numpy arrays, raw bytes otherwise; tables and arrays come back memory-mapped (no copy).

    `durable` files are synced before `write` returns, kept when the node closes and found
    again when it opens; other files are a spill tier, removed at open and close (and by
    `remove_abandoned` after a crash). The directory is locked to one store at a time.
    File names are hashes of the value names, so no name can reach outside `directory`.
    """

    def __init__(self, directory: str | os.PathLike, durable: bool = False):
        self.directory = Path(directory)
        self.durable = durable
        self._verified: set[str] = set()
        self._lock_file = None
        try:
            if not durable:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_file = _lock(self.directory)
            _check_writable(self.directory)
        except OSError as error:
            raise DiskError(f"cannot use {self.directory} for eau2's files: {why(error)}") from None
        self.entries: dict[str, FileEntry] = {}
        """The values on disk, by name."""
        self.damaged: list[tuple[str, str]] = []
        """Values found unusable when the directory was opened: (name, why)."""
        if durable:
            try:
                self._load()
            except DiskError:
                self.close()
                raise

    def write(self, name: str, kind: str, value, replicas: int, nbytes: int) -> FileEntry:
        """Write `value` to a new file and make it the value's (replacing any earlier one);
        `DiskError` naming the directory if it cannot be written, leaving nothing behind."""
        written = self.prepare(name, kind, value, replicas, nbytes)
        written.commit()
        return written.entry

    def prepare(self, name: str, kind: str, value, replicas: int, nbytes: int) -> Written:
        """Write `value` to a new file, synced if durable, that is not yet the value's:
        `commit` makes it so, `discard` removes it."""
        path = self._new_path(name, kind)
        part = path.with_name(path.name + ".part")
        try:
            with open(part, "wb") as file:
                sink = _ChecksumFile(file)
                _write_value(sink, kind, value)
                file.flush()
                if self.durable:
                    os.fsync(file.fileno())
        except OSError as error:
            part.unlink(missing_ok=True)
            raise DiskError(f"cannot write to {self.directory}: {why(error)}") from None
        return Written(
            self, part, path, FileEntry(name, kind, nbytes, replicas, sink.size, sink.crc32, path.name)
        )

    def _commit(self, part: Path, path: Path, entry: FileEntry) -> None:
        """Make the written `part` the value's file: renamed, then its entry replaced
        atomically to point to it (so a crash at any step leaves the old version or the
        new one whole), then the file it replaces removed."""
        old = self.entries.get(entry.name)
        try:
            os.replace(part, path)
            if self.durable:
                write_synced(self._entry_path(entry.name), json.dumps(asdict(entry)).encode())
                _sync_directory(self.directory)
        except OSError as error:
            part.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            raise DiskError(f"cannot write to {self.directory}: {why(error)}") from None
        self.entries[entry.name] = entry
        self._verified.add(entry.name)
        if old is not None and old.file != entry.file:
            (self.directory / old.file).unlink(missing_ok=True)

    def incoming(self, name: str, shape: Shape, replicas: int) -> IncomingFile:
        """A file for a value that arrives in pieces, written as they come."""
        return IncomingFile(self, name, shape, replicas)

    def read(self, name: str):
        """The value `name`, memory-mapped where it can be; `DamagedFile` if its file is
        not what was written (checked in full the first time it is read)."""
        path = self.verify(name)
        return _read_value(path, self.entries[name].kind)

    def verify(self, name: str) -> Path:
        """The path of the value's file; `DamagedFile` if it is not what was written (its
        size checked each time, its checksum the first time)."""
        entry = self.entries[name]
        path = self.directory / entry.file
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DamagedFile(f"its file {path} is missing") from None
        if size != entry.size:
            raise DamagedFile(f"its file {path} has {size} bytes, not the {entry.size} written")
        if name not in self._verified:
            if _crc32_of(path) != entry.crc32:
                raise DamagedFile(f"its file {path} fails its checksum")
            self._verified.add(name)
        return path

    def remove(self, name: str) -> None:
        """Remove the value's file and entry, if there are any."""
        entry = self.entries.pop(name, None)
        self._verified.discard(name)
        if entry is not None:
            self._entry_path(name).unlink(missing_ok=True)
            (self.directory / entry.file).unlink(missing_ok=True)
            if self.durable:
                _sync_directory(self.directory)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(list(self.entries.values()))

    @property
    def disk_bytes(self) -> int:
        return sum(entry.size for entry in list(self.entries.values()))

    def close(self) -> None:
        """Release the directory: spill files are removed, durable ones kept."""
        if not self.durable:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _entry_path(self, name: str) -> Path:
        return self.directory / f"{_hash(name)}.entry"

    def _new_path(self, name: str, kind: str) -> Path:
        """A file name no other write uses: a version of the value's."""
        return self.directory / f"{_hash(name)}-{uuid.uuid4().hex[:12]}{_SUFFIXES[kind]}"

    def _refuse_newer_entries(self, listed: dict[Path, bytes]) -> None:
        """`DiskError` if an entry of `listed` (path: bytes) has fields this version does
        not know: a newer eau2 wrote the directory, and this one would take its entries for
        damaged and delete them."""
        known = {entry_field.name for entry_field in fields(FileEntry)}
        for entry_path, data in listed.items():
            try:
                written = json.loads(data)
            except ValueError:
                continue  # damaged: `_load` drops it
            if isinstance(written, dict) and (unknown := sorted(set(written) - known)):
                raise DiskError(
                    f"cannot use {self.directory} for eau2's files: its entry {entry_path.name} has "
                    f"fields this version of eau2 does not know ({', '.join(unknown)}), so a newer "
                    "eau2 wrote it; run that version, or give this node another directory"
                )

    def _load(self) -> None:
        """Find the values of an earlier run; drop files no entry vouches for, and entries
        whose file is missing or of the wrong size (recorded in `damaged`)."""
        vouched = {_LOCK}
        listed = {path: path.read_bytes() for path in sorted(self.directory.glob("*.entry"))}
        self._refuse_newer_entries(listed)  # before anything is dropped
        for entry_path, data in listed.items():
            try:
                entry = FileEntry(**json.loads(data))
                if entry.kind not in _SUFFIXES or Path(entry.file).name != entry.file:
                    raise ValueError(f"kind {entry.kind!r}, file {entry.file!r}")
                if entry_path != self._entry_path(entry.name):
                    raise ValueError(f"it names the value {entry.name!r}, which is not its own")
            except (ValueError, TypeError, KeyError) as error:
                self.damaged.append((entry_path.name, f"its entry {entry_path} is unreadable: {error}"))
                entry_path.unlink(missing_ok=True)
                continue
            path = self.directory / entry.file
            size = path.stat().st_size if path.exists() else None
            if size != entry.size:
                why = "is missing" if size is None else f"has {size} bytes, not the {entry.size} written"
                self.damaged.append((entry.name, f"its file {path} {why}"))
                entry_path.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                continue
            self.entries[entry.name] = entry
            vouched.update((entry_path.name, entry.file))
        for path in self.directory.iterdir():
            if path.name not in vouched and path.is_file():
                path.unlink(missing_ok=True)  # an unfinished write, or a version replaced


@dataclass
class Written:
    """A value's new file, written and synced but not yet the value's (see `prepare`)."""

    files: ValueFiles
    part: Path
    path: Path
    entry: FileEntry

    def commit(self) -> None:
        self.files._commit(self.part, self.path, self.entry)

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)


_LOCK = "lock"
_FRESH_SECONDS = 60.0


def remove_abandoned(root: Path, pattern: str) -> None:
    """Remove the spill directories under `root` matching `pattern` whose store is gone
    (killed: nothing removed them); those in use are locked."""
    for directory in root.glob(pattern):
        try:
            with open(directory / _LOCK) as file:  # no lock file: being made, or not ours
                if time.time() - os.fstat(file.fileno()).st_mtime < _FRESH_SECONDS:
                    continue  # just made: its store may not have locked it yet
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            continue  # in use


def _lock(directory: Path):
    """Hold an exclusive lock on `directory` while the node runs (released if it dies)."""
    file = open(directory / _LOCK, "a+")  # noqa: SIM115 - held open while the node runs
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise OSError(errno.EBUSY, "another eau2 node is using it") from None
    return file


def _check_writable(directory: Path) -> None:
    probe = directory / ".probe"
    probe.write_bytes(b"")
    probe.unlink()


def _hash(name: str) -> str:
    """A value's name as a file name: no name reaches outside the directory."""
    return hashlib.sha1(name.encode()).hexdigest()


def why(error: OSError) -> str:
    """What went wrong, in words (a full disk said plainly)."""
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    return error.strerror or str(error)


class IncomingFile:
    """A value's file written piece by piece (see `eau2.store.pieces`): only one piece is
    in memory at a time. `finish` makes it the value's file; `abort` leaves nothing."""

    def __init__(self, files: ValueFiles, name: str, shape: Shape, replicas: int):
        self._files, self.name, self.shape, self._replicas = files, name, shape, replicas
        self._path = files._new_path(name, shape.kind)
        self._part = self._path.with_name(self._path.name + ".part")
        self._writer = None
        self.nbytes = 0
        self._guard(self._open)

    def _open(self) -> None:
        self._file = open(self._part, "wb")  # noqa: SIM115 - closed by finish or abort
        self._sink = _ChecksumFile(self._file)
        if self.shape.kind == "ndarray":
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(self.shape.dtype))}
            header.update(fortran_order=False, shape=self.shape.shape)
            np.lib.format.write_array_header_2_0(self._sink, header)

    def write(self, data) -> None:
        self._guard(self._write, data)

    def _write(self, data) -> None:
        if self.shape.kind in ("table", "array"):
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
            if self._writer is None:
                self._stream = pa.PythonFile(self._sink, mode="w")
                self._writer = pa.ipc.new_file(self._stream, table.schema)
            self._writer.write_table(table)
            self.nbytes += table.nbytes
        else:
            self._sink.write(data)
            self.nbytes += len(data)

    def finish(self) -> FileEntry:
        """Close and sync the file, and record its entry; `ValueError` if the pieces do
        not make the value announced."""
        if self.shape.kind == "ndarray":
            expected = int(np.prod(self.shape.shape)) * np.dtype(self.shape.dtype).itemsize
            if self.nbytes != expected:
                self.abort()
                raise ValueError(f"{self.name}: {self.nbytes} bytes arrived, not the {expected} announced")
        self._guard(self._close)
        sink = self._sink
        entry = FileEntry(
            self.name, self.shape.kind, self.nbytes, self._replicas, sink.size, sink.crc32, self._path.name
        )
        self._files._commit(self._part, self._path, entry)
        return entry

    def _close(self) -> None:
        if self.shape.kind in ("table", "array"):
            if self._writer is None:
                raise ValueError(f"{self.name}: no rows arrived")
            self._writer.close()
            self._stream.close()
        self._file.flush()
        if self._files.durable:
            os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
        self._part.unlink(missing_ok=True)

    def _guard(self, step, *args) -> None:
        try:
            step(*args)
        except OSError as error:
            self.abort()
            raise DiskError(f"cannot write to {self._files.directory}: {why(error)}") from None
        except BaseException:
            self.abort()
            raise


class _ChecksumFile:
    """A binary file that keeps the CRC-32 and size of what is written to it."""

    def __init__(self, file):
        self._file = file
        self.crc32 = 0
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        self.crc32 = zlib.crc32(data, self.crc32)
        written = self._file.write(data)
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self.closed = True  # the underlying file is closed by its owner


def _write_value(sink: _ChecksumFile, kind: str, value) -> None:
    if kind in ("table", "array"):
        table = value if kind == "table" else pa.table({"values": value})
        with pa.PythonFile(sink, mode="w") as stream, pa.ipc.new_file(stream, table.schema) as writer:
            writer.write_table(table)
    elif kind == "ndarray":
        np.lib.format.write_array(sink, np.ascontiguousarray(value), allow_pickle=False)
    elif kind == "frame":
        sink.write(value.to_bytes())
    else:
        sink.write(value)


def _read_value(path: Path, kind: str):
    if kind in ("table", "array"):
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        if kind == "table":
            return table
        column = table.column(0)
        return column.chunk(0) if column.num_chunks == 1 else column
    if kind == "ndarray":
        return np.load(path, mmap_mode="r", allow_pickle=False)
    if kind == "frame":
        return FrameMeta.from_bytes(path.read_bytes())
    return path.read_bytes()


def _crc32_of(path: Path) -> int:
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return 0
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return zlib.crc32(mapped)


def write_synced(path: Path, data: bytes) -> None:
    """Replace the file at `path` with `data` atomically, synced."""
    part = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(part, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
