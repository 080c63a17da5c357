"""A node's store: write-once, waits, and a byte budget kept by spilling to disk."""

import threading

import numpy as np
import pyarrow as pa
import pytest

from eau2 import Key, KeyExistsError
from eau2.store.node import NodeStore
from eau2.store.waits import wait_for


def table(rows: int, seed: int) -> pa.Table:
    return pa.table({"x": np.full(rows, seed, np.int64), "s": [f"v{seed}"] * rows})


def test_spills_beyond_the_budget_and_reads_everything_back(tmp_path):
    store = NodeStore(budget=1_000_000, directory=tmp_path)
    tables = {Key(f"t{i}"): table(50_000, i) for i in range(8)}  # ~0.8 MB each, 6x the budget
    for key, value in tables.items():
        store.put(key, value)
    assert store.memory_bytes <= 1_000_000
    assert store.spilled_bytes > 4_000_000
    assert len(list(tmp_path.iterdir())) >= 5
    for key, value in tables.items():
        assert store.get(key).equals(value)
    array = np.arange(300_000)
    store.put(Key("array"), array)
    np.testing.assert_array_equal(store.get(Key("array")), array)
    store.delete(Key("t0"))
    with pytest.raises(KeyError, match="t0"):
        store.get(Key("t0"))
    store.close()


def test_spill_files_stay_in_their_directory(tmp_path):
    store = NodeStore(budget=1, directory=tmp_path / "spill")
    store.put(Key.internal("../../escape#0", 0), pa.table({"a": [1]}))
    assert {p.parent for p in (tmp_path / "spill").iterdir()} == {tmp_path / "spill"}
    assert list(tmp_path.iterdir()) == [tmp_path / "spill"]


def test_write_once_and_waiters():
    store = NodeStore()
    woken = threading.Event()
    store.when_put(Key("k"), woken.set)
    store.put(Key("k"), b"v")
    assert woken.is_set()
    with pytest.raises(KeyExistsError):
        store.put(Key("k"), b"w")
    with pytest.raises(TimeoutError, match="'other' was not put within"):
        wait_for(store, Key("other"), timeout=0.05)


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a b", ".hidden", "x#1", "é", "a" * 201])
def test_invalid_key_names(name):
    with pytest.raises(ValueError, match="not valid"):
        Key(name)


def test_key_home_must_be_a_node_number():
    with pytest.raises(ValueError, match="home node"):
        Key("x", -1)


def joined_chunks(rows: int, count: int) -> tuple[np.ndarray, list[pa.Table], list[pa.Table]]:
    """`count` chunks of floats (a NaN among them) and text, and the same chunks with their
    floats as slices of one joined array."""
    joined = np.arange(rows * count, dtype=np.float64)
    joined[1] = np.nan
    joined.flags.writeable = False
    chunks, sharing = [], []
    for i in range(count):
        part = joined[i * rows : (i + 1) * rows]
        chunk = pa.table({"x": part.copy(), "s": [f"v{i}"] * rows})
        chunks.append(chunk)
        sharing.append(chunk.set_column(0, "x", pa.array(part)))
    return joined, chunks, sharing


def replacing(keys: list, chunks: list, sharing: list) -> dict:
    return {key: (chunk, shared) for key, chunk, shared in zip(keys, chunks, sharing, strict=True)}


def test_shared_values_replace_equal_ones_and_leave_memory_together(tmp_path):
    store = NodeStore(budget=3_000_000, directory=tmp_path)
    joined, chunks, sharing = joined_chunks(50_000, 3)  # 0.8 MB of floats each
    keys = [Key(f"c{i}") for i in range(3)]
    for key, chunk in zip(keys, chunks, strict=True):
        store.put(key, chunk)
    used = store.memory_bytes
    assert store.share(replacing(keys, [store.get(key) for key in keys], sharing))
    assert store.memory_bytes == used
    for key, chunk in zip(keys, chunks, strict=True):
        held = store.get(key)
        np.testing.assert_array_equal(held.column(0).to_numpy(), chunk.column(0).to_numpy())  # NaN too
        assert held.column(1).equals(chunk.column(1))
        assert np.shares_memory(held.column(0).to_numpy(), joined)
    # Room for a new value moves the least recently used out, and the values sharing its
    # memory with it: one left behind would keep all of the joined array alive.
    store.get(keys[1]), store.get(keys[2])
    store.put(Key("other"), table(100_000, 9))
    assert not any(store.in_memory(key) for key in keys)
    for key, chunk in zip(keys, chunks, strict=True):  # read back from their files, the same
        held = store.get(key).column(0).to_numpy()
        np.testing.assert_array_equal(held, chunk.column(0).to_numpy())
        assert not np.shares_memory(held, joined)
    store.close()


def test_sharing_is_all_or_none_and_only_of_equal_values(tmp_path):
    _, chunks, sharing = joined_chunks(50_000, 2)
    store = NodeStore(budget=2 * chunks[0].nbytes + 1000, directory=tmp_path)
    keys = [Key("c0"), Key("c1")]
    for key, chunk in zip(keys, chunks, strict=True):
        store.put(key, chunk)
    olds = [store.get(key) for key in keys]
    store.put(Key("other"), table(30_000, 9))  # c0 leaves memory
    assert not store.in_memory(keys[0]) and store.in_memory(keys[1])
    assert not store.share(replacing(keys, olds, sharing))
    assert store.get(keys[1]) is olds[1]  # nothing replaced
    held = store.get(keys[1])
    changed = held.set_column(0, "x", pa.array(np.zeros(50_000)))
    with pytest.raises(ValueError, match="'c1'"):
        store.share({keys[1]: (held, changed)})
    assert not store.share({keys[1]: (olds[1].select([0, 1]), sharing[1])})  # equal, not what it holds
    assert store.get(keys[1]) is olds[1]
    store.close()


def test_stored_tables_cannot_be_written_through_their_buffers():
    store = NodeStore()
    values = np.arange(5)
    store.put(Key("t"), pa.table({"x": values, "s": ["a", "b", "c", "d", "e"]}))
    held = store.get(Key("t"))
    for column in held.columns:
        for buffer in column.chunk(0).buffers():
            if buffer is not None:
                array = np.frombuffer(buffer, np.uint8)
                with pytest.raises(ValueError, match="WRITEABLE"):
                    array.flags.writeable = True
    assert held.column(0).to_pylist() == [0, 1, 2, 3, 4]
    values[:] = 9  # the caller's array: the store copied it
    assert store.get(Key("t")).column(0).to_pylist() == [0, 1, 2, 3, 4]


def test_a_value_forgotten_leaves_the_rest_of_its_join_sharing_with_no_one(tmp_path):
    """Its key may be stored again (a damaged copy restored) and share another join."""
    _, chunks, sharing = joined_chunks(50_000, 3)
    store = NodeStore(budget=4 * chunks[0].nbytes, directory=tmp_path)
    a, b, c = keys = [Key(f"c{i}") for i in range(3)]
    for key, chunk in zip(keys, chunks, strict=True):
        store.put(key, chunk)
    assert store.share(replacing([a, b], [store.get(a), store.get(b)], sharing[:2]))
    store.delete(b)
    store.put(b, chunks[1])
    again = [store.get(b), store.get(c)]
    assert store.share(replacing([b, c], again, [t.select([0, 1]) for t in again]))
    store.get(b), store.get(c)
    store.put(Key("other"), table(60_000, 9))  # room: a, the least recently used, leaves
    assert not store.in_memory(a) and store.in_memory(b) and store.in_memory(c)
    store.close()


def test_a_stored_arrow_array_is_the_stores_own():
    store = NodeStore()
    values = np.arange(4.0)
    store.put(Key("a"), pa.array(values))
    values[:] = -1
    held = store.get(Key("a"))
    assert held.to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert not any(buffer.is_mutable for buffer in held.buffers() if buffer is not None)


def test_no_caller_nor_reader_can_change_a_stored_value():
    store = NodeStore()
    source = np.arange(5)
    view = source[:]
    view.flags.writeable = False  # read-only, but its owner is not
    store.put(Key("n"), np.arange(5))
    store.put(Key("t"), pa.table({"x": view, "d": pa.array(["a", "b", "a", "b", "a"]).dictionary_encode()}))
    store.put(Key("a"), pa.array(view))
    source[:] = -1
    number = store.get(Key("n"))
    with pytest.raises(ValueError, match="WRITEABLE"):
        number.flags.writeable = True
    owner = number
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    with pytest.raises(ValueError, match="WRITEABLE"):
        owner.flags.writeable = True
    table, array = store.get(Key("t")), store.get(Key("a"))
    assert table.column("x").to_pylist() == array.to_pylist() == [0, 1, 2, 3, 4]
    for chunk in [*table.column("x").chunks, *table.column("d").chunks, array]:
        buffers = chunk.buffers() + (chunk.dictionary.buffers() if hasattr(chunk, "dictionary") else [])
        assert not any(buffer.is_mutable for buffer in buffers if buffer is not None)
