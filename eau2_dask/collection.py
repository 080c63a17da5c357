"""Stored frames as dask DataFrames, read where their chunks live; dask DataFrames stored as frames."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import dask
import pandas as pd
import pyarrow as pa
from dask.utils import parse_bytes
from distributed import Client, get_worker
from pandas.api.extensions import ExtensionDtype

from eau2.distributed.grouping import group_chunks
from eau2.distributed.reads import every_lost_chunk, find_value
from eau2.distributed.reads import read_chunk as read_stored_chunk
from eau2.errors import DataLost
from eau2.frame.convert import pandas_dtypes, to_pandas
from eau2.store.key import Key
from eau2.store.values import FrameMeta, StoredChunk, frame_of_chunk
from eau2.types import Schema
from eau2_dask.converted import frozen
from eau2_dask.joined import joined_in_place, share_join
from eau2_dask.node import EXTENSION
from eau2_dask.refs import ChunkRef
from eau2_dask.transport import worker_transport

if TYPE_CHECKING:
    import dask.dataframe as dd


def read_chunks(refs: tuple[ChunkRef, ...], columns: list[str] | None = None) -> pd.DataFrame:
    """The chunks as one pandas frame, in order: each from this node's store when it holds a
    copy, else from a live holder, else rebuilt from its file. Only `columns` (all by
    default) are converted: dask passes those a computation uses. Text and one chunk's
    numbers share its memory. Where the node holds every chunk in memory, the numbers of
    several are joined once and the chunks then hold their slices of the join (equal
    values: see `NodeStore.share`), so later partitions share it too. Other columns the
    conversion builds (booleans, columns with missing values, numbers of chunks read from
    elsewhere) are kept, read-only, for the next computation, within the node's
    ``eau2.view-cache``."""
    node = get_worker().extensions[EXTENSION]
    names = list(refs[0].columns) if columns is None else list(columns)
    if not names:  # no column: only the rows count
        return pd.DataFrame(index=pd.RangeIndex(sum(table.num_rows for table in _read(node, refs))))
    part = tuple(ref.chunk.name for ref in refs)
    found = {name: node.converted.get(part, name) for name in names}
    if any(column is None for column in found.values()):
        stored = _read(node, refs)
        tables = [table.rename_columns(list(ref.columns)) for table, ref in zip(stored, refs, strict=True)]
        dtypes = pandas_dtypes(tables[0].schema, refs[0].missing)  # by position in the whole frame
        for name in names:
            if found[name] is None and not isinstance(dtypes[name], ExtensionDtype):
                joined = joined_in_place([table.column(name) for table in tables])
                if joined is not None:
                    found[name] = pd.Series(joined, name=name, copy=False)
        wanted = [name for name, column in found.items() if column is None]
        if wanted:
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            converted = to_pandas(table.select(wanted), dtypes)
            keys = [ref.chunk.key for ref in refs]
            for name in wanted:
                found[name] = column = frozen(converted[name])
                position = refs[0].columns.index(name)
                if _shares_chunks(column, len(tables)):
                    continue
                plain = not isinstance(column.dtype, ExtensionDtype)
                if not (plain and share_join(node.store, keys, stored, position, column.to_numpy())):
                    node.converted.keep(part, name, column, column.nbytes)
    return pd.DataFrame(found, copy=False)


def _read(node, refs: tuple[ChunkRef, ...]) -> list[pa.Table]:
    """The chunks `refs` name, as stored (their own column names), counting local reads."""
    transport = worker_transport()
    here = transport.this_node()
    tables = []
    for ref in refs:
        local = here in ref.chunk.holders and ref.chunk.key in node.store
        node.reads["local" if local else "remote"] += 1
        frame = Key(ref.frame, ref.home)
        try:
            tables.append(read_stored_chunk(transport, frame, ref.index, ref.chunk))
        except DataLost as lost:
            raise _every_lost(transport, frame, lost, ref.chunk) from None
    return tables


def _every_lost(transport, frame: Key, first: DataLost, chunk: StoredChunk) -> DataLost:
    """`first`, naming every lost chunk of the frame, as the frame's own reads do, not just
    the first a partition met (unchanged if the frame's metadata of `chunk`'s write cannot
    be had)."""
    try:
        meta = find_value(transport, frame)
    except KeyError:
        return first
    same_write = isinstance(meta, FrameMeta) and frame_of_chunk(chunk.name) == (frame, meta.tag)
    return every_lost_chunk(transport, frame, meta, first) if same_write else first


def _shares_chunks(column: pd.Series, chunks: int) -> bool:
    """Whether the conversion gave `column` the chunks' own memory: text does, and the
    numbers of a single chunk without missing values."""
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return chunks == 1 and column.dtype.kind in "if" and not isinstance(column.dtype, ExtensionDtype)


def to_dask(
    meta: FrameMeta,
    frame: Key,
    directory: list[str | None],
    partition_size: int | str | None,
    client: Client | None = None,
) -> dd.DataFrame:
    """A dask DataFrame of the frame `meta` describes, each partition a run of consecutive
    chunks on one node of at most `partition_size` stored bytes, and at least as many
    partitions on a node as it has threads where it holds enough chunks (one chunk per
    partition when None). Its column types are `pandas_dtypes`' for the frame's missing
    values, the same in every partition. `directory` gives each node's worker address;
    `client`, if given, their threads (one each otherwise)."""
    import dask.dataframe as dd  # here, not at the top: workers and schedulers start without it

    columns = tuple(meta.names)
    missing = meta.missing
    limit = _partition_bytes(partition_size)
    live = {node for node, address in enumerate(directory) if address is not None}
    chunks = [_held(chunk, meta.replicas, live) for chunk in meta.chunks]
    threads = _threads_by_node(directory, client) if limit is not None else {}
    refs = [
        tuple(ChunkRef(frame.name, frame.home, i, chunks[i], columns, missing) for i in group)
        for group in group_chunks(chunks, threads, limit)
    ]
    schema = Schema.parse(meta.schema).to_arrow(list(columns))
    empty = to_pandas(schema.empty_table(), pandas_dtypes(schema, missing))
    # Text is already string[pyarrow]: no conversion task after each read.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(read_chunks, refs, meta=empty, enforce_metadata=False)


def _partition_bytes(partition_size: int | str | None) -> int | None:
    if partition_size is None:
        return None
    if isinstance(partition_size, bool) or not isinstance(partition_size, (int, str)):
        raise TypeError(f"partition_size must be bytes (an int or '64MiB') or None, not {partition_size!r}")
    limit = parse_bytes(partition_size)
    if limit < 1:
        raise ValueError(f"partition_size must be at least 1 byte, or None, not {partition_size!r}")
    return limit


def _held(chunk: StoredChunk, replicas: int, live: set[int]) -> StoredChunk:
    """The chunk with the live nodes that hold a copy as its holders, where it has one.
    Repair keeps the node a chunk was first placed on first, holding a copy or not (it
    is who visits the chunk in `local_map`): past `replicas` holders, the first has none."""
    holders = chunk.holders[1:] if len(chunk.holders) > replicas else chunk.holders
    held = tuple(node for node in holders if node in live)
    return replace(chunk, holders=held) if held else chunk


def _threads_by_node(directory: list[str | None], client: Client | None) -> dict[int, int]:
    """Each node's worker threads, by node number (empty without a client: one each)."""
    if client is None:
        return {}
    threads = client.nthreads()
    return {node: threads[address] for node, address in enumerate(directory) if address in threads}
