"""eau2: a distributed, read-only, columnar key-value store for dataframes, on Dask.

This package is the core: SoR reading, the local DataFrame, the KV store and its
in-process nodes, distributed frames and applications. It imports without Dask;
`eau2_dask` runs the nodes inside Dask workers.
"""

from eau2.app.application import Application, ApplicationError
from eau2.app.local import run_local
from eau2.distributed.frame import DistributedDataFrame
from eau2.distributed.kv import KVStore
from eau2.errors import (
    DataLost,
    Eau2Error,
    KeyExistsError,
    MissingValueError,
    NodeLost,
    RunCancelled,
    SorError,
    SorWarning,
)
from eau2.frame.dataframe import DataFrame
from eau2.frame.row import Reader, Row, Rower, Writer
from eau2.sor.block import DroppedLine, infer_schema, parse_block
from eau2.sor.reader import read_sor
from eau2.store.key import Key
from eau2.types import ColumnType, Schema

__version__ = "0.1.0"


def _dask_setup_command():
    """`dask_setup` for ``--preload eau2``, with the worker flags ``--eau2-budget``,
    ``--eau2-directory`` and ``--eau2-spill-directory``; Dask itself is imported only when
    a server runs it."""
    import click

    @click.command(name="eau2")
    @click.option("--eau2-budget", default=None, help='Memory for values: bytes ("4GB") or a share ("40%").')
    @click.option("--eau2-directory", default=None, help="Where the node keeps its values across restarts.")
    @click.option("--eau2-spill-directory", default=None, help="Where a node without a directory spills.")
    def dask_setup(server, eau2_budget, eau2_directory, eau2_spill_directory):
        from eau2_dask.install import setup_server

        return setup_server(
            server, budget=eau2_budget, directory=eau2_directory, spill_directory=eau2_spill_directory
        )

    return dask_setup


dask_setup = _dask_setup_command()

__all__ = [
    "Application",
    "ApplicationError",
    "ColumnType",
    "DataFrame",
    "DataLost",
    "DistributedDataFrame",
    "DroppedLine",
    "Eau2Error",
    "KVStore",
    "Key",
    "KeyExistsError",
    "MissingValueError",
    "NodeLost",
    "Reader",
    "Row",
    "Rower",
    "RunCancelled",
    "Schema",
    "SorError",
    "SorWarning",
    "Writer",
    "infer_schema",
    "parse_block",
    "read_sor",
    "run_local",
]
