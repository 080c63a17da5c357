"""Large values cut into pieces to travel, so that no message holds a whole value: Arrow data
as IPC streams of row ranges, numpy arrays and bytes as byte ranges."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from eau2.store.values import kind as kind_of
from eau2.store.values import nbytes

PIECE_BYTES = 32 << 20
"""About how many bytes of a value one message carries."""


@dataclass(frozen=True)
class Shape:
    """What a receiver needs to know before the pieces of a value arrive."""

    kind: str
    count: int
    """How many pieces."""
    dtype: str = ""
    """For a numpy array: its dtype, and its shape."""
    shape: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> Shape:
        return cls(**{**fields, "shape": tuple(fields["shape"])})


def shape_of(value, piece_bytes: int = PIECE_BYTES) -> Shape:
    kind = kind_of(value)
    count = max(1, math.ceil(nbytes(value) / piece_bytes))
    if kind == "ndarray":
        return Shape(kind, count, value.dtype.str, tuple(value.shape))
    return Shape(kind, count)


def piece(value, shape: Shape, index: int):
    """Piece `index` of `value`: an IPC stream of a row range (Arrow), else a byte range."""
    if shape.kind in ("table", "array"):
        table = value if shape.kind == "table" else pa.table({"values": value})
        rows = math.ceil(table.num_rows / shape.count)
        return _ipc(table.slice(index * rows, rows))
    flat = _bytes_of(value)
    size = math.ceil(len(flat) / shape.count)
    return flat[index * size : (index + 1) * size]


def pieces(value, shape: Shape) -> Iterator:
    for index in range(shape.count):
        yield piece(value, shape, index)


def table_of(data) -> pa.Table:
    """The rows an Arrow piece carries."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def assemble(shape: Shape, parts: list):
    """The value whose pieces are `parts`, in order."""
    if shape.kind in ("table", "array"):
        table = pa.concat_tables([table_of(part) for part in parts])
        if shape.kind == "table":
            return table
        column = table.column(0)
        return column.chunk(0) if column.num_chunks == 1 else column
    if shape.kind == "bytes":
        return b"".join(bytes(part) for part in parts)
    joined = np.empty(sum(len(part) for part in parts), np.uint8)
    start = 0
    for part in parts:
        joined[start : start + len(part)] = np.frombuffer(part, np.uint8)
        start += len(part)
    return joined.view(np.dtype(shape.dtype)).reshape(shape.shape)


def _ipc(table: pa.Table) -> np.ndarray:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return np.frombuffer(sink.getvalue(), dtype=np.uint8)


def _bytes_of(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    return np.frombuffer(value, dtype=np.uint8)
