"""A frame stored as row chunks over the nodes, read as if it were local."""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from eau2.distributed.grouping import PARTITION_SIZE
from eau2.distributed.reads import every_lost_chunk
from eau2.errors import DataLost
from eau2.frame.dataframe import DataFrame
from eau2.frame.row import Rower
from eau2.store.key import Key
from eau2.store.values import FrameMeta, StoredChunk
from eau2.types import Schema

if TYPE_CHECKING:
    import pandas as pd

    from eau2.distributed.kv import KVStore


class DistributedDataFrame:
    """A stored frame: the local DataFrame's read API over chunks that live on many nodes.

    Cells, `map`, `filter` and `map_batches` read every chunk, fetching remote ones on
    demand into a bounded cache (and cells keep the chunk of the last one read);
    `local_map` and `local_map_batches` visit only the chunks this node holds, which is
    how applications split work over the nodes.
    """

    def __init__(self, kv: KVStore, key: Key, meta: FrameMeta):
        self.kv = kv
        self.key = key
        self.meta = meta
        self._starts = [0, *itertools.accumulate(chunk.rows for chunk in meta.chunks)]
        self._last: tuple[int, DataFrame] | None = None  # the chunk the last cell came from

    # -- shape --------------------------------------------------------------------------

    @property
    def nrows(self) -> int:
        return self._starts[-1]

    @property
    def ncols(self) -> int:
        return len(self.meta.schema)

    @property
    def schema(self) -> Schema:
        return Schema.parse(self.meta.schema)

    @property
    def column_names(self) -> list[str]:
        return list(self.meta.names)

    @property
    def nchunks(self) -> int:
        return len(self.meta.chunks)

    @property
    def replicas(self) -> int:
        """Copies of each chunk the frame was stored with."""
        return self.meta.replicas

    @property
    def dropped_rows(self) -> int:
        return self.meta.dropped_rows

    def chunk_home(self, index: int) -> int:
        """The node that was first to hold chunk `index`."""
        return self.meta.chunks[index].holders[0]

    def chunk_holders(self, index: int) -> tuple[int, ...]:
        """Every node recorded as holding a copy of chunk `index`."""
        return self.meta.chunks[index].holders

    def chunk(self, index: int) -> DataFrame:
        """Chunk `index` as a local DataFrame (fetched if it lives elsewhere)."""
        return DataFrame(self.kv.chunk(self.meta, index, self.key))

    # -- cells ---------------------------------------------------------------------------

    def get(self, col: int, row: int) -> Any:
        chunk, local = self._cell(col, row)
        return chunk.get(col, local)

    def is_missing(self, col: int, row: int) -> bool:
        chunk, local = self._cell(col, row)
        return chunk.is_missing(col, local)

    def get_bool(self, col: int, row: int) -> bool:
        chunk, local = self._cell(col, row)
        return chunk.get_bool(col, local)

    def get_int(self, col: int, row: int) -> int:
        chunk, local = self._cell(col, row)
        return chunk.get_int(col, local)

    def get_float(self, col: int, row: int) -> float:
        chunk, local = self._cell(col, row)
        return chunk.get_float(col, local)

    def get_string(self, col: int, row: int) -> str:
        chunk, local = self._cell(col, row)
        return chunk.get_string(col, local)

    # -- whole frame ---------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """All rows as one `pyarrow.Table` (every chunk fetched to this process)."""
        tables = [chunk.to_arrow() for _, chunk in self._chunks(range(self.nchunks))]
        return pa.concat_tables(tables) if tables else self.schema.to_arrow(self.column_names).empty_table()

    def to_pandas(self) -> pd.DataFrame:
        return DataFrame(self.to_arrow()).to_pandas()

    def to_dask(self, partition_size: int | str | None = PARTITION_SIZE):
        """A `dask.dataframe.DataFrame` of the frame (needs eau2 nodes on Dask), each
        partition read on the node holding its chunks: a run of consecutive chunks of at
        most `partition_size` stored bytes (``"256MiB"``, or a number), finer where a node
        has more threads than partitions; one partition per chunk when None. Column types
        are those of `DataFrame.to_pandas`: numpy where no value is missing, pandas'
        nullable types where one is, ``string[pyarrow]`` for text."""
        return self.kv.to_dask(self.meta, self.key, partition_size)

    def to_local(self) -> DataFrame:
        """The whole frame as a local DataFrame."""
        return DataFrame(self.to_arrow(), dropped_rows=self.dropped_rows)

    def map(self, rower: Rower) -> Rower:
        """``rower.accept(row)`` on every row in order; `row.index` counts over the whole frame."""
        for index, chunk in self._chunks(range(self.nchunks)):
            chunk._visit(rower, first_index=self._starts[index])
        return rower

    def local_map(self, rower: Rower) -> Rower:
        """`map` over only the chunks this node holds (row indices still count over the frame)."""
        for index, chunk in self._chunks(self._local_chunks()):
            chunk._visit(rower, first_index=self._starts[index])
        return rower

    def map_batches(self, fn: Callable[[pa.RecordBatch], Any]) -> list:
        """``fn(batch)`` for every record batch of every chunk, in order."""
        return [result for _, chunk in self._chunks(range(self.nchunks)) for result in chunk.map_batches(fn)]

    def local_map_batches(self, fn: Callable[[pa.RecordBatch], Any]) -> list:
        """`map_batches` over only the chunks this node holds."""
        return [result for _, chunk in self._chunks(self._local_chunks()) for result in chunk.map_batches(fn)]

    def filter(self, rower: Rower, key: Key | None = None) -> DistributedDataFrame:
        """Store the rows `rower` accepts as a new frame under `key` (a fresh name by default)."""
        if key is None:
            key = Key(f"{self.key.name}.filter-{uuid.uuid4().hex[:8]}", self.key.home)
        kept = [
            chunk._filtered(rower, first_index=self._starts[index])
            for index, chunk in self._chunks(range(self.nchunks))
        ]
        table = pa.concat_tables([frame.to_arrow() for frame in kept])
        self.kv.put(key, DataFrame(table))
        return self.kv.get(key)

    def __len__(self) -> int:
        return self.nrows

    def __repr__(self) -> str:
        return (
            f"<eau2.DistributedDataFrame {self.key.name!r}: {self.nrows} rows, schema "
            f"{self.meta.schema!r}, {self.nchunks} chunks>"
        )

    # -- helpers -------------------------------------------------------------------------

    def _chunks(self, indices) -> Iterator[tuple[int, DataFrame]]:
        """The chunks `indices` in turn; if one is lost, `DataLost` names every lost one."""
        for index in indices:
            try:
                yield index, self.chunk(index)
            except DataLost as lost:
                raise every_lost_chunk(self.kv.transport, self.key, self.meta, lost) from None

    def _local_chunks(self) -> Iterator[int]:
        """The chunks this node visits: each on the node it was first placed on (while that
        one is live; else the live nodes in turn), so over all nodes each is visited once."""
        here = self.kv.this_node()
        live = self.kv.transport.live_nodes()
        return (
            index for index in range(self.nchunks) if _visitor(self.meta.chunks[index], index, live) == here
        )

    def _cell(self, col: int, row: int) -> tuple[DataFrame, int]:
        """The chunk holding row `row`, and the row's place in it. The last chunk used is
        kept, so reading cells in order fetches each chunk once."""
        if not 0 <= col < self.ncols:
            raise IndexError(f"column {col} is out of range: the frame has {self.ncols} columns")
        if not 0 <= row < self.nrows:
            raise IndexError(f"row {row} is out of range: the frame has {self.nrows} rows")
        last = self._last
        if last is not None and self._starts[last[0]] <= row < self._starts[last[0] + 1]:
            return last[1], row - self._starts[last[0]]
        index = bisect.bisect_right(self._starts, row) - 1
        chunk = self.chunk(index)
        self._last = (index, chunk)
        return chunk, row - self._starts[index]


def _visitor(chunk: StoredChunk, index: int, live: list[int]) -> int | None:
    """The node that visits chunk `index`: the node it was first placed on, which repair
    never changes, while it is live; else the live nodes in turn."""
    if chunk.holders[0] in live:
        return chunk.holders[0]
    return live[index % len(live)] if live else None
