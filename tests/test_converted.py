"""The columns a node keeps converted for dask partitions: within their bound, dropped
with their frame, set by ``eau2.view-cache``."""

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2_dask import config
from eau2_dask.converted import ConvertedColumns, frozen
from eau2_dask.joined import joined_in_place, share_join

PART = ("t#0#abc#0", "t#0#abc#1")


def column(rows: int) -> pd.Series:
    return pd.Series(range(rows), dtype="int64")


def test_least_recently_used_columns_leave_first_within_the_bound():
    kept = ConvertedColumns(capacity=2000)
    kept.keep(PART, "a", column(100), 800)
    kept.keep(PART, "b", column(100), 800)
    assert kept.get(PART, "a") is not None  # "b" is now the least recently used
    kept.keep(PART, "c", column(100), 800)
    assert kept.get(PART, "b") is None
    assert kept.get(PART, "a") is not None and kept.get(PART, "c") is not None
    assert kept.nbytes == 1600 and kept.hits == 3


def test_a_column_larger_than_the_bound_is_not_kept_and_evicts_nothing():
    kept = ConvertedColumns(capacity=1000)
    kept.keep(PART, "a", column(100), 800)
    kept.keep(PART, "big", column(200), 1600)
    assert kept.get(PART, "big") is None and kept.get(PART, "a") is not None


def test_discarding_a_chunk_drops_every_partition_that_read_it():
    kept = ConvertedColumns(capacity=10_000)
    kept.keep(PART, "a", column(10), 80)
    kept.keep(PART, "b", column(10), 80)
    kept.keep(("t#0#abc#2",), "a", column(10), 80)
    kept.discard("t#0#abc#1")
    assert kept.get(PART, "a") is None and kept.get(PART, "b") is None
    assert kept.get(("t#0#abc#2",), "a") is not None
    assert kept.nbytes == 80
    kept.discard("t#0#abc#1")  # twice: nothing left to drop
    assert kept.nbytes == 80


def test_a_dropped_write_is_let_go_of_and_not_kept_again():
    """A read under way when its frame is deleted finds its write dropped."""
    kept = ConvertedColumns(capacity=10_000)
    kept.keep(PART, "a", column(10), 80)
    kept.keep(("u#0#def#0",), "a", column(10), 80)
    kept.drop_write("t#0#abc#")
    assert kept.get(PART, "a") is None and kept.nbytes == 80
    kept.keep(PART, "a", column(10), 80)
    assert kept.get(PART, "a") is None and kept.nbytes == 80


@pytest.mark.parametrize("dtype", ["int64", "float64", "bool", "Int64", "Float64", "boolean"])
def test_a_kept_column_cannot_be_changed_through_a_partition(dtype):
    kept = frozen(pd.Series([1, 0, 1], dtype=dtype))
    part = pd.DataFrame({"a": kept}, copy=False)
    other = part["a"].iloc[1]
    with pytest.raises(ValueError, match="read-only"):
        part["a"].array[0] = other
    array = part["a"].array
    for values in [part["a"].to_numpy(), *([array._data, array._mask] if hasattr(array, "_mask") else [])]:
        with pytest.raises(ValueError, match="WRITEABLE"):
            values.flags.writeable = True  # as a library handed the values may do
    part.loc[0, "a"] = other  # copy-on-write: the partition's own copy changes
    assert kept.tolist() == pd.Series([1, 0, 1], dtype=dtype).tolist()


def test_the_store_tells_of_every_key_it_deletes_or_drops():
    forgotten, dropped = [], []
    store = NodeStore(on_forget=forgotten.append, on_drop=dropped.append)
    for index in range(3):
        store.put(Key.internal(f"t#0#abc#{index}", 0), b"x")
    store.put(Key("plain"), b"y")
    store.delete(Key("plain"))
    assert store.drop("t#0#abc#") == 3
    assert sorted(key.name for key in forgotten) == ["plain", "t#0#abc#0", "t#0#abc#1", "t#0#abc#2"]
    assert store.drop("u#0#def#") == 0  # held elsewhere: still told
    assert dropped == ["t#0#abc#", "u#0#def#"]


@pytest.mark.parametrize(
    ("setting", "limit", "expected"),
    [("10%", 1000, 100), ("0", 1000, 0), ("0%", 1000, 0), ("1kB", None, 1000), ("50%", None, 4 << 30)],
)
def test_the_view_cache_is_bytes_or_a_share_of_the_memory_limit(setting, limit, expected):
    with dask.config.set({"eau2.view-cache": setting}):
        assert config.view_cache_bytes(limit) == expected


@pytest.mark.parametrize("setting", ["lots", "-1", "120%", None])
def test_a_bad_view_cache_setting_is_named(setting):
    with dask.config.set({"eau2.view-cache": setting}), pytest.raises(ValueError, match="eau2 view-cache"):
        config.view_cache_bytes(1000)


def test_chunks_that_share_a_join_are_joined_again_without_a_copy():
    joined = np.arange(10, dtype=np.int64)
    slices = [pa.chunked_array([pa.array(joined[a:b])]) for a, b in ((0, 4), (4, 4), (4, 10))]
    again = joined_in_place(slices)  # an empty chunk between them
    assert np.shares_memory(again, joined) and again.tolist() == list(range(10))
    assert not again.flags.writeable
    apart = [pa.chunked_array([pa.array(joined[:4].copy())]), slices[2]]
    assert joined_in_place(apart) is None
    with_missing = [slices[0], pa.chunked_array([pa.array([4, None, 6, 7, 8, 9])])]
    assert joined_in_place(with_missing) is None
    assert joined_in_place(slices[:1]) is None  # one chunk: its own memory already


def test_only_numbers_no_code_can_change_are_shared_with_the_chunks():
    store = NodeStore()
    keys = [Key("a"), Key("b")]
    chunks = [pa.table({"x": np.arange(3)}), pa.table({"x": np.arange(3, 6)})]
    for key, chunk in zip(keys, chunks, strict=True):
        store.put(key, chunk)
    stored = [store.get(key) for key in keys]
    owned = np.arange(6)
    owned.flags.writeable = False  # its owner can set it back
    assert not share_join(store, keys, stored, 0, owned)
    assert not share_join(store, keys, stored, 0, owned[:])
    joined = frozen(pd.Series(pa.chunked_array([chunk.column(0).chunk(0) for chunk in chunks]).to_pandas()))
    assert share_join(store, keys, stored, 0, joined.to_numpy())  # Arrow's memory, read-only
    assert np.shares_memory(store.get(keys[1]).column(0).to_numpy(), joined.to_numpy())
    assert joined_in_place([store.get(key).column(0) for key in keys]).tolist() == list(range(6))


def test_values_on_one_join_share_no_other():
    """A chunk left on two joins would keep both alive."""
    store = NodeStore()
    keys = [Key(f"c{i}") for i in range(3)]
    for i, key in enumerate(keys):
        store.put(key, pa.table({"x": np.arange(3 * i, 3 * i + 3)}))

    def join(chosen: list) -> np.ndarray:
        tables = [store.get(key) for key in chosen]
        column = pa.chunked_array([table.column(0).chunk(0) for table in tables]).to_pandas()
        return frozen(pd.Series(column)).to_numpy()

    first = keys[:2]
    assert share_join(store, first, [store.get(key) for key in first], 0, join(first))
    assert share_join(store, first, [store.get(key) for key in first], 0, join(first))  # the same again
    other = keys[1:]
    assert not share_join(store, other, [store.get(key) for key in other], 0, join(other))
