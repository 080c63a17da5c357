"""What the store holds: the kinds of values, their sizes, and the metadata of stored frames."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from eau2.store.key import Key

STORABLE = "a DataFrame, a numpy array, an Arrow table or array, or bytes"


@dataclass(frozen=True)
class FrameMeta:
    """The value under a stored frame's key: its schema and where each row chunk lives."""

    schema: str
    names: list[str]
    chunk_rows: list[int]
    chunk_bytes: list[int]
    chunk_keys: list[tuple[str, int]]
    dropped_rows: int = 0

    @property
    def nrows(self) -> int:
        return sum(self.chunk_rows)

    @property
    def nbytes(self) -> int:
        return sum(self.chunk_bytes)

    def chunk_key(self, index: int) -> Key:
        name, home = self.chunk_keys[index]
        return Key.internal(name, home)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameMeta:
        fields = json.loads(bytes(data))
        fields["chunk_keys"] = [tuple(pair) for pair in fields["chunk_keys"]]
        return cls(**fields)


def compact(value):
    """An Arrow table or array that holds only its own bytes: a slice of a larger table is
    copied (once), so storing or sending it does not keep or ship its parent's buffers."""
    if isinstance(value, pa.Table) and _wastes(value):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_table(value)
        return pa.ipc.open_stream(sink.getvalue()).read_all()
    if isinstance(value, pa.Array) and _wastes(value):
        return compact(pa.table({"values": value})).column(0).chunk(0)
    return value


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
