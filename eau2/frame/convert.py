"""Bring Arrow, numpy, pandas and Python data to eau2's four column types, losslessly or not at all."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pat

from eau2.types import ColumnType

_EAU2_TYPES = {t.arrow_type for t in ColumnType}


def to_column(values, name: str = "0") -> pa.Array | pa.ChunkedArray:
    """An Arrow column of an eau2 type holding `values` (a sequence, numpy or Arrow array).

    Integers of any width become INT, floats FLOAT, text STRING, all-missing columns BOOL.
    Anything else, or a value that would change on the way (a uint64 past int64), is a
    `TypeError` naming the column.
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        try:
            values = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise TypeError(f"column {name!r}: values of mixed or unsupported types ({error})") from None
    source = values.type
    if source in _EAU2_TYPES:
        return values
    target = _target_type(source)
    if target is None:
        raise TypeError(
            f"column {name!r} has type {source}; eau2 stores BOOL, INT, FLOAT and STRING "
            "(Arrow bool, integers, floats and strings)"
        )
    try:
        return values.cast(target)
    except pa.ArrowInvalid as error:
        raise TypeError(f"column {name!r}: {source} values do not fit {target} ({error})") from None


def to_table(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """`table` with every column converted by `to_column`."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    columns = [to_column(table.column(i), name) for i, name in enumerate(table.column_names)]
    return pa.Table.from_arrays(columns, names=[str(name) for name in table.column_names])


def _target_type(source: pa.DataType) -> pa.DataType | None:
    if pat.is_null(source):
        return pa.bool_()
    if pat.is_integer(source):
        return pa.int64()
    if pat.is_floating(source):
        return pa.float64()
    if pat.is_large_string(source) or pat.is_string_view(source):
        return pa.string()
    if pat.is_dictionary(source):
        return _target_type(source.value_type)
    return None
