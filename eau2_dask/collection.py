"""Stored frames as dask DataFrames, read where their chunks live; dask DataFrames stored as frames."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.utils import parse_bytes
from distributed import get_client, get_worker

from eau2.distributed.grouping import group_chunks
from eau2.distributed.reads import read_chunk as read_stored_chunk
from eau2.frame.convert import pandas_dtypes, to_pandas
from eau2.store.key import Key
from eau2.store.values import FrameMeta
from eau2.types import Schema
from eau2_dask.node import EXTENSION
from eau2_dask.refs import ChunkRef
from eau2_dask.transport import worker_transport


def read_chunks(refs: tuple[ChunkRef, ...], columns: list[str] | None = None) -> pd.DataFrame:
    """The chunks as one pandas frame, in order: each from this node's store when it holds a
    copy, else from a live holder, else rebuilt from its file. Only `columns` (all by
    default) are converted: dask passes those a computation uses. One chunk's numbers and
    text share its memory; several chunks' numbers are joined in a copy."""
    transport = worker_transport()
    node = get_worker().extensions[EXTENSION]
    here = transport.this_node()
    tables = []
    for ref in refs:
        local = here in ref.chunk.holders and ref.chunk.key in node.store
        node.reads["local" if local else "remote"] += 1
        table = read_stored_chunk(transport, Key(ref.frame, ref.home), ref.index, ref.chunk)
        tables.append(table.rename_columns(list(ref.columns)))
    dtypes = pandas_dtypes(tables[0].schema, refs[0].missing)  # by position in the whole frame
    if columns is not None:
        tables = [table.select(list(columns)) for table in tables]
    return to_pandas(tables[0] if len(tables) == 1 else pa.concat_tables(tables), dtypes)


def to_dask(
    meta: FrameMeta, frame: Key, directory: list[str | None], partition_size: int | str | None
) -> dd.DataFrame:
    """A dask DataFrame of the frame `meta` describes, each partition a run of consecutive
    chunks on one node of at most `partition_size` stored bytes, and at least as many
    partitions on a node as it has threads where it holds enough chunks (one chunk per
    partition when None). Its column types are `pandas_dtypes`' for the frame's missing
    values, the same in every partition. `directory` gives each node's worker address."""
    columns = tuple(meta.names)
    missing = meta.missing
    limit = None if partition_size is None else parse_bytes(partition_size)
    if limit is not None and limit < 1:
        raise ValueError(f"partition_size must be at least 1 byte, or None, not {partition_size!r}")
    groups = group_chunks(meta.chunks, _threads_by_node(directory), limit)
    refs = [
        tuple(ChunkRef(frame.name, frame.home, i, meta.chunks[i], columns, missing) for i in group)
        for group in groups
    ]
    schema = Schema.parse(meta.schema).to_arrow(list(columns))
    empty = to_pandas(schema.empty_table(), pandas_dtypes(schema, missing))
    # Text is already string[pyarrow]: no conversion task after each read.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(read_chunks, refs, meta=empty, enforce_metadata=False)


def _threads_by_node(directory: list[str | None]) -> dict[int, int]:
    """Each node's worker threads, by node number (empty when there is no client)."""
    try:
        threads = get_client().nthreads()
    except ValueError:
        return {}
    return {node: threads[address] for node, address in enumerate(directory) if address in threads}
