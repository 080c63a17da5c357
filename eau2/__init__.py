"""eau2: a distributed, read-only, columnar key-value store for dataframes, on Dask.

This package is the core: SoR reading, the local DataFrame and its visitors. It
imports without Dask.
"""

from eau2.errors import Eau2Error, MissingValueError, SorError, SorWarning
from eau2.frame.dataframe import DataFrame
from eau2.frame.row import Reader, Row, Rower, Writer
from eau2.sor.block import DroppedLine, infer_schema, parse_block
from eau2.sor.reader import read_sor
from eau2.types import ColumnType, Schema

__version__ = "0.1.0"

__all__ = [
    "ColumnType",
    "DataFrame",
    "DroppedLine",
    "Eau2Error",
    "MissingValueError",
    "Reader",
    "Row",
    "Rower",
    "Schema",
    "SorError",
    "SorWarning",
    "Writer",
    "infer_schema",
    "parse_block",
    "read_sor",
]
