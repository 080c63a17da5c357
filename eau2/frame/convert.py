"""Bring Arrow, numpy, pandas and Python data to eau2's four column types, losslessly or
not at all; and eau2's columns to pandas, without copies where the values allow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.types as pat

from eau2.types import ColumnType

if TYPE_CHECKING:
    import pandas as pd

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
    """`table` with every column converted by `to_column`; its column names must differ."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    names = [str(name) for name in table.column_names]
    check_distinct_names(names)
    columns = [to_column(table.column(i), name) for i, name in enumerate(table.column_names)]
    return pa.Table.from_arrays(columns, names=names)


def check_distinct_names(names: Iterable) -> None:
    """`ValueError` naming the column names (as text: pandas' ``1`` and ``"1"`` are one)
    that occur more than once: a frame's columns are found by name."""
    repeated = sorted(name for name, count in Counter(map(str, names)).items() if count > 1)
    if repeated:
        which = ", ".join(map(repr, repeated))
        raise ValueError(
            f"column name{'s' if len(repeated) > 1 else ''} {which} "
            f"occur{'' if len(repeated) > 1 else 's'} more than once (names are compared as text): "
            "rename the columns first"
        )


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


def pandas_dtypes(schema: pa.Schema, missing: Container[int] | None) -> dict:
    """The pandas type of each column of an eau2 `schema`, by name: numpy's ``bool``,
    ``int64`` and ``float64`` where no value is missing, pandas' nullable ``boolean``,
    ``Int64`` and ``Float64`` for the positions in `missing` (every column when None), and
    ``string[pyarrow]`` for text."""
    import pandas as pd

    nullable = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    plain = {pa.bool_(): "bool", pa.int64(): "int64", pa.float64(): "float64"}
    dtypes = {}
    for position, field in enumerate(schema):
        if field.type == pa.string():
            dtypes[field.name] = pd.StringDtype("pyarrow")
        elif missing is None or position in missing:
            dtypes[field.name] = nullable[field.type]
        else:
            dtypes[field.name] = pd.api.types.pandas_dtype(plain[field.type])
    return dtypes


def to_pandas(table: pa.Table, dtypes: dict | None = None) -> pd.DataFrame:
    """`table` as a pandas DataFrame of `dtypes` (by column name; `pandas_dtypes` of the
    table's own missing values when None). Numbers without missing values and text share
    the table's memory."""
    import pandas as pd

    if dtypes is None:
        missing = {position for position, column in enumerate(table.columns) if column.null_count}
        dtypes = pandas_dtypes(table.schema, missing)
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        dtype = dtypes[name]
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            columns[name] = column.to_pandas(types_mapper={column.type: dtype}.get)
        elif column.null_count:
            raise ValueError(f"column {name!r} has missing values, which {dtype} cannot hold")
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, copy=False) if columns else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
