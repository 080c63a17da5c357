"""The reusable pieces of SoR reading: infer a schema from a sample; parse one block of whole lines.

Both take any bytes-like object (bytes, memoryview, numpy ``uint8`` array, Arrow buffer)
without copying it. The parallel reader runs `parse_block` on each block of a file.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eau2.errors import LineTooLong, SorError
from eau2.sor import kernel
from eau2.types import ColumnType, Schema

INFERENCE_LINES = 500
"""Schema inference looks at this many lines, per the SoR spec."""

MAX_BLOCK_BYTES = (1 << 31) - 1
"""A block's strings must fit Arrow's 32-bit offsets."""

MAX_COLUMNS = 10_000
"""Default limit on the columns of a frame read from SoR (`max_columns=`)."""

MAX_LINE_BYTES = 64 << 20
"""Default limit on the bytes of one SoR line, its newline not counted (`max_line_bytes=`)."""

HEAD_BYTES = 64 << 20
"""Schema inference keeps at most this many bytes of the blocks it read, for the parse."""

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
    """One parsed block: its rows (of the columns asked for), how many lines it had, and
    the lines that were dropped."""

    batch: pa.RecordBatch
    lines: int
    dropped_rows: int
    dropped_lines: tuple[DroppedLine, ...]


def as_bytes_array(data) -> np.ndarray:
    """A zero-copy ``uint8`` view of any bytes-like object."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return data
    return np.frombuffer(data, dtype=np.uint8)


def check_limits(**limits: int) -> None:
    """`ValueError` unless every limit (``max_columns=``, ``max_line_bytes=``) is a whole number >= 1."""
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")


def check_width(schema: Schema, max_columns: int) -> Schema:
    """`schema`, if it has at most `max_columns` columns; else `SorError`."""
    if len(schema) > max_columns:
        raise SorError(
            f"schema has {len(schema):,} columns, more than max_columns ({max_columns:,}); "
            "pass a larger max_columns= to read it"
        )
    return schema


def given_schema(schema: Schema | str | None, max_columns: int) -> Schema | None:
    """The schema a reader's caller gave, checked (None: none given, to be inferred): one
    to `max_columns` columns, else `SorError`."""
    if schema is None:
        return None
    parsed = check_width(Schema.parse(schema), max_columns)
    if not len(parsed):
        raise SorError("schema '' has no columns: give a letter (B, I, F or S) a column, or None to infer it")
    return parsed


def check_columns(columns) -> tuple[int, ...] | None:
    """The column positions `columns` names, checked (None: every column). A position is
    an int or the column's name, its position as a string (``3`` or ``"3"``).

    `ValueError` for an empty list, a duplicate or a negative position, or a name that is
    not a position; `TypeError` for anything else than a list of them. Whether the
    positions are within the rows is known once the schema is: see `check_columns_within`.

    Examples:
        >>> check_columns([3, "1"])
        (3, 1)
    """
    if columns is None:
        return None
    if isinstance(columns, (str, bytes, int)) or not hasattr(columns, "__iter__"):
        raise TypeError(f"columns= is a list of column positions such as [0, 3], not {columns!r}")
    positions = tuple(_position(column) for column in columns)
    if not positions:
        raise ValueError("columns= is empty: name at least one column position, or pass None for all")
    negative = sorted({position for position in positions if position < 0})
    if negative:
        raise ValueError(f"columns= names {_listed(negative)}: positions are numbered from 0")
    repeated = sorted(position for position, times in Counter(positions).items() if times > 1)
    if repeated:
        raise ValueError(f"columns= names {_listed(repeated)} more than once")
    return positions


def check_columns_within(columns: tuple[int, ...] | None, schema: Schema, where: str = "") -> None:
    """`SorError` naming `where` (a file) and its column count unless every position of
    `columns` is one of `schema`'s columns."""
    outside = sorted(position for position in columns or () if position >= len(schema))
    if outside and not len(schema):
        raise SorError(
            f"{where or 'the input'} has no rows (it is empty, or none of its first {INFERENCE_LINES} "
            f"lines is one), so no {_listed(outside)} to keep"
        )
    if outside:
        raise SorError(
            f"{where + ': ' if where else ''}columns= names {_listed(outside)}, but the rows have "
            f"{len(schema)} columns (0 to {len(schema) - 1}), of schema {str(schema)!r}"
        )


def select_schema(schema: Schema, columns: tuple[int, ...] | None) -> tuple[Schema, list[str]]:
    """The schema and column names of the frame `columns` of `schema` make: the names are
    the positions in the line (selecting 1 and 3 gives columns ``"1"`` and ``"3"``)."""
    positions = range(len(schema)) if columns is None else columns
    return Schema(schema[position] for position in positions), [str(position) for position in positions]


def infer_schema(sample, max_lines: int = INFERENCE_LINES, *, max_columns: int = MAX_COLUMNS) -> Schema:
    """The schema of the rows among the first `max_lines` lines of `sample`; `SorError`
    if one has more than `max_columns` fields.

    Examples:
        >>> str(infer_schema(b"<0> <23> <hi>\\n<1> <12> <>\\n<1> <1>\\n"))
        'BIS'
    """
    check_limits(max_columns=max_columns)
    codes, _, wide = kernel.infer_types(as_bytes_array(sample), max_lines, max_columns)
    if wide:
        raise _too_wide(wide, max_columns)
    return _schema_of(codes)


def infer_schema_from_blocks(
    blocks, *, max_columns: int = MAX_COLUMNS, keep_bytes: int = HEAD_BYTES
) -> tuple[Schema, list | None]:
    """The schema of the first lines of an iterator of whole-line blocks, and the blocks it
    took from the iterator to see them, so the caller can parse those too; None instead
    when they passed `keep_bytes` (long lines) and were let go: the caller reads them again.

    A line longer than the source's limit (`LineTooLong` from the iterator) is named by
    its line number; a row with more than `max_columns` fields is a `SorError`.
    """
    check_limits(max_columns=max_columns)
    codes = np.empty(0, np.int8)
    head: list | None = []
    kept = 0
    lines = 0
    iterator = iter(blocks)
    while lines < INFERENCE_LINES:
        try:
            block = next(iterator, None)
        except LineTooLong as error:
            raise error.at_line(lines + 1) from None
        if block is None:
            break
        buf = as_bytes_array(block)
        found, read, wide = kernel.infer_types(buf, INFERENCE_LINES - lines, max_columns)
        if wide:
            raise _too_wide(lines + wide, max_columns)
        codes = _merge(codes, found)
        lines += read
        if head is not None:
            head.append(block)
            kept += len(buf)
            head = head if kept <= keep_bytes else None
    return _schema_of(codes), head


def parse_block(
    data,
    schema: Schema | str,
    *,
    first_line: int = 1,
    first_byte: int | None = None,
    columns: list[int | str] | None = None,
    max_columns: int = MAX_COLUMNS,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ParsedBlock:
    """Parse `data`, whole SoR lines, into a record batch of `schema`'s columns.

    `columns` (positions such as ``[0, 3]``; every column when None) keeps only those
    columns, in that order, named by their positions (``"0"``, ``"3"``). `schema` is still
    the schema of the whole line, and which lines are rows is decided on the whole line:
    a line dropped for a column left out is dropped all the same.

    Lines that are not rows or do not fit the schema are dropped and counted; line
    numbers in the report start at `first_line`. A line longer than `max_line_bytes` is a
    `LineTooLong` error naming it by its number or, when `first_byte` (the offset of
    `data` in its file) is given, by the byte where it starts; a schema of more than
    `max_columns` columns is a `SorError`. Memory is a small multiple of the block's size
    and of the result's, whatever the shape of the lines.
    """
    check_limits(max_columns=max_columns, max_line_bytes=max_line_bytes)
    schema = check_width(Schema.parse(schema), max_columns)
    columns = check_columns(columns)
    check_columns_within(columns, schema)
    buf = as_bytes_array(data)
    if len(buf) > MAX_BLOCK_BYTES:
        raise SorError(f"a block is at most {MAX_BLOCK_BYTES} bytes; got {len(buf)}")
    codes = np.array([t.code for t in schema], np.int8)
    slots = np.zeros(len(schema), np.int64)
    per_type = [0, 0, 0, 0]
    for column, code in enumerate(codes):
        slots[column] = per_type[code]
        per_type[code] += 1
    # A row of every column takes at least 2 bytes a field: more rows than that come only
    # from short rows padded with missing values, and the arrays grow for them.
    capacity = min(kernel.count_lines(buf), len(buf) // (2 * max(1, len(schema))) + 1)
    arrays = _RowArrays(per_type, len(schema), capacity)
    # Every string of the block, in the order read: never more than the block's bytes.
    arena = np.empty(len(buf) if per_type[kernel.STRING] else 0, np.uint8)
    dropped = np.zeros((DROPPED_LINES_KEPT, 3), np.int64)
    slow = np.empty((64, 4), np.int64)
    position = rows = lines = n_dropped = n_slow = 0
    while True:
        stop, position, rows, lines, n_dropped, slow, n_slow = kernel.parse(
            buf,
            position,
            rows,
            lines,
            n_dropped,
            slow,
            n_slow,
            codes,
            slots,
            *arrays.buffers(),
            arena,
            dropped,
            max_line_bytes,
        )
        if stop == kernel.DONE:
            break
        if stop == kernel.LINE_TOO_LONG:
            if first_byte is None:
                raise LineTooLong(max_line_bytes, line=first_line + lines - 1)
            raise LineTooLong(max_line_bytes, offset=first_byte + position)
        arrays.grow(rows)
    slow = slow[:n_slow]
    if len(slow):
        _convert_exactly(buf, slow, arrays.floats)
    batch = arrays.batch(arena, schema, slots, rows, columns)
    report = tuple(
        DroppedLine(int(line) + first_line - 1, _REASONS[int(reason)], int(column))
        for line, reason, column in dropped[: min(n_dropped, DROPPED_LINES_KEPT)]
    )
    return ParsedBlock(batch, int(lines), int(n_dropped), report)


class _RowArrays:
    """The arrays `kernel.parse` writes rows into, by type, with room for `capacity` rows."""

    def __init__(self, per_type: list[int], columns: int, capacity: int):
        self.ints = np.empty((per_type[kernel.INT], capacity), np.int64)
        self.floats = np.empty((per_type[kernel.FLOAT], capacity), np.float64)
        self.bools = np.empty((per_type[kernel.BOOL], capacity), np.uint8)
        self.valid = np.empty((columns, capacity), np.uint8)
        self.str_offsets = np.empty((per_type[kernel.STRING], capacity + 1), np.int32)
        self.str_offsets[:, 0] = 0
        self.str_starts = np.empty((per_type[kernel.STRING], capacity), np.int32)

    def buffers(self) -> tuple:
        return self.ints, self.floats, self.bools, self.valid, self.str_offsets, self.str_starts

    def grow(self, rows: int) -> None:
        """Twice the room, keeping the first `rows` rows."""
        for name in ("ints", "floats", "bools", "valid", "str_offsets", "str_starts"):
            old = getattr(self, name)
            new = np.empty((old.shape[0], 2 * old.shape[1]), old.dtype)
            kept = rows + 1 if name == "str_offsets" else rows
            new[:, :kept] = old[:, :kept]
            setattr(self, name, new)

    def batch(
        self, arena: np.ndarray, schema: Schema, slots, rows: int, columns: tuple[int, ...] | None = None
    ) -> pa.RecordBatch:
        """The first `rows` rows as a record batch of `schema`'s `columns` (all when None),
        its strings from `arena`."""
        positions = range(len(schema)) if columns is None else columns
        strings = self._strings(
            arena, sorted({slots[c] for c in positions if schema[c] is ColumnType.STRING}), rows
        )
        values = {column: self._values(schema[column], slots[column], strings, rows) for column in positions}
        own = _Keep(values.values()) if len(positions) < len(schema) else _as_is
        arrays = []
        for column in positions:
            validity = _validity_buffer(self.valid[column, :rows])
            buffers = [validity, *(pa.py_buffer(own(view)) for view in values[column])]
            arrays.append(pa.Array.from_buffers(schema[column].arrow_type, rows, buffers))
        kept, names = select_schema(schema, columns)
        return pa.RecordBatch.from_arrays(arrays, schema=kept.to_arrow(names))

    def _strings(self, arena: np.ndarray, slots: list[int], rows: int) -> dict[int, np.ndarray]:
        """The bytes of the string columns of `slots` (sorted), by slot, out of `arena`: only
        those columns' are gathered."""
        if len(self.str_offsets) == 1:  # one string column: the arena holds it in order
            return {0: arena[: self.str_offsets[0, rows]]}
        if not slots:
            return {}
        if len(slots) == len(self.str_offsets):
            offsets, starts = self.str_offsets, self.str_starts
        else:
            offsets, starts = self.str_offsets[slots], self.str_starts[slots]
        data, bases = kernel.gather_strings(arena, offsets, starts, rows)
        return {slot: data[bases[k] : bases[k + 1]] for k, slot in enumerate(slots)}

    def _values(self, column_type: ColumnType, slot: int, strings: dict, rows: int) -> list[np.ndarray]:
        """A column's Arrow buffers after its validity: text views into the arrays the string
        columns share; numbers in memory of their own (see `_alone`), as a BOOL column's bits are."""
        if column_type is ColumnType.STRING:
            return [self.str_offsets[slot, : rows + 1], strings[slot]]
        if column_type is ColumnType.BOOL:
            return [np.packbits(self.bools[slot, :rows], bitorder="little")]
        if column_type is ColumnType.INT:
            return [_alone(self.ints, slot, rows)]
        return [_alone(self.floats, slot, rows)]


class _Keep:
    """With some columns left out: copies of the kept columns' views into arrays they use
    clearly less than whole (the rest being columns left out, or room never filled), so
    the batch does not hold what it does not show."""

    def __init__(self, columns):
        self.used: dict[int, int] = {}
        for view in (view for views in columns for view in views):
            if view.base is not None:
                self.used[id(view.base)] = self.used.get(id(view.base), 0) + view.nbytes

    def __call__(self, view: np.ndarray) -> np.ndarray:
        base = view.base
        if base is not None and base.nbytes > 1.25 * self.used[id(base)] + 65536:
            return view.copy()
        return view


def _alone(arrays: np.ndarray, slot: int, rows: int) -> np.ndarray:
    """The first `rows` values of row `slot` of `arrays` (the numbers of the columns of one
    type), in memory of their own where other columns share `arrays` or where it has
    clearly more room than rows (lines dropped): a column left viewing them would keep
    them all alive after it alone is replaced (a dask view's joined column takes the place
    of a stored chunk's, see `NodeStore.share`) or dropped. While the copies are made, a
    block's numbers take twice their memory."""
    view = arrays[slot, :rows]
    return view.copy() if len(arrays) > 1 or arrays.shape[1] > 1.25 * rows + 8192 else view


def _as_is(view: np.ndarray) -> np.ndarray:
    return view


def _listed(positions: list[int]) -> str:
    return f"column {positions[0]}" if len(positions) == 1 else f"columns {', '.join(map(str, positions))}"


def _position(column) -> int:
    """A column position from an int or a name such as ``"3"``."""
    if isinstance(column, str):
        if not re.fullmatch(r"[+-]?[0-9]+", column.strip()):
            raise ValueError(
                f"columns= names {column!r}, which is not a column: an SoR frame's columns are "
                "named by their positions, '0', '1', ..."
            )
        return int(column)
    if isinstance(column, bool):
        raise TypeError(f"columns= holds column positions (ints), not {column!r}")
    try:
        return operator.index(column)
    except TypeError:
        raise TypeError(f"columns= holds column positions (ints), not {column!r}") from None


def _schema_of(codes: np.ndarray) -> Schema:
    """The schema of inferred type codes: a column with no value is BOOL."""
    return Schema(ColumnType.from_code(max(int(code), kernel.BOOL)) for code in codes)


def _merge(codes: np.ndarray, more: np.ndarray) -> np.ndarray:
    """The column types of two runs of lines together: the more general type of each."""
    if len(more) > len(codes):
        codes, more = more, codes
    merged = codes.copy()
    np.maximum(merged[: len(more)], more, out=merged[: len(more)])
    return merged


def _too_wide(line: int, max_columns: int) -> SorError:
    return SorError(
        f"line {line} has more than max_columns ({max_columns:,}) fields; "
        "pass a larger max_columns= to read it"
    )


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
