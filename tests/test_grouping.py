"""Where a frame's chunks go when all are known ahead (runs of consecutive chunks per node),
and which chunks a dask partition reads (runs on one node, within a size)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from eau2 import DataFrame
from eau2.distributed.grouping import group_chunks
from eau2.distributed.kv import KVStore
from eau2.distributed.placement import in_runs
from eau2.store.inprocess import InProcessCluster
from eau2.store.key import Key
from eau2.store.values import StoredChunk
from eau2_dask.refs import ChunkRef
from eau2_dask.scheduler import _workers_holding

sizes = st.lists(st.integers(0, 1000), min_size=0, max_size=40)


@given(sizes, st.integers(1, 5))
def test_chunks_go_in_runs_of_about_equal_bytes(chunk_sizes, count):
    nodes = [3, 7, 1, 4, 9][:count]
    placed = in_runs(nodes, chunk_sizes)
    assert len(placed) == len(chunk_sizes)
    assert not placed or placed[0] == nodes[0]
    order = [nodes.index(node) for node in placed]
    assert order == sorted(order)  # each node one run, in the nodes' order
    total = sum(chunk_sizes)
    if total:
        for position, node in enumerate(nodes):
            share = sum(size for size, at in zip(chunk_sizes, placed, strict=True) if at == node)
            assert abs(share - total / count) <= max(chunk_sizes), (position, share, total)


def test_a_frame_of_one_chunk_stays_on_its_home():
    assert in_runs([3, 0, 1, 2], [24]) == [3]
    assert in_runs([3, 0, 1, 2], [10, 10]) == [3, 2]


def test_chunks_of_no_bytes_are_spread_by_count():
    assert in_runs([0, 1], [0, 0, 0, 0]) == [0, 0, 1, 1]


def test_a_tail_block_joins_the_last_run():
    # 8 full blocks and a small tail on 2 nodes: 4 and 4 plus the tail, not 5 and 4.
    assert in_runs([0, 1], [64] * 8 + [9]) == [0] * 4 + [1] * 5


def test_a_local_put_places_chunks_in_runs():
    kv = KVStore(InProcessCluster(2).transport(0), chunk_bytes=1 << 10)
    frame = DataFrame.from_array(Key("ramp"), kv, np.arange(10_000))
    homes = [frame.chunk_home(i) for i in range(frame.nchunks)]
    assert frame.nchunks > 4 and homes == sorted(homes) and set(homes) == {0, 1}


def _chunks(layout: list[tuple[int, int]]) -> list[StoredChunk]:
    return [StoredChunk(f"c{i}", 10, nbytes, (node,)) for i, (node, nbytes) in enumerate(layout)]


def test_partitions_are_runs_on_one_node_within_the_size():
    chunks = _chunks([(0, 50)] * 4 + [(1, 50)] * 4 + [(1, 9)])
    assert group_chunks(chunks, {0: 1, 1: 1}, 1000) == [range(0, 4), range(4, 9)]
    pairs = [range(0, 2), range(2, 4), range(4, 6), range(6, 8), range(8, 9)]
    assert group_chunks(chunks, {0: 1, 1: 1}, 100) == pairs
    assert group_chunks(chunks, {0: 1, 1: 1}, None) == [range(i, i + 1) for i in range(9)]


def test_a_node_with_more_threads_gets_more_partitions():
    chunks = _chunks([(0, 50)] * 4 + [(1, 50)] * 4)
    assert group_chunks(chunks, {0: 2, 1: 1}, 1000) == [range(0, 2), range(2, 4), range(4, 8)]


def test_chunks_placed_in_turn_stay_one_per_partition():
    chunks = _chunks([(0, 50), (1, 50), (0, 50), (1, 50)])
    assert group_chunks(chunks, {}, 1000) == [range(i, i + 1) for i in range(4)]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 100)), max_size=30), st.integers(1, 500))
def test_partitions_cover_every_chunk_once_in_order(layout, limit):
    chunks = _chunks(layout)
    groups = group_chunks(chunks, {0: 1, 1: 2, 2: 3}, limit)
    assert [index for group in groups for index in group] == list(range(len(chunks)))
    for group in groups:
        assert len({chunks[index].holders[0] for index in group}) == 1
        assert len(group) == 1 or sum(chunks[index].nbytes for index in group) <= limit


def test_a_task_runs_where_all_its_chunks_are_or_else_where_some_are():
    def refs(*holders):
        return [
            ChunkRef("f", 0, i, StoredChunk(f"c{i}", 1, 1, held), ("0",), None)
            for i, held in enumerate(holders)
        ]

    live = {0: "w0", 1: "w1", 3: "w3"}.get  # node 2 is gone
    assert _workers_holding(refs((2, 0), (2, 0)), live) == {"w0"}
    assert _workers_holding(refs((2, 0), (2, 1)), live) == {"w0", "w1"}  # no live node has both
    assert _workers_holding(refs((0, 1), (1, 3)), live) == {"w1"}
    assert _workers_holding(refs((2,)), live) == set()  # any worker: it reads a copy or rebuilds
