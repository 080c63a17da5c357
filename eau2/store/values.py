"""What the store holds: the kinds of values, their sizes, and the metadata of stored frames."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from eau2.sor.origin import BlockOrigin
from eau2.store.key import CHUNK_MARK, Key

STORABLE = "a DataFrame, a numpy array, an Arrow table or array, or bytes"


def chunk_key(name: str) -> Key:
    """The key a chunk is stored under on each node that holds it."""
    return Key.internal(name, 0)


def chunk_prefix(key: Key, tag: str) -> str:
    """What the names of one write's chunks of the frame under `key` start with."""
    return f"{key.name}{CHUNK_MARK}{key.home}{CHUNK_MARK}{tag}{CHUNK_MARK}"


def write_of(name: str) -> str | None:
    """The `chunk_prefix` a chunk name starts with (None for names that are not chunks')."""
    cut = name.rfind(CHUNK_MARK)
    return name[: cut + 1] if cut > 0 else None


def frame_of_chunk(name: str) -> tuple[Key, str] | None:
    """The frame key and write tag a chunk name belongs to (None for other names)."""
    parts = name.rsplit(CHUNK_MARK, 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return Key(parts[0], int(parts[1])), parts[2]


@dataclass(frozen=True)
class StoredChunk:
    """One row chunk of a stored frame: its internal name, size, the nodes holding a copy,
    for chunks parsed from files their origin, and the positions of its columns that have a
    missing value (None in metadata written before eau2 recorded them)."""

    name: str
    rows: int
    nbytes: int
    holders: tuple[int, ...]
    origin: BlockOrigin | None = None
    missing: tuple[int, ...] | None = None

    @property
    def key(self) -> Key:
        return chunk_key(self.name)


@dataclass(frozen=True)
class FrameMeta:
    """The value under a stored frame's key: its schema, its chunks and who holds them.

    `replicas` is how many nodes should hold each chunk (the metadata itself is on at
    least two). Only repair changes a frame's metadata (its holders), never its rows.
    """

    schema: str
    names: list[str]
    chunks: list[StoredChunk]
    replicas: int = 1
    dropped_rows: int = 0
    tag: str = ""
    """Names this write's chunks (see `chunk_prefix`)."""

    @property
    def nrows(self) -> int:
        return sum(chunk.rows for chunk in self.chunks)

    @property
    def nbytes(self) -> int:
        return sum(chunk.nbytes for chunk in self.chunks)

    @property
    def missing(self) -> frozenset[int] | None:
        """Positions of the columns with a missing value in some chunk; None when unknown."""
        if any(chunk.missing is None for chunk in self.chunks):
            return None
        return frozenset(column for chunk in self.chunks for column in chunk.missing)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameMeta:
        fields = json.loads(bytes(data))
        fields["chunks"] = [
            StoredChunk(
                **{
                    **chunk,
                    "holders": tuple(chunk["holders"]),
                    "missing": None if chunk.get("missing") is None else tuple(chunk["missing"]),
                    "origin": BlockOrigin(**chunk["origin"]) if chunk["origin"] else None,
                }
            )
            for chunk in fields["chunks"]
        ]
        return cls(**fields)


def missing_columns(table: pa.Table) -> tuple[int, ...]:
    """Positions of the columns of `table` that have a missing value."""
    return tuple(position for position, column in enumerate(table.columns) if column.null_count)


def compact(value):
    """An Arrow table or array that holds only its own bytes: a slice of a larger table is
    copied (once), so storing or sending it does not keep or ship its parent's buffers."""
    if isinstance(value, (pa.Table, pa.Array)) and _wastes(value):
        return _copied(value)
    return value


def immutable(value, copy: bool = False):
    """An Arrow table or array on memory no code can write through: readers in the same
    process (a `get`, the dask view's partitions) share a stored value's memory, and Arrow
    arrays made from numpy's (as the parser's are) are writable through their buffers.
    With `copy` (the caller may still hold and change that memory, whatever its flags say)
    the value is copied; else writable buffers are viewed read-only, without a copy where
    the value's types allow it."""
    if not isinstance(value, (pa.Table, pa.Array, pa.ChunkedArray)):
        return value
    if copy:
        return _copied(value)
    if not any(writable_buffers(chunk) for chunk in _chunks(value)):
        return value
    if not all(_flat(chunk.type) for chunk in _chunks(value)):
        return _copied(value)
    if isinstance(value, pa.Array):
        return _read_only(value)
    if isinstance(value, pa.ChunkedArray):
        return pa.chunked_array([_read_only(chunk) for chunk in value.chunks], type=value.type)
    return pa.Table.from_arrays([immutable(column) for column in value.columns], schema=value.schema)


def read_only_array(array: np.ndarray) -> np.ndarray:
    """A view of `array`, which the caller no longer writes to, that no code can make
    writable: numpy lets an array that owns its memory be made writable again, so the
    view sees that memory through an immutable Arrow buffer, which hides its owner."""
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    array.flags.writeable = False
    order = "C" if array.flags.c_contiguous else "F"
    return np.frombuffer(pa.py_buffer(array), dtype=array.dtype).reshape(array.shape, order=order)


def _copied(value):
    """`value` copied into memory of its own, through Arrow IPC (read-only buffers)."""
    table = value if isinstance(value, pa.Table) else pa.table({"values": value})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    copy = pa.ipc.open_stream(sink.getvalue()).read_all()
    if isinstance(value, pa.Table):
        return copy
    column = copy.column(0)
    if isinstance(value, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else immutable(column.combine_chunks())


def _chunks(value) -> list[pa.Array]:
    if isinstance(value, pa.Array):
        return [value]
    if isinstance(value, pa.ChunkedArray):
        return value.chunks
    return [chunk for column in value.columns for chunk in column.chunks]


def writable_buffers(array: pa.Array) -> bool:
    """Whether code can write to `array` through one of its buffers."""
    return any(buffer is not None and buffer.is_mutable for buffer in array.buffers())


def _flat(kind: pa.DataType) -> bool:
    """Types whose arrays `pa.Array.from_buffers` makes from `buffers()` alone."""
    return (
        pa.types.is_primitive(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_decimal(kind)
    )


def _read_only(array: pa.Array) -> pa.Array:
    """`array` on immutable views of its writable buffers (each keeps its buffer alive)."""
    buffers = [
        pa.foreign_buffer(buffer.address, buffer.size, base=buffer)
        if buffer is not None and buffer.is_mutable
        else buffer
        for buffer in array.buffers()
    ]
    return pa.Array.from_buffers(array.type, len(array), buffers, array.null_count, array.offset)


def _wastes(value: pa.Table | pa.Array) -> bool:
    """Whether `value` references clearly more bytes than it holds (it is a slice)."""
    return value.get_total_buffer_size() > 1.25 * value.nbytes + 65536


def nbytes(value) -> int:
    """Bytes a stored value holds in memory."""
    if isinstance(value, (pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray, np.ndarray)):
        return value.nbytes
    if isinstance(value, FrameMeta):
        return len(value.to_bytes())
    return len(value)


def kind(value) -> str:
    """The kind of a stored value, as listings show it."""
    if isinstance(value, FrameMeta):
        return "frame"
    if isinstance(value, pa.Table):
        return "table"
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return "array"
    if isinstance(value, np.ndarray):
        return "ndarray"
    return "bytes"


def check_storable(key: Key, value) -> None:
    """A `TypeError` naming the key unless `value` can be stored whole."""
    if not isinstance(value, (pa.Table, pa.Array, pa.ChunkedArray, np.ndarray, bytes, bytearray, FrameMeta)):
        raise TypeError(f"key {key.name!r}: cannot store a {type(value).__name__}; store {STORABLE}")
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise TypeError(f"key {key.name!r}: cannot store a numpy array of Python objects")


@dataclass(frozen=True)
class KeyInfo:
    """One entry of `KVStore.keys()`: a user key, what it holds and how many bytes."""

    key: Key
    kind: str
    nbytes: int
    nchunks: int = 0
    replicas: int = 1
    """Copies asked for: of the value, or of each chunk of a frame."""
    copies: int = 1
    """Copies on live nodes: of the value, or of the least-replicated chunk of a frame."""
    status: str = "ok"
    """"ok"; "degraded" (fewer copies than asked, or chunks that must be rebuilt from their
    files); "lost" (a chunk with no copy and no source); "partial" (chunks with no metadata:
    a write in progress, or a frame whose metadata was lost); "unknown" (chunks with no
    metadata found while some live node did not answer: it may hold the metadata)."""
    rows: int | None = None
    """A frame's rows (None for other values, and for a partial or unknown frame)."""
