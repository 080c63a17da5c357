"""Storing a dask DataFrame's partitions as the chunks of a frame, where they were computed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dask
import pandas as pd
from distributed import Client, get_client, get_worker

from eau2.errors import KeyExistsError
from eau2.frame.convert import check_distinct_names
from eau2.frame.dataframe import DataFrame
from eau2.store.key import Key
from eau2.store.values import chunk_key, missing_columns
from eau2.types import Schema
from eau2_dask.kv import connect
from eau2_dask.node import EXTENSION

if TYPE_CHECKING:
    import dask.dataframe as dd


def from_dask(
    frame: dd.DataFrame, key: Key | str, *, client: Client | None = None, replicas: int | None = None
):
    """Store a dask DataFrame's partitions as the chunks of a frame under `key`, each on the
    node whose worker computed it (and `replicas` nodes in all); returns the stored frame.
    If anything fails, or the call is interrupted, nothing of it stays stored."""
    check_distinct_names(frame.columns)
    client = client or get_client()
    kv = connect(client)
    key = Key(key) if isinstance(key, str) else key
    with kv.writer(key, replicas) as writer:
        parts = frame.to_delayed()
        futures = client.compute(
            [dask.delayed(_store_partition)(part, writer.chunk_key(i).name) for i, part in enumerate(parts)]
        )
        try:
            stored = client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise
        schemas = {part.schema for part in stored}
        if len(schemas) > 1:
            raise TypeError(
                f"the partitions of that dask DataFrame have different eau2 schemas: {sorted(schemas)}"
            )
        for index, part in enumerate(stored):
            writer.stored(index, (part.node,), part.rows, part.nbytes, missing=part.missing)
        writer.commit(stored[0].schema, stored[0].names)
    return kv.get(key)


@dataclass(frozen=True)
class _Stored:
    node: int
    rows: int
    nbytes: int
    schema: str
    names: list
    missing: tuple[int, ...]


def _store_partition(partition: pd.DataFrame, name: str) -> _Stored:
    node = get_worker().extensions[EXTENSION]
    table = DataFrame.from_pandas(partition).to_arrow()
    with contextlib.suppress(KeyExistsError):  # this task ran here before (Dask ran it again)
        node.store.put(chunk_key(name), table)
    schema = str(Schema.from_arrow(table.schema))
    return _Stored(
        node.number(), table.num_rows, table.nbytes, schema, table.column_names, missing_columns(table)
    )
