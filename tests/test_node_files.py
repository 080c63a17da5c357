"""A node's files: durable values found again, damaged files never served, a full or
read-only disk refused with the directory named and nothing stored lost."""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from eau2 import Key
from eau2.store.files import DiskError, ValueFiles, remove_abandoned
from eau2.store.node import NodeStore
from eau2.store.pieces import shape_of
from eau2.store.values import FrameMeta


def table(rows: int, seed: int) -> pa.Table:
    return pa.table({"x": np.arange(rows, dtype=np.int64) + seed, "s": [f"v{seed}"] * rows})


def files_of(directory) -> list:
    return sorted(p for p in directory.iterdir() if p.suffix in (".table", ".npy", ".bytes", ".meta"))


def test_a_durable_store_serves_its_values_again_when_opened_again(tmp_path):
    values = {
        Key("t"): table(10_000, 1),
        Key("a", 1): pa.array([1.5, None, 3.0]),
        Key("n"): np.arange(12, dtype=np.int32).reshape(3, 4),
        Key("b"): b"bytes\x00here",
        Key("f"): FrameMeta("I", ["x"], []),
    }
    store = NodeStore(budget=50_000, directory=tmp_path, durable=True)
    for key, value in values.items():
        store.put(key, value, replicas=2)
    store.close()
    again = NodeStore(budget=50_000, directory=tmp_path, durable=True)
    assert {info.key: info.replicas for info in again.keys()} == dict.fromkeys(values, 2)
    for key, value in values.items():
        stored = again.get(key)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(stored, value)
        else:
            assert stored == value if isinstance(value, (bytes, FrameMeta)) else stored.equals(value)
    again.delete(Key("t"))
    again.close()
    assert Key("t") not in {info.key for info in NodeStore(directory=tmp_path, durable=True).keys()}


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "delete"])
def test_a_damaged_file_is_never_served(tmp_path, damage):
    store = NodeStore(budget=0, directory=tmp_path, durable=True)
    store.put(Key("t"), table(10_000, 1))
    store.put(Key("u"), table(10_000, 2))
    store.close()
    victim = files_of(tmp_path)[0]
    if damage == "corrupt":
        with open(victim, "r+b") as file:
            file.seek(victim.stat().st_size // 2)
            byte = file.read(1)
            file.seek(-1, os.SEEK_CUR)
            file.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "truncate":
        os.truncate(victim, victim.stat().st_size - 100)
    else:
        victim.unlink()
    reported = []
    again = NodeStore(
        budget=0, directory=tmp_path, durable=True, on_damage=lambda key, why: reported.append((key, why))
    )
    served = []
    for key in (Key("t"), Key("u")):
        try:
            served.append(again.get(key))
        except KeyError as error:
            assert "dropped" in str(error) or "no value" in str(error)
    assert len(served) == 1 and served[0].equals(table(10_000, served[0]["x"][0].as_py()))
    if damage == "corrupt":  # found when first read
        [(key, why)] = reported
        assert why == f"its file {victim} fails its checksum"
    else:
        assert [why for _, why in again.damaged]  # found when the directory was opened
    assert len(again.keys()) == 1
    assert len(files_of(tmp_path)) == 1


def test_one_directory_serves_one_node_at_a_time(tmp_path):
    store = NodeStore(directory=tmp_path, durable=True)
    with pytest.raises(DiskError, match=f"cannot use {tmp_path}.*another eau2 node"):
        NodeStore(directory=tmp_path, durable=True)
    store.close()
    NodeStore(directory=tmp_path, durable=True).close()


def tmpfs(mount, options: str):
    """Mount a tmpfs at `mount` (needs root: else skip); unmount it after the test."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path / "small", "size=2m")


@pytest.fixture
def read_only_disk(tmp_path):
    yield from tmpfs(tmp_path / "ro", "ro,size=1m")


def test_a_read_only_directory_is_refused_by_name(read_only_disk):
    with pytest.raises(DiskError, match=f"cannot use {read_only_disk / 'node'} for eau2's files: Read-only"):
        NodeStore(directory=read_only_disk / "node", durable=True)


@pytest.mark.parametrize("durable", [True, False])
def test_a_full_disk_refuses_the_put_and_loses_nothing(small_disk, durable):
    store = NodeStore(budget=300_000, directory=small_disk / "node", durable=durable)
    kept = {}
    with pytest.raises(DiskError, match=f"cannot write to {small_disk / 'node'}: the disk is full"):
        for i in range(40):
            kept[Key(f"t{i}")] = table(20_000, i)  # 0.3 MB each
            store.put(Key(f"t{i}"), kept[Key(f"t{i}")])
    refused = Key(f"t{i}")
    del kept[refused]
    assert refused not in store
    assert store.memory_bytes <= 300_000
    for key, value in kept.items():
        assert store.get(key).equals(value)
    store.delete(Key("t0"))  # room again: puts work
    store.put(refused, table(20_000, 99))
    assert store.get(refused).equals(table(20_000, 99))
    store.close()


def test_deferred_values_are_served_at_once_and_kept_after_sync(tmp_path):
    store = NodeStore(budget=10**8, directory=tmp_path, durable=True)
    for i in range(5):
        store.put(Key(f"t{i}"), table(10_000, i), deferred=True)
        assert store.get(Key(f"t{i}")).equals(table(10_000, i))
    store.delete(Key("t4"))  # deleted while (perhaps) being written: no file stays
    store.sync()
    store.close()
    again = NodeStore(directory=tmp_path, durable=True)
    assert sorted(info.key.name for info in again.keys()) == ["t0", "t1", "t2", "t3"]
    assert len(files_of(tmp_path)) == 4


def test_a_deferred_write_that_fails_is_reported_by_sync(small_disk):
    store = NodeStore(budget=10**8, directory=small_disk / "node", durable=True)
    for i in range(12):  # 0.3 MB each on a 2 MB disk
        store.put(Key(f"t{i}"), table(20_000, i), deferred=True)
    with pytest.raises(DiskError, match=f"cannot write to {small_disk / 'node'}: the disk is full"):
        store.sync()
    store.sync()  # reported once
    kept = [info.key for info in store.keys()]
    assert 0 < len(kept) < 12
    assert all(store.get(key).equals(table(20_000, int(key.name[1:]))) for key in kept)
    store.close()
    assert sorted(
        info.key for info in NodeStore(directory=small_disk / "node", durable=True).keys()
    ) == sorted(kept)


def test_spill_directories_left_by_killed_nodes_are_removed(tmp_path):
    alive = ValueFiles(tmp_path / "eau2-spill-alive")
    alive.write("0/x", "bytes", b"kept", 1, 4)
    killed = tmp_path / "eau2-spill-killed"  # a node killed -9 left its files and lock file
    killed.mkdir()
    (killed / "lock").touch()
    os.utime(killed / "lock", (1, 1))  # long ago: a fresh one may not be locked yet
    (killed / "0123.table").write_bytes(b"x" * 1000)
    remove_abandoned(tmp_path, "eau2-spill-*")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eau2-spill-alive"]
    assert alive.read("0/x") == b"kept"
    alive.close()
    assert list(tmp_path.iterdir()) == []


def test_deferred_values_keep_memory_within_the_budget(tmp_path):
    store = NodeStore(budget=1_000_000, directory=tmp_path, durable=True)
    for i in range(8):  # 0.17 MB each
        store.put(Key(f"t{i}"), table(10_000, i), deferred=True)
    store.sync()
    assert store.memory_bytes <= 1_000_000
    assert all(store.get(Key(f"t{i}")).equals(table(10_000, i)) for i in range(8))
    store.close()


def test_a_failed_deferred_write_is_reported_to_its_own_write_only(small_disk):
    store = NodeStore(budget=10**8, directory=small_disk / "node", durable=True)
    for i in range(2):  # 0.3 MB each on a 2 MB disk: write A fits, write B does not
        store.put(Key.internal(f"f#0#A#{i}", 0), table(20_000, i), deferred=True)
    for i in range(10):
        store.put(Key.internal(f"f#0#B#{i}", 0), table(20_000, i), deferred=True)
    store.sync("f#0#A#")
    with pytest.raises(DiskError, match="the disk is full"):
        store.sync("f#0#B#")
    held = {info.key.name for info in store.keys()}
    assert {"f#0#A#0", "f#0#A#1"} <= held
    store.close()


def test_a_value_arriving_in_pieces_for_a_dropped_write_is_refused(tmp_path):
    store = NodeStore(directory=tmp_path, durable=True)
    chunk = Key.internal("f#0#tag#0", 0)
    incoming = store.receive(chunk, shape_of(b"x" * 100, 40))
    incoming.write(b"x" * 40)
    store.drop("f#0#tag#")  # the write is taken back while the piece arrive
    incoming.write(b"x" * 60)
    with pytest.raises(KeyError, match="taken back"):
        incoming.finish()
    assert chunk not in store
    store.close()
    assert NodeStore(directory=tmp_path, durable=True).keys() == []


def test_an_update_interrupted_at_any_step_leaves_one_whole_version(tmp_path):
    """A kill -9 between the new file and its entry: the old version is served."""
    script = f"""
import os, signal
from eau2 import Key
from eau2.store import files
from eau2.store.node import NodeStore
from eau2.store.pieces import shape_of
from eau2.store.values import FrameMeta, StoredChunk
store = NodeStore(directory={str(tmp_path)!r}, durable=True)
store.put(Key("f"), FrameMeta("I", ["x"], [StoredChunk("f#0#t#0", 10, 80, (0,))], 2, 0, "t"))
files.write_synced = lambda path, data: os.kill(os.getpid(), signal.SIGKILL)
store.update(Key("f"), FrameMeta("I", ["x"], [StoredChunk("f#0#t#0", 10, 80, (0, 1))], 2, 0, "t"))
"""
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    again = NodeStore(directory=tmp_path, durable=True)
    assert again.get(Key("f")).chunks[0].holders == (0,)
    assert again.damaged == []


def test_a_scrub_finds_damaged_files_before_they_are_read(tmp_path):
    store = NodeStore(directory=tmp_path, durable=True)
    for i in range(3):
        store.put(Key(f"t{i}"), table(1_000, i))
    store.close()
    victim = files_of(tmp_path)[1]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    reported = []
    again = NodeStore(directory=tmp_path, durable=True, on_damage=lambda key, why: reported.append(why))
    assert again.scrub() == 1
    assert reported == [f"its file {victim} fails its checksum"]
    assert len(again.keys()) == 2 and again.scrub() == 0


def test_a_directory_a_newer_eau2_wrote_is_refused_and_kept_whole(tmp_path):
    store = NodeStore(directory=tmp_path, durable=True)
    store.put(Key("t"), table(1_000, 1))
    store.put(Key("u"), table(1_000, 2))
    store.close()
    entry = sorted(tmp_path.glob("*.entry"))[0]
    written = entry.read_bytes()
    entry.write_text(json.dumps({**json.loads(written), "checksum_kind": "crc32c"}))
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(
        DiskError,
        match=rf"{entry.name} has fields this version of eau2 does not know "
        r"\(checksum_kind\), so a newer eau2 wrote it",
    ):
        NodeStore(directory=tmp_path, durable=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing deleted
    entry.write_bytes(written)  # as this version writes it: served again (the lock was let go)
    again = NodeStore(directory=tmp_path, durable=True)
    assert again.get(Key("t")).equals(table(1_000, 1)) and again.get(Key("u")).equals(table(1_000, 2))
    again.close()
