"""The reusable pieces of SoR reading: infer a schema from a sample; parse one block of whole lines.

Both take any bytes-like object (bytes, memoryview, numpy ``uint8`` array, Arrow buffer)
without copying it. The parallel reader runs `parse_block` on each block of a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eau2.errors import SorError
from eau2.sor import kernel
from eau2.types import ColumnType, Schema

INFERENCE_LINES = 500
"""Schema inference looks at this many lines, per the SoR spec."""

MAX_BLOCK_BYTES = (1 << 31) - 1
"""A block's strings must fit Arrow's 32-bit offsets."""

DROPPED_LINES_KEPT = 100
"""How many dropped lines a block reports by number; all are counted."""

_REASONS = {
    kernel.TEXT_OUTSIDE_FIELD: "text outside a field",
    kernel.UNTERMINATED_FIELD: "unterminated field",
    kernel.BAD_VALUE: "invalid value (whitespace inside an unquoted value, or text after a quote)",
    kernel.NOT_UTF8: "string is not valid UTF-8",
    kernel.TOO_MANY_FIELDS: "more fields than the schema has columns",
    kernel.DOES_NOT_FIT: "value does not fit its column's type",
}


@dataclass(frozen=True)
class DroppedLine:
    """A line that is not a row of the result: its number (from 1), why, and at which column."""

    line: int
    reason: str
    column: int

    @property
    def is_schema_mismatch(self) -> bool:
        """Whether the line was a row, only not one of the schema's."""
        return self.reason in (_REASONS[kernel.DOES_NOT_FIT], _REASONS[kernel.TOO_MANY_FIELDS])

    def __str__(self) -> str:
        if self.reason == _REASONS[kernel.DOES_NOT_FIT]:
            return f"line {self.line}: column {self.column}: {self.reason}"
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedBlock:
    """One parsed block: its rows, how many lines it had, and the lines that were dropped."""

    batch: pa.RecordBatch
    lines: int
    dropped_rows: int
    dropped_lines: tuple[DroppedLine, ...]


def as_bytes_array(data) -> np.ndarray:
    """A zero-copy ``uint8`` view of any bytes-like object."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return data
    return np.frombuffer(data, dtype=np.uint8)


def infer_schema(sample, max_lines: int = INFERENCE_LINES) -> Schema:
    """The schema of the rows among the first `max_lines` lines of `sample`.

    >>> str(infer_schema(b"<0> <23> <hi>\\n<1> <12> <>\\n<1> <1>\\n"))
    'BIS'
    """
    codes, _ = kernel.infer_types(as_bytes_array(sample), max_lines)
    return Schema(ColumnType.from_code(int(code)) for code in codes)


def infer_schema_from_blocks(blocks) -> tuple[Schema, list]:
    """The schema of the first lines of an iterator of whole-line blocks, and the blocks it
    took from the iterator to see them (so the caller can parse those too)."""
    head = []
    lines = 0
    for block in blocks:
        head.append(block)
        lines += kernel.count_lines(as_bytes_array(block))
        if lines >= INFERENCE_LINES:
            break
    sample = head[0] if len(head) == 1 else b"".join(head)
    return infer_schema(sample), head


def parse_block(data, schema: Schema | str, *, first_line: int = 1) -> ParsedBlock:
    """Parse `data`, whole SoR lines, into a record batch of `schema`'s columns.

    Lines that are not rows or do not fit the schema are dropped and counted; line
    numbers in the report start at `first_line`.
    """
    schema = Schema.parse(schema)
    buf = as_bytes_array(data)
    if len(buf) > MAX_BLOCK_BYTES:
        raise SorError(f"a block is at most {MAX_BLOCK_BYTES} bytes; got {len(buf)}")
    codes = np.array([t.code for t in schema], np.int8)
    slots = np.zeros(len(schema), np.int64)
    per_type = [0, 0, 0, 0]
    for column, code in enumerate(codes):
        slots[column] = per_type[code]
        per_type[code] += 1
    capacity = kernel.count_lines(buf)
    ints = np.empty((per_type[kernel.INT], capacity), np.int64)
    floats = np.empty((per_type[kernel.FLOAT], capacity), np.float64)
    bools = np.empty((per_type[kernel.BOOL], capacity), np.uint8)
    valid = np.empty((len(schema), capacity), np.uint8)
    # Room for every byte of the block in each string column: untouched pages cost nothing.
    str_offsets = np.empty((per_type[kernel.STRING], capacity + 1), np.int32)
    str_data = np.empty((per_type[kernel.STRING], len(buf)), np.uint8)
    dropped = np.zeros((DROPPED_LINES_KEPT, 3), np.int64)
    rows, lines, n_dropped, slow = kernel.parse(
        buf, codes, slots, ints, floats, bools, valid, str_offsets, str_data, dropped
    )
    if len(slow):
        _convert_exactly(buf, slow, floats)
    arrays = []
    for column, column_type in enumerate(schema):
        validity = _validity_buffer(valid[column, :rows])
        slot = slots[column]
        if column_type is ColumnType.STRING:
            offsets = str_offsets[slot, : rows + 1]
            data = str_data[slot, : offsets[-1]]
            buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
            arrays.append(pa.Array.from_buffers(pa.string(), rows, buffers))
            continue
        if column_type is ColumnType.BOOL:
            values = pa.py_buffer(np.packbits(bools[slot, :rows], bitorder="little"))
        elif column_type is ColumnType.INT:
            values = pa.py_buffer(ints[slot, :rows])
        else:
            values = pa.py_buffer(floats[slot, :rows])
        arrays.append(pa.Array.from_buffers(column_type.arrow_type, rows, [validity, values]))
    report = tuple(
        DroppedLine(int(line) + first_line - 1, _REASONS[int(reason)], int(column))
        for line, reason, column in dropped[: min(n_dropped, DROPPED_LINES_KEPT)]
    )
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema.to_arrow())
    return ParsedBlock(batch, int(lines), int(n_dropped), report)


def _validity_buffer(valid: np.ndarray) -> pa.Buffer | None:
    """Arrow's validity bitmap for a 0/1 byte per value, or None when nothing is missing."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _convert_exactly(buf, slow: np.ndarray, floats: np.ndarray) -> None:
    """Convert the floats the fast path could not, with Arrow's correctly rounding parser."""
    slot, row, start, stop = slow.T
    offsets = np.zeros(len(slow) + 1, np.int64)
    np.cumsum(stop - start, out=offsets[1:])
    data = kernel.gather(buf, start, stop - start, offsets)
    texts = pa.Array.from_buffers(
        pa.large_string(), len(slow), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    floats[slot, row] = pc.cast(texts, pa.float64()).to_numpy()
