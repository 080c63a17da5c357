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
