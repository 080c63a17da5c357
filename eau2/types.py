"""The four SoR column types and a frame's schema."""

from __future__ import annotations

import enum

import pyarrow as pa


class ColumnType(enum.Enum):
    """A column's type, ordered from least to most general: BOOL < INT < FLOAT < STRING."""

    BOOL = "B"
    INT = "I"
    FLOAT = "F"
    STRING = "S"

    @property
    def code(self) -> int:
        """The type's rank in the generality order (0 for BOOL ... 3 for STRING)."""
        return _ORDER.index(self)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type that holds values of this column type."""
        return _ARROW_TYPES[self]

    @classmethod
    def from_code(cls, code: int) -> ColumnType:
        """The type of the given rank."""
        return _ORDER[code]

    @classmethod
    def from_arrow(cls, arrow_type: pa.DataType) -> ColumnType:
        """The column type stored as `arrow_type`; a `TypeError` for any other Arrow type."""
        for column_type, candidate in _ARROW_TYPES.items():
            if arrow_type == candidate:
                return column_type
        raise TypeError(f"Arrow type {arrow_type} is not one of eau2's: bool, int64, double, string")

    def __str__(self) -> str:
        return self.name


_ORDER = (ColumnType.BOOL, ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING)
_ARROW_TYPES = {
    ColumnType.BOOL: pa.bool_(),
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.STRING: pa.string(),
}


class Schema(tuple):
    """The column types of a frame, in order; `str(schema)` is their letters, e.g. ``"BIFS"``.

    Examples:
        >>> str(Schema.parse("bifs"))
        'BIFS'
        >>> Schema.parse("IS") == "IS"
        True
    """

    def __new__(cls, types=()) -> Schema:
        types = tuple(types)
        for column_type in types:
            if not isinstance(column_type, ColumnType):
                raise TypeError(f"a schema holds ColumnType values, not {column_type!r}")
        return super().__new__(cls, types)

    @classmethod
    def parse(cls, letters: str | Schema) -> Schema:
        """A schema from type letters (B, I, F, S; any case)."""
        if isinstance(letters, Schema):
            return letters
        if not isinstance(letters, str):
            raise TypeError(f"a schema is a string of the letters B, I, F, S, not {letters!r}")
        types = []
        for position, letter in enumerate(letters.upper()):
            try:
                types.append(ColumnType(letter))
            except ValueError:
                raise ValueError(
                    f"schema {letters!r}: {letter!r} at position {position} is not a type letter "
                    "(B, I, F or S)"
                ) from None
        return cls(types)

    @classmethod
    def from_arrow(cls, schema: pa.Schema) -> Schema:
        """The schema of an Arrow schema whose fields all have eau2 types."""
        return cls(ColumnType.from_arrow(field.type) for field in schema)

    def to_arrow(self, names: list[str] | None = None) -> pa.Schema:
        """An Arrow schema with these types; columns are named ``"0"``, ``"1"``, ... by default."""
        names = names or [str(i) for i in range(len(self))]
        return pa.schema([pa.field(name, t.arrow_type) for name, t in zip(names, self, strict=True)])

    def __str__(self) -> str:
        return "".join(t.value for t in self)

    def __repr__(self) -> str:
        return f"Schema({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other.upper()
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__
