"""Write a table as SoR text that `read_sor` reads back to the same values and types."""

from __future__ import annotations

import math
from typing import TextIO

import numpy as np
import pyarrow as pa

from eau2.errors import SorError
from eau2.sor import kernel
from eau2.types import ColumnType, Schema

_ROWS_PER_PIECE = 65536
_SPACE = frozenset(" \t\n\r\v\f")


def write_sor(table: pa.Table, schema: Schema, out: TextIO) -> None:
    """Write every row of `table` (columns of `schema`'s types) to `out`, one line each.

    Values are written so that their types read back: INT 0 and 1 as ``+0`` and ``+1``
    (``0`` and ``1`` are BOOL), floats always with a ``.`` or an exponent, infinities as
    ``1e999``, strings in quotes, or bare when they hold a quote. A value SoR cannot
    hold (NaN, a string with a newline, or with both a quote and whitespace) is a
    `SorError` naming its row and column.
    """
    if table.num_columns == 0 and table.num_rows:
        raise SorError("SoR cannot hold rows without columns")
    offset = 0
    for batch in table.to_batches(max_chunksize=_ROWS_PER_PIECE):
        columns = [
            _format(batch.column(col).to_pylist(), column_type, col, offset)
            for col, column_type in enumerate(schema)
        ]
        if batch.num_rows:
            out.write("\n".join(" ".join(fields) for fields in zip(*columns, strict=True)))
            out.write("\n")
        offset += batch.num_rows


def _format(values: list, column_type: ColumnType, col: int, offset: int) -> list[str]:
    if column_type is ColumnType.BOOL:
        return ["<>" if v is None else ("<1>" if v else "<0>") for v in values]
    if column_type is ColumnType.INT:
        return ["<>" if v is None else (f"<+{v}>" if v in (0, 1) else f"<{v}>") for v in values]
    if column_type is ColumnType.FLOAT:
        return [_float_field(v, col, offset + row) for row, v in enumerate(values)]
    return [_string_field(v, col, offset + row) for row, v in enumerate(values)]


def _float_field(value: float | None, col: int, row: int) -> str:
    if value is None:
        return "<>"
    if math.isnan(value):
        raise SorError(f"row {row}, column {col}: SoR has no literal for NaN")
    if math.isinf(value):
        return "<1e999>" if value > 0 else "<-1e999>"
    return f"<{value!r}>"


def _string_field(value: str | None, col: int, row: int) -> str:
    if value is None:
        return "<>"
    if '"' not in value and "\n" not in value:
        return f'<"{value}">'
    if _bare_string_reads_back(value):
        return f"<{value}>"
    raise SorError(f"row {row}, column {col}: SoR cannot hold the string {value!r}")


def _bare_string_reads_back(value: str) -> bool:
    """Whether `value` written without quotes reads back as the same STRING."""
    if not value or value[0] == '"' or ">" in value or _SPACE.intersection(value):
        return False
    text = np.frombuffer(value.encode(), np.uint8)
    return kernel.classify_text(text) == ColumnType.STRING.code
