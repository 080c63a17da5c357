"""The local DataFrame: immutable, typed, Arrow-backed, with the original eau2's API in Python form."""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pyarrow as pa

from eau2.errors import MissingValueError
from eau2.frame.convert import check_distinct_names, to_column, to_pandas, to_table
from eau2.frame.row import Row, Rower, Writer
from eau2.types import ColumnType, Schema

if TYPE_CHECKING:
    import pandas as pd

    from eau2.sor.block import DroppedLine


def _storable(build):
    """Let a constructor also take ``(key, kv, ...)`` first, as the original eau2's did
    (``DataFrame::fromArray(&key, &kv, n, vals)``): the frame is stored under `key` and the
    stored (distributed) frame is returned."""

    @functools.wraps(build)
    def construct(cls, *args, **kwargs):
        if len(args) >= 2 and callable(getattr(args[1], "put", None)) and hasattr(args[0], "home"):
            key, kv, *rest = args
            kv.put(key, build(cls, *rest, **kwargs))
            return kv.get(key)
        return build(cls, *args, **kwargs)

    return classmethod(construct)


class DataFrame:
    """An immutable table whose columns are BOOL, INT, FLOAT or STRING, over Arrow data.

    Build one with `read_sor` or the ``from_*`` constructors. Cells are addressed
    ``(column, row)`` as in the original eau2; a missing value reads as None.

    Examples:
        >>> df = DataFrame.from_array([1.5, 2.5, None])
        >>> str(df.schema), df.nrows, df.get(0, 1), df.is_missing(0, 2)
        ('F', 3, 2.5, True)
    """

    __slots__ = ("_dropped_lines", "_dropped_rows", "_schema", "_table")

    def __init__(self, table: pa.Table, *, dropped_rows: int = 0, dropped_lines: tuple = ()):
        """Wrap `table`, whose columns must already have eau2's Arrow types (see `from_arrow`)."""
        self._schema = Schema.from_arrow(table.schema)
        self._table = table
        self._dropped_rows = dropped_rows
        self._dropped_lines = dropped_lines

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def from_arrow(cls, table: pa.Table | pa.RecordBatch) -> DataFrame:
        """A frame of an Arrow table; integer, float and string columns of any width are widened."""
        return cls(to_table(table))

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame) -> DataFrame:
        """A frame of a pandas DataFrame's columns (the index is dropped)."""
        check_distinct_names(frame.columns)
        return cls.from_arrow(pa.Table.from_pandas(frame, preserve_index=False))

    @_storable
    def from_array(cls, values) -> DataFrame:
        """A one-column frame of `values`: a sequence, numpy array or Arrow array.

        Every ``from_*`` constructor also takes ``(key, kv, ...)`` first, as in the original
        eau2: ``DataFrame.from_array(Key("triv"), kv, values)`` stores the frame under the key
        and returns the stored frame.
        """
        return cls(pa.table({"0": to_column(values)}))

    @_storable
    def from_scalar(cls, value) -> DataFrame:
        """A one-row, one-column frame holding `value`."""
        return cls.from_array([value])

    @_storable
    def from_visitor(cls, schema: Schema | str, writer: Writer) -> DataFrame:
        """A frame of the rows `writer` fills, one `visit` each, until `writer.done()`."""
        schema = Schema.parse(schema)
        columns: list[list] = [[] for _ in schema]
        row = Row(schema)
        while not writer.done():
            row._clear()
            writer.visit(row)
            for column, value in zip(columns, row._values, strict=True):
                column.append(value)
            row.index += 1
        arrays = [pa.array(values, type=t.arrow_type) for values, t in zip(columns, schema, strict=True)]
        return cls(pa.Table.from_arrays(arrays, schema=schema.to_arrow()))

    @_storable
    def from_sor(cls, source, **options) -> DataFrame:
        """A frame read from SoR (see `eau2.read_sor` for `source` and `options`)."""
        from eau2.sor.reader import read_sor

        return read_sor(source, **options)

    # -- shape and cells ----------------------------------------------------------------

    @property
    def nrows(self) -> int:
        return self._table.num_rows

    @property
    def ncols(self) -> int:
        return self._table.num_columns

    @property
    def schema(self) -> Schema:
        """The column types; ``str(df.schema)`` is their letters, e.g. ``"BIFS"``."""
        return self._schema

    @property
    def column_names(self) -> list[str]:
        return self._table.column_names

    @property
    def dropped_rows(self) -> int:
        """How many lines of the SoR input were not rows of this frame (0 for other frames)."""
        return self._dropped_rows

    @property
    def dropped_lines(self) -> tuple[DroppedLine, ...]:
        """The first dropped lines of the SoR input: line number, reason, column."""
        return self._dropped_lines

    def get(self, col: int, row: int) -> Any:
        """The value at (`col`, `row`) as a Python object, None when missing."""
        self._check(col, row)
        return self._table.column(col)[row].as_py()

    def is_missing(self, col: int, row: int) -> bool:
        self._check(col, row)
        return not self._table.column(col)[row].is_valid

    def get_bool(self, col: int, row: int) -> bool:
        return self._typed(col, row, ColumnType.BOOL)

    def get_int(self, col: int, row: int) -> int:
        return self._typed(col, row, ColumnType.INT)

    def get_float(self, col: int, row: int) -> float:
        return self._typed(col, row, ColumnType.FLOAT)

    def get_string(self, col: int, row: int) -> str:
        return self._typed(col, row, ColumnType.STRING)

    # -- conversion ----------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The data as a `pyarrow.Table` (no copy)."""
        return self._table

    def to_pandas(self) -> pd.DataFrame:
        """A pandas DataFrame, as `to_dask()` gives: numpy ``bool``, ``int64`` and ``float64``
        columns where no value is missing, pandas' nullable ``boolean``, ``Int64`` and
        ``Float64`` where one is (``pd.NA``), ``string[pyarrow]`` for text. Numbers without
        missing values and text share the frame's memory."""
        return to_pandas(self._table)

    def to_sor(self, file: str | os.PathLike | TextIO | None = None) -> str | None:
        """The frame as SoR text: returned when `file` is None, else written to the path or stream.

        `read_sor` reads it back to an equal frame, given ``schema=str(df.schema)``
        (inference also gets it right when every column has a value in the first 500 rows).
        """
        from eau2.sor.writer import write_sor

        if file is None:
            out = io.StringIO()
            write_sor(self._table, self._schema, out)
            return out.getvalue()
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w", encoding="utf-8", newline="\n") as out:
                write_sor(self._table, self._schema, out)
        else:
            write_sor(self._table, self._schema, file)
        return None

    def print(self, file: TextIO | None = None) -> None:
        """Write the frame as SoR to `file` (standard output by default)."""
        self.to_sor(file or sys.stdout)

    # -- visitors and batches ----------------------------------------------------------

    def map(self, rower: Rower) -> Rower:
        """Call ``rower.accept(row)`` on every row, in order; returns the rower."""
        return self._visit(rower)

    def filter(self, rower: Rower) -> DataFrame:
        """A new frame of the rows for which ``rower.accept(row)`` is true."""
        return self._filtered(rower)

    def pmap(self, rower: Rower, threads: int | None = None) -> Rower:
        """`map` in parallel: clones of `rower` visit row ranges in threads, then join it in row order."""
        threads = max(1, min(threads or os.cpu_count() or 1, self.nrows or 1))
        bounds = np.linspace(0, self.nrows, threads + 1).astype(int)
        rowers = [rower] + [rower.clone() for _ in range(threads - 1)]

        def visit(worker: Rower, start: int, stop: int) -> None:
            for row in self._rows(start, stop):
                worker.accept(row)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(visit, rowers, bounds[:-1], bounds[1:]))
        for other in rowers[1:]:
            rower.join(other)
        return rower

    def map_batches(self, fn: Callable[[pa.RecordBatch], Any]) -> list:
        """``fn(batch)`` for each Arrow record batch of the frame, in order (no per-row Python)."""
        return [fn(batch) for batch in self._table.to_batches()]

    # -- comparison and display --------------------------------------------------------

    def equals(self, other: DataFrame) -> bool:
        """Whether both frames hold the same types and values (column names and chunking aside)."""
        if not isinstance(other, DataFrame) or self._schema != other._schema or self.nrows != other.nrows:
            return False
        return all(self._table.column(i).equals(other._table.column(i)) for i in range(self.ncols))

    __eq__ = equals
    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return self.nrows

    def __repr__(self) -> str:
        return f"<eau2.DataFrame {self.nrows} rows, schema {str(self._schema)!r}>"

    # -- helpers -----------------------------------------------------------------------

    def _visit(self, rower: Rower, first_index: int = 0) -> Rower:
        for row in self._rows(0, self.nrows, first_index):
            rower.accept(row)
        return rower

    def _filtered(self, rower: Rower, first_index: int = 0) -> DataFrame:
        rows = self._rows(0, self.nrows, first_index)
        keep = np.fromiter((bool(rower.accept(row)) for row in rows), bool, self.nrows)
        return DataFrame(self._table.filter(pa.array(keep, pa.bool_())))

    def _rows(self, start: int, stop: int, first_index: int = 0) -> Iterator[Row]:
        """One reused `Row` per row in ``[start, stop)``, numbered from `first_index` + `start`."""
        row = Row(self._schema)
        index = first_index + start
        for batch in self._table.slice(start, stop - start).to_batches():
            for values in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                row._load(values, index)
                index += 1
                yield row
        if self.ncols == 0:
            for index in range(first_index + start, first_index + stop):
                row._load((), index)
                yield row

    def _check(self, col: int, row: int) -> None:
        if not 0 <= col < self.ncols:
            raise IndexError(f"column {col} is out of range: the frame has {self.ncols} columns")
        if not 0 <= row < self.nrows:
            raise IndexError(f"row {row} is out of range: the frame has {self.nrows} rows")

    def _typed(self, col: int, row: int, expected: ColumnType):
        self._check(col, row)
        actual = self._schema[col]
        if actual is not expected:
            raise TypeError(f"column {col} is {actual}, not {expected}")
        value = self._table.column(col)[row].as_py()
        if value is None:
            raise MissingValueError(f"row {row}, column {col}: the value is missing")
        return value
