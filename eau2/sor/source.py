"""Where SoR bytes come from: in-memory bytes or any fsspec URL, cut into blocks of whole lines."""

from __future__ import annotations

import gzip
import lzma
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import fsspec.utils
import numpy as np
import pyarrow as pa
from fsspec.implementations.local import LocalFileOpener

from eau2.errors import LineTooLong, SorError
from eau2.sor import kernel
from eau2.sor.block import MAX_LINE_BYTES

SorSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray
"""What SoR can be read from: a local path, an fsspec URL, or bytes in memory."""

BLOCK_BYTES = 32 << 20
"""Bytes read and parsed at a time by the local reader."""

POOLED_BYTES = 96 << 20
"""Reads up to this size (a block with the rest of its last line) take memory from Arrow's
pool, which keeps freed pages for the next block; longer ones (a long line's block growing
to hold it) from the system, which takes them back at once."""

READ_ALIGNMENT = 4096
"""A local read starts at a multiple of this many bytes (a page), before the bytes asked
for if need be: copying a file's pages to a buffer whose start does not line up with
theirs ran at a third of the speed (28 ms against 10 ms for 64 MiB on the reference machine)."""


FINGERPRINT_FIELDS = ("size", "ETag", "etag", "mtime", "LastModified", "last_modified", "created")
"""What a file system's info of a file holds that changes when the file does."""


def fingerprint_of(info: dict) -> dict:
    """The fields of a file system's `info` of a file that change when the file does."""
    return {name: str(info[name]) for name in FINGERPRINT_FIELDS if info.get(name) is not None}


class ByteSource:
    """Random access to the bytes of one input: its name for messages, its size, byte ranges,
    and the `fingerprint_of` its file when opened (empty for bytes in memory)."""

    name: str
    size: int
    fingerprint: dict

    def read(self, start: int, stop: int):
        """The bytes ``[start, stop)`` as a bytes-like object."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying file, if any."""


class MemorySource(ByteSource):
    """Bytes already in memory; ranges are zero-copy views."""

    def __init__(self, data, name: str = "<bytes>", fingerprint: dict | None = None):
        self._view = memoryview(data).cast("B")
        self.name = name
        self.size = len(self._view)
        self.fingerprint = fingerprint or {}

    def read(self, start: int, stop: int):
        return self._view[start:stop]


class FileSource(ByteSource):
    """One file of any fsspec file system, read by byte ranges without read-ahead."""

    def __init__(self, urlpath: str, storage_options: dict | None = None):
        self.name = urlpath
        fs, path, info = _regular_file(urlpath, storage_options)
        self.fingerprint = fingerprint_of(info)
        try:
            self.size = info["size"] if info.get("size") is not None else fs.size(path)
            self._file = fs.open(path, "rb", cache_type="none")
        except OSError as error:
            raise _cannot_open(urlpath, error) from None

    def read(self, start: int, stop: int):
        """The bytes ``[start, stop)``; `SorError` if the file ends before `stop`: it was cut
        short while being read. A local file is read into memory from Arrow's pool, which
        hands a block the pages of blocks already parsed and freed (faulting in fresh pages
        costs more than the read itself), from the page `start` is in (see `READ_ALIGNMENT`);
        other file systems' ``readinto`` reads into new bytes and copies them, so those are
        read as they come."""
        size = max(0, stop - start)
        if not isinstance(self._file, LocalFileOpener):
            self._file.seek(start)
            data = self._file.read(size)
            if len(data) < size:
                raise self._cut_short(stop)
            return data
        skip = start % READ_ALIGNMENT
        self._file.seek(start - skip)
        size += skip
        pool = pa.default_memory_pool() if size <= POOLED_BYTES else pa.system_memory_pool()
        view = memoryview(pa.allocate_buffer(size, memory_pool=pool)).cast("B")
        got = 0
        while got < size:
            read = self._file.readinto(view[got:])
            if not read:
                raise self._cut_short(stop)
            got += read
        return view[skip:]

    def _cut_short(self, stop: int) -> SorError:
        """The error for a read that ended early; callers add the file's name."""
        return SorError(
            f"the file now ends before byte {stop}, though it was {self.size} bytes when opened: "
            "it changed while being read"
        )

    def close(self) -> None:
        self._file.close()


def open_source(source: SorSource, storage_options: dict | None = None) -> ByteSource:
    """A byte source for a path or fsspec URL (compressed files are read whole) or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        return MemorySource(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"an SoR source is a path, an fsspec URL or bytes, not {type(source).__name__}")
    urlpath = os.fspath(source)
    if not urlpath:
        raise ValueError("no SoR file given: an empty path")
    compression = fsspec.utils.infer_compression(urlpath)
    if compression is None:
        return FileSource(urlpath, storage_options)
    info = _regular_file(urlpath, storage_options)[2]
    try:
        with fsspec.open(urlpath, "rb", compression=compression, **(storage_options or {})) as f:
            return MemorySource(f.read(), name=urlpath, fingerprint=fingerprint_of(info))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such SoR file: {urlpath}") from None
    except Exception as error:
        if not _is_corrupt(error):
            raise
        raise SorError(f"{urlpath}: truncated or corrupt {compression} data ({error})") from error


def _regular_file(urlpath: str, storage_options: dict | None) -> tuple:
    """The file system, path and info of `urlpath`, checked before anything opens it; one
    error naming it if it is missing, a directory, a pipe, socket or device (opening a
    pipe waits for a writer), or of an unknown protocol."""
    try:
        fs, path = fsspec.core.url_to_fs(urlpath, **(storage_options or {}))
    except (ValueError, ImportError) as error:  # an unknown protocol, or one not installed
        raise ValueError(f"{urlpath}: {error}") from None
    try:
        info = fs.info(path)
    except FileNotFoundError:
        glob = "://" not in urlpath and any(mark in urlpath for mark in "*?[")
        hint = " (one file: globs and lists are for kv.read_sor and eau2_dask.read_sor)" if glob else ""
        raise FileNotFoundError(f"no such SoR file: {urlpath}{hint}") from None
    except OSError as error:
        raise _cannot_open(urlpath, error) from None
    kind = info.get("type")
    if kind == "directory":
        raise SorError(f"{urlpath} is a directory, not an SoR file")
    if kind not in ("file", None):
        raise SorError(f"{urlpath} is not a regular file (a pipe, socket or device: its type is {kind!r})")
    return fs, path, info


def _cannot_open(urlpath: str, error: OSError) -> OSError:
    """`error`, naming `urlpath`: of its errno's own subclass (PermissionError, ...), or of
    its own type when it has no errno (TimeoutError, ...)."""
    if error.errno is None:
        return type(error)(f"{urlpath} cannot be opened: {error}")
    return OSError(error.errno, f"{urlpath} cannot be opened: {error.strerror or error}")


def _is_corrupt(error: Exception) -> bool:
    """Whether `error` is a decompressor's way of saying its input is cut short or damaged."""
    if isinstance(error, (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)):
        return True
    # bz2 says "Invalid data stream" with a bare OSError; zstandard raises ZstdError
    return (type(error) is OSError and error.errno is None) or type(error).__name__ == "ZstdError"


@dataclass(frozen=True)
class Window:
    """The byte window ``[start, stop)`` of a source, checked against its size."""

    start: int
    stop: int
    reaches_end: bool

    @classmethod
    def of(cls, source: ByteSource, start: int = 0, length: int | None = None) -> Window:
        """The window of `length` bytes from `start` (to the end when `length` is None)."""
        if start < 0 or (length is not None and length < 0):
            raise SorError(f"{source.name}: a window needs start >= 0 and length >= 0")
        if start > 0 and start >= source.size:
            raise SorError(
                f"{source.name}: window start {start} is past the end of the input ({source.size} bytes)"
            )
        stop = source.size if length is None else min(source.size, start + length)
        return cls(start, stop, stop == source.size)


def line_blocks(
    source: ByteSource,
    window: Window,
    block_bytes: int = BLOCK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator:
    """The whole lines of `window`, as blocks of about `block_bytes`, per the SoR window rules.

    A partial first line (the byte before the window is not a newline) is skipped, and so
    is a last line whose newline is outside the window, unless the window reaches the end
    of the input. Nothing outside the window is read, except the one byte before it.

    A line longer than a block makes its block grow to hold it, up to `max_line_bytes`:
    past that, `LineTooLong` names the byte where the line starts.
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be >= 1, not {block_bytes!r}")
    position = window.start
    if position > 0 and bytes(source.read(position - 1, position)) != b"\n":
        position = _after_first_newline(source, position, window.stop, block_bytes)
    size = block_bytes
    while position < window.stop:
        piece = source.read(position, min(position + size, window.stop))
        at_stop = position + len(piece) >= window.stop
        buf = np.frombuffer(piece, np.uint8)
        cut = len(buf) if at_stop and window.reaches_end else kernel.last_line_end(buf)
        if cut == 0:
            if at_stop:
                return
            if len(buf) > max_line_bytes:
                raise LineTooLong(max_line_bytes, source.name, offset=position)
            size = min(2 * size, max_line_bytes + 1)  # a line longer than a block: read more of it
            continue
        yield memoryview(piece)[:cut]
        position += cut
        size = block_bytes


def _after_first_newline(source: ByteSource, position: int, stop: int, block_bytes: int) -> int:
    while position < stop:
        buf = np.frombuffer(source.read(position, min(position + block_bytes, stop)), np.uint8)
        newline = kernel.first_newline(buf)
        if newline >= 0:
            return position + newline + 1
        position += len(buf)
    return stop


def lines_starting_in(
    source: ByteSource, offset: int, length: int, max_line_bytes: int = MAX_LINE_BYTES, probe: int = 1 << 16
):
    """The whole lines that start in bytes ``[offset, offset+length)``, and the byte where
    the first of them starts: the rule for splitting one input into blocks read in
    parallel, so that the blocks of one grid cover every line exactly once.

    Reads the range once, with the byte before it and the rest of its last line; returns a
    view of what it read (no copy). A last line that goes on for more than
    `max_line_bytes` past the range is `LineTooLong`, found without reading it all.
    """
    stop = min(source.size, offset + length)
    if offset >= stop:
        return b"", stop
    first = max(offset - 1, 0)
    end = source.size
    if stop < source.size:
        end = _after_newline_from(source, stop - 1, probe, stop + max_line_bytes)
    if end < 0:  # the last line is too long: where does it start, if in the range?
        head = np.frombuffer(source.read(first, stop), np.uint8)
        if offset > 0 and kernel.first_newline(head) < 0:
            return b"", stop  # no line starts in the range
        raise LineTooLong(max_line_bytes, source.name, offset=first + kernel.last_line_end(head))
    data = memoryview(source.read(first, end))
    if offset == 0:
        return data, 0
    newline = kernel.first_newline(np.frombuffer(data, np.uint8))
    if newline < 0 or first + newline + 1 >= stop:
        return b"", stop  # no line starts in the range
    return data[newline + 1 :], first + newline + 1


def _after_newline_from(source: ByteSource, position: int, probe: int, limit: int) -> int:
    """Offset just past the first newline at or after `position`, or the end of the input;
    -1 when there is none before `limit` (and the input goes on)."""
    while position < source.size:
        if position >= limit:
            return -1
        piece = np.frombuffer(source.read(position, min(position + probe, source.size, limit)), np.uint8)
        newline = kernel.first_newline(piece)
        if newline >= 0:
            return position + newline + 1
        position += len(piece)
    return source.size
