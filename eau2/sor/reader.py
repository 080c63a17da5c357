"""`read_sor`: SoR text from a path, URL or bytes into a local DataFrame."""

from __future__ import annotations

import itertools
import warnings

import pyarrow as pa

from eau2.errors import LineTooLong, SorError, SorWarning
from eau2.frame.dataframe import DataFrame
from eau2.sor.block import (
    DROPPED_LINES_KEPT,
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    DroppedLine,
    check_columns,
    check_columns_within,
    check_limits,
    given_schema,
    infer_schema_from_blocks,
    parse_block,
    select_schema,
)
from eau2.sor.source import ByteSource, SorSource, Window, line_blocks, open_source
from eau2.types import Schema

_DROPPED_LINES_SHOWN = 3


def read_sor(
    source: SorSource,
    *,
    start: int = 0,
    length: int | None = None,
    schema: Schema | str | None = None,
    columns: list[int | str] | None = None,
    storage_options: dict | None = None,
    max_columns: int = MAX_COLUMNS,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> DataFrame:
    """Read SoR text into a DataFrame.

    Args:
        source: a local path, an fsspec URL (``memory://``, ``s3://``, ...) or bytes.
        start: first byte of the window to read.
        length: bytes in the window (to the end of the input when None).
        schema: column types such as ``"IIS"``, of every column of a line (also with
            `columns`); inferred from the first 500 lines of the window when None.
        columns: only these columns, by position (``[0, 3]``; names such as ``"3"`` too), in
            that order; every column when None. They keep their positions as names
            (``"0"``, ``"3"``), and the rows are those of a full read: a line that does not
            fit in a column left out is dropped all the same. Each block is parsed whole,
            then only these columns are kept.
        storage_options: passed to fsspec for URLs.
        max_columns: at most this many columns (10,000 by default): a row with more fields
            among those the schema is inferred from, or a longer schema, is a `SorError`.
        max_line_bytes: at most this many bytes in a line (64 MiB by default): a longer
            line is a `SorError` naming it. Memory stays a small multiple of the block
            size (32 MiB) plus this, and of the result.

    Rows that do not fit are dropped: the result's `dropped_rows` counts them, its
    `dropped_lines` names the first of them, and a `SorWarning` says so.

    Examples:
        >>> df = read_sor(b"<0> <23> <hi>\\n<1> <12> <>\\n<1> <1>\\n")
        >>> str(df.schema), df.nrows, df.get(1, 1)
        ('BIS', 3, 12)
        >>> df = read_sor(b"<0> <23> <hi>\\n<1> <12> <>\\n<1> <1>\\n", columns=[2, 0])
        >>> str(df.schema), df.column_names, df.get(0, 0)
        ('SB', ['2', '0'], 'hi')
    """
    check_limits(max_columns=max_columns, max_line_bytes=max_line_bytes)
    explicit = given_schema(schema, max_columns)
    columns = check_columns(columns)
    byte_source = open_source(source, storage_options)
    try:
        window = Window.of(byte_source, start, length)
        return _read(byte_source, window, explicit, columns, max_columns, max_line_bytes)
    finally:
        byte_source.close()


def _read(
    source: ByteSource,
    window: Window,
    explicit: Schema | None,
    columns: tuple[int, ...] | None,
    max_columns: int,
    max_line_bytes: int,
) -> DataFrame:
    blocks = line_blocks(source, window, max_line_bytes=max_line_bytes)
    if explicit is None:
        try:
            schema, head = infer_schema_from_blocks(blocks, max_columns=max_columns)
        except LineTooLong:
            raise
        except SorError as error:
            raise SorError(f"{source.name}: {error}") from None
        if head is None:  # the lines seen were too long to keep: read them again
            blocks = line_blocks(source, window, max_line_bytes=max_line_bytes)
        else:
            blocks = itertools.chain(head, blocks)
    else:
        schema = explicit
    check_columns_within(columns, schema, source.name)
    batches = []
    dropped_rows = 0
    dropped_lines: list[DroppedLine] = []
    first_line = 1
    try:
        for block in blocks:
            parsed = parse_block(
                block,
                schema,
                first_line=first_line,
                columns=columns,
                max_columns=max_columns,
                max_line_bytes=max_line_bytes,
            )
            batches.append(parsed.batch)
            dropped_rows += parsed.dropped_rows
            dropped_lines.extend(parsed.dropped_lines[: DROPPED_LINES_KEPT - len(dropped_lines)])
            first_line += parsed.lines
    except LineTooLong as error:
        raise error.at_line(first_line).within(source.name) from None
    except SorError as error:
        raise SorError(f"{source.name}: {error}") from None
    kept, names = select_schema(schema, columns)
    table = pa.Table.from_batches(batches, schema=kept.to_arrow(names))
    if explicit is not None:
        check_schema_fits(source.name, explicit, table.num_rows, dropped_lines)
    if dropped_rows:
        warnings.warn(
            SorWarning(
                f"{source.name}: {dropped_rows} line(s) dropped, not rows of schema {str(schema)!r} "
                f"({_first(dropped_lines)})"
            ),
            stacklevel=3,
        )
    return DataFrame(table, dropped_rows=dropped_rows, dropped_lines=tuple(dropped_lines))


def check_schema_fits(where: str, schema: Schema, rows: int, dropped_lines) -> None:
    """`SorError` if an explicit `schema` fits no line of the input (every line dropped as a
    misfit): the rule both readers, local and parallel, follow."""
    if rows == 0 and any(dropped.is_schema_mismatch for dropped in dropped_lines):
        raise SorError(
            f"{where}: schema {str(schema)!r} does not match: no line is a row of it "
            f"({_first(dropped_lines)})"
        )


def _first(dropped_lines: list[DroppedLine]) -> str:
    return "; ".join(str(line) for line in dropped_lines[:_DROPPED_LINES_SHOWN])
