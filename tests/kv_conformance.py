"""The KV store's contract, run against every transport (zarr's StoreTests pattern).

A subclass provides the fixture `kvs`: one `KVStore` per node of a 3-node cluster,
whose frames are cut into small chunks (`CHUNK_BYTES`) so every frame spans the nodes.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import numpy as np
import pyarrow as pa
import pytest

from eau2 import DataFrame, DistributedDataFrame, Key, KeyExistsError, Reader, Row, read_sor
from eau2.store.values import KeyInfo

CHUNK_BYTES = 4096


def fresh(name: str, home: int = 0) -> Key:
    """A key no other test uses (the Dask suite shares one cluster between tests)."""
    return Key(f"{name}-{uuid.uuid4().hex[:8]}", home)


class Positive(Reader):
    def visit(self, row: Row) -> bool:
        return row.get_int(0) > 0


class CountRows(Reader):
    def __init__(self):
        self.indices = []

    def visit(self, row: Row) -> bool:
        self.indices.append(row.index)
        return True


class KVConformance:
    def test_nodes(self, kvs):
        assert [kv.this_node() for kv in kvs] == [0, 1, 2]
        assert all(kv.num_nodes() == 3 for kv in kvs)

    @pytest.mark.parametrize(
        "value",
        [
            np.arange(12, dtype=np.int32).reshape(3, 4),
            pa.table({"a": [1, 2], "b": ["x", None]}),
            pa.array([1.5, None, 3.0]),
            b"some bytes",
        ],
        ids=["ndarray", "table", "array", "bytes"],
    )
    def test_values_come_back_as_they_went_in(self, kvs, value):
        key = fresh("value", home=1)
        kvs[0].put(key, value)
        for kv in kvs:
            got = kv.get(key)
            assert type(got) is type(value) or isinstance(got, np.ndarray)
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(got, value)
                assert got.dtype == value.dtype
            else:
                assert got == value if isinstance(value, bytes) else got.equals(value)

    def test_stored_arrays_do_not_change_with_the_original(self, kvs):
        key = fresh("array")
        original = np.zeros(4)
        kvs[1].put(key, original)
        original[0] = 9
        assert kvs[2].get(key)[0] == 0

    def test_values_are_write_once(self, kvs):
        key = fresh("once", home=2)
        kvs[0].put(key, b"first")
        with pytest.raises(KeyExistsError, match=key.name):
            kvs[1].put(key, b"second")
        with pytest.raises(KeyExistsError, match=key.name):
            kvs[2].put(key, DataFrame.from_array([1, 2]))
        assert kvs[0].get(key) == b"first"

    def test_racing_puts_have_one_winner(self, kvs):
        for home in range(3):
            key = fresh("race", home)
            outcomes = []

            def put(node: int, key=key, outcomes=outcomes) -> None:
                try:
                    kvs[node].put(key, DataFrame.from_array(np.full(2000, node)))
                    outcomes.append(node)
                except KeyExistsError:
                    outcomes.append(None)

            threads = [threading.Thread(target=put, args=(node,)) for node in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            winners = [node for node in outcomes if node is not None]
            assert len(winners) == 1 and len(outcomes) == 3
            frame = kvs[0].get(key)
            assert frame.get(0, 1999) == winners[0]
            chunks = sum(info.nchunks for info in kvs[0].keys() if info.key == key)
            assert chunks == frame.nchunks  # the losers' chunks were taken back

    def test_absent_key_is_a_key_error_naming_it(self, kvs):
        key = fresh("absent", home=1)
        with pytest.raises(KeyError, match=key.name):
            kvs[0].get(key)
        with pytest.raises(KeyError, match=key.name):
            kvs[2].delete(key)

    def test_get_and_wait_wakes_when_another_node_puts(self, kvs):
        key = fresh("later", home=0)

        def put_later() -> None:
            time.sleep(0.3)
            kvs[2].put(key, b"here")

        thread = threading.Thread(target=put_later)
        started = time.monotonic()
        thread.start()
        assert kvs[1].get_and_wait(key, timeout=30) == b"here"
        assert time.monotonic() - started < 10
        thread.join()

    def test_get_and_wait_returns_at_once_if_present(self, kvs):
        key = fresh("present", home=2)
        kvs[2].put(key, b"x")
        assert kvs[0].get_and_wait(key, timeout=0.5) == b"x"

    def test_get_and_wait_times_out_naming_the_key(self, kvs):
        key = fresh("never", home=1)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=key.name):
            kvs[0].get_and_wait(key, timeout=0.3)
        assert time.monotonic() - started < 10

    def test_get_and_wait_sees_a_frame(self, kvs):
        key = fresh("frame-later", home=1)
        threading.Timer(0.2, lambda: kvs[0].put(key, DataFrame.from_array(np.arange(3000)))).start()
        frame = kvs[2].get_and_wait(key, timeout=30)
        assert isinstance(frame, DistributedDataFrame) and frame.nrows == 3000

    def test_frames_are_chunked_over_the_nodes(self, kvs):
        key = fresh("chunks", home=1)
        values = np.arange(10_000, dtype=np.int64)
        stored = DataFrame.from_array(key, kvs[0], values)
        assert stored.nchunks > 3
        homes = [stored.chunk_home(i) for i in range(stored.nchunks)]
        runs = [node for index, node in enumerate(homes) if index == 0 or node != homes[index - 1]]
        assert runs == [1, 2, 0]  # runs of consecutive chunks, from the key's home on
        assert sum(stored.chunk(i).nrows for i in range(stored.nchunks)) == 10_000
        for kv in kvs:
            frame = kv.get(key)
            assert (frame.nrows, str(frame.schema)) == (10_000, "I")
            assert frame.get(0, 9_999) == 9_999
            assert frame.get_int(0, 4_321) == 4_321
            np.testing.assert_array_equal(frame.to_arrow().column(0).to_numpy(), values)

    def test_local_map_visits_each_chunk_once_over_all_nodes(self, kvs):
        key = fresh("local", home=0)
        DataFrame.from_array(key, kvs[0], np.arange(5_000))
        seen = []
        for kv in kvs:
            seen += kv.get(key).local_map(CountRows()).indices
        assert sorted(seen) == list(range(5_000))
        batches = [len(kv.get(key).local_map_batches(lambda batch: batch.num_rows)) for kv in kvs]
        assert sum(batches) == kvs[0].get(key).nchunks

    def test_map_and_filter(self, kvs):
        key = fresh("filter", home=2)
        frame = DataFrame.from_array(key, kvs[1], np.arange(-2_000, 2_000))
        assert frame.map(CountRows()).indices == list(range(4_000))
        positive = frame.filter(Positive(), key=fresh("positive", home=0))
        assert positive.nrows == 1_999 and positive.get(0, 0) == 1
        assert kvs[2].get(positive.key).nrows == 1_999

    def test_sor_frames_keep_types_and_missing_values(self, kvs):
        key = fresh("sor", home=0)
        text = b"".join(b'<%d> <%d.5> <"s%d"> <>\n' % (i % 2, i, i) for i in range(1_000))
        frame = DataFrame.from_sor(key, kvs[2], text)
        local = read_sor(text)
        assert str(frame.schema) == str(local.schema) == "BFSB"
        assert DataFrame(frame.to_arrow()) == local
        assert kvs[1].get(key).is_missing(3, 999)
        assert kvs[1].get(key).get_string(2, 998) == "s998"

    def test_empty_frame(self, kvs):
        key = fresh("empty", home=1)
        kvs[0].put(key, DataFrame.from_arrow(pa.table({"a": pa.array([], pa.int64())})))
        frame = kvs[2].get(key)
        assert (frame.nrows, str(frame.schema)) == (0, "I")
        assert frame.to_arrow().num_rows == 0

    def test_delete_frees_a_frame_and_its_chunks(self, kvs):
        key = fresh("gone", home=2)
        DataFrame.from_array(key, kvs[0], np.arange(5_000))
        before = {info.key for info in kvs[1].keys()}
        assert key in before
        kvs[1].delete(key)
        assert key not in {info.key for info in kvs[0].keys()}
        with pytest.raises(KeyError):
            kvs[0].get(key)
        kvs[0].put(key, b"a new value under the old name")
        assert kvs[2].get(key) == b"a new value under the old name"

    def test_keys_list_user_keys_with_sizes(self, kvs):
        frame_key, bytes_key = fresh("listed-frame", 1), fresh("listed-bytes", 2)
        DataFrame.from_array(frame_key, kvs[0], np.arange(1_000, dtype=np.float64))
        kvs[0].put(bytes_key, b"12345")
        listing = {info.key: info for info in kvs[1].keys()}
        assert listing[frame_key].kind == "frame"
        assert listing[frame_key].nbytes == 8_000 and listing[frame_key].nchunks >= 2
        assert (listing[bytes_key].kind, listing[bytes_key].nbytes) == ("bytes", 5)
        assert all("#" not in info.key.name for info in listing.values())

    def test_home_past_the_last_node_is_refused(self, kvs):
        with pytest.raises(ValueError, match="home node 3"):
            kvs[0].put(Key("far", 3), b"x")

    def test_unstorable_values_are_refused(self, kvs):
        with pytest.raises(TypeError, match="cannot store a dict"):
            kvs[0].put(fresh("dict"), {"a": 1})
        with pytest.raises(TypeError, match="already stored"):
            key = fresh("twice")
            frame = DataFrame.from_array(key, kvs[0], [1, 2])
            kvs[1].put(fresh("copy"), frame)

    def test_replicated_values_and_frames_have_their_copies(self, kvs):
        value_key, frame_key = fresh("copies-value", 1), fresh("copies-frame", 2)
        kvs[0].put(value_key, b"twice", replicas=2)
        frame = DataFrame.from_array(np.arange(5_000))
        kvs[1].put(frame_key, frame, replicas=3)
        stored = kvs[2].get(frame_key)
        assert all(sorted(stored.chunk_holders(i)) == [0, 1, 2] for i in range(stored.nchunks))
        listing = {info.key: info for info in kvs[0].keys()}
        assert (listing[value_key].replicas, listing[value_key].copies) == (2, 2)
        assert (listing[frame_key].replicas, listing[frame_key].copies, listing[frame_key].status) == (
            3,
            3,
            "ok",
        )
        assert stored.to_arrow().equals(frame.to_arrow())
        kvs[2].delete(frame_key)
        kvs[2].delete(value_key)
        assert not any(
            info.key.name.startswith(frame_key.name) for n in range(3) for info in kvs[0].transport.keys(n)
        )

    def test_transport_info_tells_kind_and_size_without_the_value(self, kvs):
        key = fresh("info", 1)
        kvs[1].transport.put(1, key, np.zeros(1000), replicas=2)
        for kv in kvs:
            assert kv.transport.info(1, key) == KeyInfo(key, "ndarray", 8000, replicas=2)
            assert kv.transport.exists(1, key) and not kv.transport.exists(2, key)
            assert kv.transport.info(0, key) is None

    def test_transport_copy_and_update(self, kvs):
        key = fresh("copied", 0)
        kvs[0].transport.put(0, key, b"abc")
        kvs[1].transport.copy(2, key, 0)
        assert kvs[0].transport.get(2, key) == b"abc"
        frame_key = fresh("meta", 0)
        kvs[0].put(frame_key, DataFrame.from_array([1, 2, 3]))
        meta = kvs[0].get(frame_key).meta
        node = next(n for n in range(3) if kvs[0].transport.exists(n, frame_key))
        moved = dataclasses.replace(meta, dropped_rows=7)
        kvs[2].transport.update(node, frame_key, moved)
        assert kvs[1].transport.get(node, frame_key).dropped_rows == 7
        with pytest.raises(TypeError, match="metadata"):
            kvs[2].transport.update(node, frame_key, b"not metadata")
