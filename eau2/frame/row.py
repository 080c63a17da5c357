"""Rows and the visitors of the original eau2: `Rower`, `Reader` and `Writer`."""

from __future__ import annotations

import copy
import numbers

import numpy as np

from eau2.errors import MissingValueError
from eau2.types import ColumnType, Schema

_ACCEPTED = {
    ColumnType.BOOL: ((bool, np.bool_), bool),
    ColumnType.INT: (numbers.Integral, int),
    ColumnType.FLOAT: (numbers.Real, float),
    ColumnType.STRING: (str, str),
}


class Row:
    """One row of a frame: typed values by column, or missing ones. Visitors read it, writers fill it."""

    __slots__ = ("_schema", "_values", "index")

    def __init__(self, schema: Schema | str):
        self._schema = Schema.parse(schema)
        self._values: list | tuple = [None] * len(self._schema)
        self.index = 0
        """The row's index in its frame."""

    @property
    def schema(self) -> Schema:
        return self._schema

    def width(self) -> int:
        """Number of columns."""
        return len(self._schema)

    def col_type(self, col: int) -> ColumnType:
        return self._schema[col]

    def get(self, col: int):
        """The value in column `col` as a Python object, None when missing."""
        return self._values[col]

    def is_missing(self, col: int) -> bool:
        return self._values[col] is None

    def get_bool(self, col: int) -> bool:
        return self._typed(col, ColumnType.BOOL)

    def get_int(self, col: int) -> int:
        return self._typed(col, ColumnType.INT)

    def get_float(self, col: int) -> float:
        return self._typed(col, ColumnType.FLOAT)

    def get_string(self, col: int) -> str:
        return self._typed(col, ColumnType.STRING)

    def set(self, col: int, value) -> None:
        """Set column `col` to `value` (None for missing); the value must suit the column's type."""
        if value is not None:
            column_type = self._schema[col]
            accepted, convert = _ACCEPTED[column_type]
            is_bool = isinstance(value, (bool, np.bool_))
            if not isinstance(value, accepted) or (is_bool and column_type is not ColumnType.BOOL):
                raise TypeError(f"column {col} is {column_type}; {value!r} is not a {column_type} value")
            value = convert(value)
        self._values[col] = value

    set_bool = set_int = set_float = set_string = set

    def set_missing(self, col: int) -> None:
        self._values[col] = None

    def _typed(self, col: int, expected: ColumnType):
        actual = self._schema[col]
        if actual is not expected:
            raise TypeError(f"column {col} is {actual}, not {expected}")
        value = self._values[col]
        if value is None:
            raise MissingValueError(f"row {self.index}, column {col}: the value is missing")
        return value

    def _load(self, values: tuple, index: int) -> None:
        self._values = values
        self.index = index

    def _clear(self) -> None:
        self._values = [None] * len(self._schema)

    def __repr__(self) -> str:
        return f"Row({self.index}: {list(self._values)!r})"


class Rower:
    """Visits rows: `accept` returns True to keep a row (for `filter`).

    `pmap` runs `clone()` copies of a rower over row ranges in threads, then `join`s each
    copy into the original, in row order. `clone` must return a rower that has seen no
    rows; the default deep-copies, which is right for a rower not yet used.
    """

    def accept(self, row: Row) -> bool:
        raise NotImplementedError

    def clone(self) -> Rower:
        return copy.deepcopy(self)

    def join(self, other: Rower) -> None:
        """Merge the results of a clone that visited later rows into this rower."""


class Reader(Rower):
    """A rower written as the original's reading visitor: override `visit`."""

    def visit(self, row: Row) -> bool:
        raise NotImplementedError

    def accept(self, row: Row) -> bool:
        return self.visit(row)


class Writer:
    """Fills rows for `DataFrame.from_visitor`: `visit` fills one row, until `done()`."""

    def visit(self, row: Row) -> None:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError
