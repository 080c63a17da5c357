"""`read_sor`: SoR text from a path, URL or bytes into a local DataFrame."""

from __future__ import annotations

import itertools
import warnings

import pyarrow as pa

from eau2.errors import SorError, SorWarning
from eau2.frame.dataframe import DataFrame
from eau2.sor.block import (
    DROPPED_LINES_KEPT,
    DroppedLine,
    infer_schema_from_blocks,
    parse_block,
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
    storage_options: dict | None = None,
) -> DataFrame:
    """Read SoR text into a DataFrame.

    Args:
        source: a local path, an fsspec URL (``memory://``, ``s3://``, ...) or bytes.
        start: first byte of the window to read.
        length: bytes in the window (to the end of the input when None).
        schema: column types such as ``"IIS"``; inferred from the first 500 lines of the
            window when None.
        storage_options: passed to fsspec for URLs.

    Rows that do not fit are dropped: the result's `dropped_rows` counts them, its
    `dropped_lines` names the first of them, and a `SorWarning` says so.

    >>> df = read_sor(b"<0> <23> <hi>\\n<1> <12> <>\\n<1> <1>\\n")
    >>> str(df.schema), df.nrows, df.get(1, 1)
    ('BIS', 3, 12)
    """
    explicit = Schema.parse(schema) if schema is not None else None
    byte_source = open_source(source, storage_options)
    try:
        return _read(byte_source, Window.of(byte_source, start, length), explicit)
    finally:
        byte_source.close()


def _read(source: ByteSource, window: Window, explicit: Schema | None) -> DataFrame:
    blocks = line_blocks(source, window)
    if explicit is None:
        schema, head = infer_schema_from_blocks(blocks)
        blocks = itertools.chain(head, blocks)
    else:
        schema = explicit
    batches = []
    dropped_rows = 0
    dropped_lines: list[DroppedLine] = []
    first_line = 1
    for block in blocks:
        parsed = parse_block(block, schema, first_line=first_line)
        batches.append(parsed.batch)
        dropped_rows += parsed.dropped_rows
        dropped_lines.extend(parsed.dropped_lines[: DROPPED_LINES_KEPT - len(dropped_lines)])
        first_line += parsed.lines
    table = pa.Table.from_batches(batches, schema=schema.to_arrow())
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
