"""Stored frames as dask DataFrames, read where their chunks live; dask DataFrames stored as frames."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import Client, get_client, get_worker
from distributed.utils import sync

from eau2.distributed.frame import DistributedDataFrame
from eau2.frame.dataframe import DataFrame
from eau2.store.key import CHUNK_MARK, Key
from eau2.store.values import FrameMeta
from eau2.types import Schema
from eau2_dask.install import ensure_ready
from eau2_dask.kv import connect
from eau2_dask.node import EXTENSION
from eau2_dask.wire import unwire


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a stored frame, as a dask partition reads it; the scheduler plugin pins
    the task holding it to `address`, the worker of the chunk's home node."""

    name: str
    home: int
    address: str
    columns: tuple[str, ...]


def read_chunk(ref: ChunkRef) -> pd.DataFrame:
    """The chunk as pandas: from this node's store when it lives here, else fetched from its home."""
    worker = get_worker()
    node = worker.extensions.get(EXTENSION)
    key = Key.internal(ref.name, ref.home)
    if node is not None and worker.address == ref.address:
        node.reads["local"] += 1
        table = node.store.get(key)
    else:
        if node is not None:
            node.reads["remote"] += 1
        reply = sync(worker.loop, worker.rpc(ref.address).eau2_get, name=ref.name, home=ref.home)
        table = unwire(reply["value"])
    frame = DataFrame(table.rename_columns(list(ref.columns))).to_pandas()
    return frame


def to_dask(meta: FrameMeta, directory: list[str]) -> dd.DataFrame:
    """A dask DataFrame with one partition per chunk of the frame `meta` describes."""
    columns = tuple(meta.names)
    refs = [ChunkRef(name, home, directory[home], columns) for name, home in meta.chunk_keys]
    empty = DataFrame(Schema.parse(meta.schema).to_arrow(list(columns)).empty_table()).to_pandas()
    return dd.from_map(read_chunk, refs, meta=empty, enforce_metadata=False)


def from_dask(frame: dd.DataFrame, key: Key | str, *, client: Client | None = None) -> DistributedDataFrame:
    """Store a dask DataFrame's partitions as the chunks of a frame under `key`, each on the
    node whose worker computed it; returns the stored frame."""
    client = client or get_client()
    ensure_ready(client)
    key = Key(key) if isinstance(key, str) else key
    tag = uuid.uuid4().hex[:12]
    parts = frame.to_delayed()
    stored = client.compute(
        [
            dask.delayed(_store_partition)(part, f"{key.name}{CHUNK_MARK}{tag}{CHUNK_MARK}{i}")
            for i, part in enumerate(parts)
        ]
    )
    infos = client.gather(stored)
    schemas = {info["schema"] for info in infos}
    if len(schemas) > 1:
        raise TypeError(
            f"the partitions of that dask DataFrame have different eau2 schemas: {sorted(schemas)}"
        )
    meta = FrameMeta(
        schema=infos[0]["schema"] if infos else "",
        names=infos[0]["names"] if infos else [],
        chunk_rows=[info["rows"] for info in infos],
        chunk_bytes=[info["nbytes"] for info in infos],
        chunk_keys=[(info["name"], info["home"]) for info in infos],
    )
    kv = connect(client)
    kv.transport.put(key, meta)
    return kv.get(key)


def _store_partition(partition: pd.DataFrame, name: str) -> dict:
    worker = get_worker()
    node = worker.extensions[EXTENSION]
    home = node.number()
    table = DataFrame.from_pandas(partition).to_arrow()
    node.store.put(Key.internal(name, home), table)
    return {
        "name": name,
        "home": home,
        "rows": table.num_rows,
        "nbytes": table.nbytes,
        "schema": str(Schema.from_arrow(table.schema)),
        "names": table.column_names,
    }
