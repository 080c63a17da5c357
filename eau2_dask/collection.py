"""Stored frames as dask DataFrames, read where their chunks live; dask DataFrames stored as frames."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import get_worker

from eau2.distributed.reads import read_chunk as read_stored_chunk
from eau2.frame.convert import pandas_dtypes, to_pandas
from eau2.store.key import Key
from eau2.store.values import FrameMeta
from eau2.types import Schema
from eau2_dask.node import EXTENSION
from eau2_dask.refs import ChunkRef
from eau2_dask.transport import worker_transport


def read_chunk(ref: ChunkRef, columns: list[str] | None = None) -> pd.DataFrame:
    """The chunk as pandas: from this node's store when it holds a copy, else from a live
    holder, else rebuilt from its file. Only `columns` (all by default) are converted:
    dask passes those a computation uses."""
    transport = worker_transport()
    node = get_worker().extensions[EXTENSION]
    here = transport.this_node()
    local = here in ref.chunk.holders and ref.chunk.key in node.store
    node.reads["local" if local else "remote"] += 1
    table = read_stored_chunk(transport, Key(ref.frame, ref.home), ref.index, ref.chunk)
    table = table.rename_columns(list(ref.columns))
    dtypes = pandas_dtypes(table.schema, ref.missing)
    return to_pandas(table.select(list(columns)) if columns is not None else table, dtypes)


def to_dask(meta: FrameMeta, frame: Key) -> dd.DataFrame:
    """A dask DataFrame with one partition per chunk of the frame `meta` describes. Its
    column types are `pandas_dtypes`' for the frame's missing values, the same in every
    partition."""
    columns = tuple(meta.names)
    missing = meta.missing
    refs = [
        ChunkRef(frame.name, frame.home, index, chunk, columns, missing)
        for index, chunk in enumerate(meta.chunks)
    ]
    schema = Schema.parse(meta.schema).to_arrow(list(columns))
    empty = to_pandas(schema.empty_table(), pandas_dtypes(schema, missing))
    # Text is already string[pyarrow]: no conversion task after each read.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(read_chunk, refs, meta=empty, enforce_metadata=False)
