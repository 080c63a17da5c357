"""Data in and out on Dask nodes: parallel read_sor, the dask.dataframe view, from_dask."""

import contextlib
import gzip
import itertools
import json
import socket
import subprocess
import sys
import time

import dask.dataframe as dd
import distributed
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dask.dataframe.dask_expr._expr import ArrowStringConversion
from dask.dataframe.dask_expr.io import FromMapProjectable
from distributed import Client, LocalCluster

import eau2_dask
from eau2 import DataFrame, Key, SorError, SorWarning, read_sor
from tests.linus_reference import degrees_of_linus
from tests.test_examples_local import plain_count


@pytest.mark.parametrize("blocksize", [1000, 65_536, 10 << 20])
@pytest.mark.parametrize("name", ["commits", "projects"])
def test_read_sor_equals_the_local_reader(client, data_dir, blocksize, name):
    path = data_dir / "linus" / "ghtorrent-10k" / f"{name}.ltgt"
    stored = eau2_dask.read_sor(str(path), client=client, blocksize=blocksize)
    assert DataFrame(stored.to_arrow()) == read_sor(path)
    assert stored.nchunks == max(1, -(-path.stat().st_size // blocksize))
    homes = [stored.chunk_home(i) for i in range(stored.nchunks)]
    # Runs of consecutive chunks, each kept where it was parsed. A block's task may still
    # run on another worker than planned (its pinning is loose), so one may be out of place.
    assert sum(later < earlier for earlier, later in itertools.pairwise(homes)) <= 1, homes
    if stored.nchunks >= 3:
        shares = [homes.count(node) * blocksize for node in range(3)]
        assert max(shares) - min(shares) <= 2 * blocksize, homes  # about an equal share each


def test_globs_lists_and_compressed_files(client, data_dir, tmp_path):
    text = b"".join(b"<%d> <%d.5>\n" % (i, i) for i in range(3000))
    for i in range(3):
        (tmp_path / f"part-{i}.sor").write_bytes(text)
    (tmp_path / "part-3.sor.gz").write_bytes(gzip.compress(text))
    one = read_sor(text)
    globbed = eau2_dask.read_sor(str(tmp_path / "part-*.sor*"), client=client, blocksize=5000)
    assert globbed.nrows == 4 * one.nrows
    assert DataFrame(globbed.to_arrow()).to_arrow().slice(9000).equals(one.to_arrow())
    listed = eau2_dask.read_sor(
        [str(tmp_path / "part-0.sor"), str(tmp_path / "part-1.sor")], "listed", client=client
    )
    assert (listed.key, listed.nrows) == (Key("listed"), 2 * one.nrows)


def test_dropped_lines_are_counted_and_named_by_file_line(client, tmp_path):
    path = tmp_path / "bad.sor"
    path.write_bytes(b"".join(b"<%d>\n" % i if i != 2500 else b"<x y>\n" for i in range(3000)))
    with pytest.warns(SorWarning, match=r"bad\.sor line 2501"):
        stored = eau2_dask.read_sor(str(path), client=client, blocksize=4000)
    assert (stored.nrows, stored.dropped_rows) == (2999, 1)


def test_bad_input_names_the_file(client, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        eau2_dask.read_sor(str(tmp_path / "nothing-here*.sor"), client=client)
    path = tmp_path / "words.sor"
    path.write_bytes(b"<a> <b>\n" * 100)
    before = eau2_dask.connect(client).keys()
    with pytest.raises(SorError, match="does not match"):
        eau2_dask.read_sor(str(path), client=client, schema="II")
    assert eau2_dask.connect(client).keys() == before  # its chunks were taken back


def _slow_parses(seconds: float) -> None:
    """On a worker: parsing a block takes `seconds` longer (0: as it was)."""
    import eau2_dask.read
    from eau2.distributed import load

    def slow(origin, storage_options):
        time.sleep(seconds)
        return load.parse_chunk(origin, storage_options)

    eau2_dask.read.parse_chunk = slow if seconds else load.parse_chunk


def test_an_interrupted_read_leaves_nothing_stored(client, tmp_path, monkeypatch):
    import eau2_dask.read

    path = tmp_path / "slow.sor"
    path.write_bytes(b"".join(b"<%d> <%d>\n" % (i, 2 * i) for i in range(3000)))
    before = eau2_dask.connect(client).keys()

    def interrupted(client, futures, progress, timeout, urlpath):  # Ctrl-C once the first block is in
        distributed.wait(futures, return_when="FIRST_COMPLETED")
        raise KeyboardInterrupt

    client.run(_slow_parses, 1.5)
    monkeypatch.setattr(eau2_dask.read, "_wait", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            eau2_dask.read_sor(str(path), "interrupted", client=client, blocksize=3000)
        time.sleep(3)  # the blocks still being parsed when it was interrupted finish meanwhile
        assert eau2_dask.connect(client).keys() == before
    finally:
        client.run(_slow_parses, 0)


def test_a_read_that_times_out_says_so_and_leaves_nothing_stored(client, tmp_path):
    path = tmp_path / "slow.sor"
    path.write_bytes(b"".join(b"<%d> <%d>\n" % (i, 2 * i) for i in range(3000)))
    before = eau2_dask.connect(client).keys()
    client.run(_slow_parses, 1.5)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"slow.sor did not finish within 0.5 s \(\d+ of \d+ blocks"):
            eau2_dask.read_sor(str(path), "timed-out", client=client, blocksize=3000, timeout=0.5)
        assert time.monotonic() - started < 2
        time.sleep(3)  # the blocks still being parsed finish meanwhile, and are refused
        assert eau2_dask.connect(client).keys() == before
    finally:
        client.run(_slow_parses, 0)


def test_to_dask_equals_pandas_keeps_nulls_and_reads_locally(client):
    text = b"".join(
        b"<%d> <%s> <%s>\n" % (i % 7, b"" if i % 5 else b"%d.5" % i, b'"w%d"' % (i % 3))
        for i in range(20_000)
    )
    path = fsspec.open("file:///tmp/eau2-to-dask.sor", "wb")
    with path as f:
        f.write(text)
    stored = eau2_dask.read_sor("/tmp/eau2-to-dask.sor", client=client, blocksize=20_000)
    expected = read_sor(text).to_pandas()
    client.run(lambda dask_worker: dask_worker.extensions["eau2"].reads.clear())
    ddf = stored.to_dask(partition_size=60_000)  # a few chunks each
    assert 3 <= ddf.npartitions < stored.nchunks
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), expected)
    assert ddf["1"].isna().sum().compute() == expected["1"].isna().sum() > 0
    pd.testing.assert_series_equal(
        ddf.groupby("2")["0"].sum().compute().sort_index(), expected.groupby("2")["0"].sum().sort_index()
    )
    reads = client.run(lambda dask_worker: dict(dask_worker.extensions["eau2"].reads))
    assert sum(r.get("remote", 0) for r in reads.values()) == 0
    assert sum(r.get("local", 0) for r in reads.values()) >= stored.nchunks, (reads, stored.nchunks)
    # A computation's partitions convert only the columns it uses.
    projected = ddf["1"].sum().expr.optimize(fuse=False).find_operations(FromMapProjectable)
    assert [operation.columns for operation in projected] == [["1"]]
    assert ddf[["0", "2"]].compute().reset_index(drop=True).equals(expected[["0", "2"]])


def _kept_bytes(client) -> int:
    return sum(client.run(lambda dask_worker: dask_worker.extensions["eau2"].converted.nbytes).values())


def _chunk_reads(client) -> int:
    reads = client.run(lambda dask_worker: sum(dask_worker.extensions["eau2"].reads.values()))
    return sum(reads.values())


def _zero_in_place(part: pd.DataFrame) -> pd.DataFrame:
    part.loc[:, "0"] = 0
    return part


def _zero_through_the_array(part: pd.DataFrame) -> pd.DataFrame:
    part["1"].array[:] = 0
    return part


def _zero_after_making_it_writable(part: pd.DataFrame) -> pd.DataFrame:
    """What a library handed a partition's numpy values may do (torch.from_numpy, ...)."""
    for values in (part["1"].to_numpy(), part["0"].array._data):
        values.flags.writeable = True
        values[:] = 0
    return part


def test_to_dask_keeps_the_columns_it_converted_until_the_frame_is_deleted(client, tmp_path):
    # Column 0 lacks a value now and then (Int64: converted, so kept, in every partition);
    # column 1 is plain floats (joined once, then shared with the chunks, not kept).
    path = tmp_path / "kept.sor"
    path.write_bytes(
        b"".join(
            b'<%s> <%d.5> <"w%d">\n' % (b"" if i % 1000 == 0 else b"%d" % i, i, i % 3) for i in range(20_000)
        )
    )
    kv = eau2_dask.connect(client)
    before = _kept_bytes(client)
    stored = eau2_dask.read_sor(str(path), "kept", client=client, blocksize=20_000)
    ddf = stored.to_dask(partition_size=200_000)  # a few chunks each: their numbers are joined
    assert ddf.npartitions < stored.nchunks
    total, floats = sum(i for i in range(20_000) if i % 1000), sum(range(20_000)) + 10_000
    assert ddf["0"].sum().compute() == total
    assert ddf["1"].sum().compute() == floats
    assert _kept_bytes(client) - before == 20_000 * (8 + 1)  # Int64's values and mask
    reads = _chunk_reads(client)
    assert ddf["0"].sum().compute() == total  # from the kept columns
    assert _chunk_reads(client) == reads
    assert ddf["1"].sum().compute() == floats
    # A computation that changes its partition in place leaves the kept columns as they were.
    assert ddf.map_partitions(_zero_in_place, meta=ddf._meta)["0"].sum().compute() == 0
    with pytest.raises(ValueError, match="read-only"):
        ddf.map_partitions(_zero_through_the_array, meta=ddf._meta).compute()
    with pytest.raises(ValueError, match="WRITEABLE"):
        ddf.map_partitions(_zero_after_making_it_writable, meta=ddf._meta).compute()
    assert ddf["0"].sum().compute() == total
    assert ddf["1"].sum().compute() == floats
    assert kv.get(Key("kept")).to_arrow().equals(read_sor(str(path)).to_arrow())  # the chunks too
    kv.delete(Key("kept"))
    assert _kept_bytes(client) == before
    path.write_bytes(b"".join(b'<%d> <1> <"v">\n' % (2 * i) for i in range(20_000)))
    again = eau2_dask.read_sor(str(path), "kept", client=client, blocksize=20_000)
    assert again.to_dask(partition_size=200_000)["0"].sum().compute() == 2 * sum(range(20_000))
    kv.delete(Key("kept"))


def _held_addresses(chunks: list, position: int, dask_worker) -> dict[int, int]:
    """Where each chunk this node holds in memory keeps column `position`'s values."""
    store = dask_worker.extensions["eau2"].store
    held = {}
    for index, chunk in enumerate(chunks):
        if chunk.key in store and store.in_memory(chunk.key):
            values = store.get(chunk.key).column(position).chunk(0)
            held[index] = values.buffers()[1].address + values.offset * 8
    return held


def _address(part: pd.Series) -> pd.Series:
    return pd.Series([part.to_numpy().ctypes.data])


def test_to_dask_joins_numbers_once_and_the_stored_chunks_share_the_join(client, tmp_path):
    path = tmp_path / "shared.sor"
    path.write_bytes(b"".join(b"<%d> <%d.25>\n" % (i, i) for i in range(30_000)))
    stored = eau2_dask.read_sor(str(path), "shared", client=client, blocksize=30_000)
    ddf = stored.to_dask(partition_size=150_000)  # several chunks each
    assert ddf.npartitions < stored.nchunks
    chunks = stored.meta.chunks
    kept = _kept_bytes(client)
    before = client.run(_held_addresses, chunks, 1)
    starts = ddf["1"].map_partitions(_address, meta=("a", "int64")).compute().tolist()
    after = client.run(_held_addresses, chunks, 1)
    assert before != after  # the chunks now hold slices of the join ...
    held = {address for addresses in after.values() for address in addresses.values()}
    assert set(starts) <= held  # ... which the partitions are made of
    again = ddf["1"].map_partitions(_address, meta=("a", "int64")).compute().tolist()
    assert again == starts  # found in place: joined once, no copy
    assert _kept_bytes(client) == kept
    assert ddf["1"].sum().compute() == sum(range(30_000)) + 0.25 * 30_000
    assert stored.to_arrow().equals(read_sor(str(path)).to_arrow())  # the chunks are unchanged
    eau2_dask.connect(client).delete(Key("shared"))


def _zero_through_the_owners(part: pd.DataFrame) -> pd.DataFrame:
    """What a hostile library may do: make the array that owns a column's memory writable,
    or write through the Arrow buffers it views."""
    for name in part.columns:
        owner = getattr(part[name].array, "_data", None)
        if owner is None:
            owner = (
                part[name].array._pa_array
                if hasattr(part[name].array, "_pa_array")
                else part[name].to_numpy()
            )
        while isinstance(owner, np.ndarray) and owner.base is not None:
            with contextlib.suppress(ValueError):  # not an owner: it cannot be made writable
                owner.flags.writeable = True
                owner[:] = 0
            owner = owner.base
        arrays = (
            owner.chunks
            if isinstance(owner, pa.ChunkedArray)
            else [owner]
            if isinstance(owner, pa.Array)
            else []
        )
        for buffer in (b for array in arrays for b in array.buffers() if b is not None):
            values = np.frombuffer(buffer, np.uint8)
            with contextlib.suppress(ValueError):  # an immutable buffer
                values.flags.writeable = True
                values[:] = 0
    return part


def test_no_write_through_a_partition_changes_the_stored_chunks(client, tmp_path):
    # Column 0 lacks its last value only (Int64, no missing value in the first partitions).
    path = tmp_path / "owners.sor"
    path.write_bytes(
        b"".join(b'<%s> <%d.5> <"w%d">\n' % (b"" if i == 5999 else b"%d" % i, i, i) for i in range(6000))
    )
    stored = eau2_dask.read_sor(str(path), "owners", client=client, blocksize=6_000)
    expected = read_sor(str(path)).to_arrow()
    for ddf in (stored.to_dask(partition_size=40_000), stored.to_dask(partition_size=None)):
        assert ddf.npartitions < stored.nchunks or ddf.npartitions == stored.nchunks
        assert str(ddf.dtypes["0"]) == "Int64"
        assert ddf["0"].sum().compute() == sum(range(5999))  # Int64 is converted, so kept
        ddf.map_partitions(_zero_through_the_owners, meta=ddf._meta).compute()
        assert stored.to_arrow().equals(expected)
        assert ddf["0"].sum().compute() == sum(range(5999))  # the kept columns too
        assert ddf["1"].sum().compute() == sum(range(6000)) + 3000
        assert (ddf["2"] == "w7").sum().compute() == 1
    eau2_dask.connect(client).delete(Key("owners"))


def test_to_dask_types_are_the_frames_in_every_partition(client):
    # Column 1 lacks values only near the end, so only the last chunks have any missing.
    text = b"".join(b"<%d> <%s> <1.5> <1>\n" % (i, b"" if i > 9_500 else b"%d" % i) for i in range(10_000))
    with fsspec.open("file:///tmp/eau2-to-dask-types.sor", "wb") as f:
        f.write(text)
    stored = eau2_dask.read_sor("/tmp/eau2-to-dask-types.sor", client=client, blocksize=20_000)
    assert stored.nchunks > 2
    ddf = stored.to_dask()
    expected = {"0": "int64", "1": "Int64", "2": "float64", "3": "bool"}
    assert {name: str(dtype) for name, dtype in ddf.dtypes.items()} == expected
    assert not list(ddf.expr.find_operations(ArrowStringConversion))  # text needs no conversion task
    parts = client.compute(ddf.to_delayed(), sync=True)
    assert all({name: str(t) for name, t in part.dtypes.items()} == expected for part in parts)
    assert ddf["1"].isna().sum().compute() == 10_000 - 9_501


def test_from_dask_stores_partitions_where_they_were_computed(client):
    kv = eau2_dask.connect(client)
    source = DataFrame.from_array(Key("ramp", 1), kv, np.arange(50_000))
    ddf = source.to_dask()
    stored = eau2_dask.from_dask(ddf[ddf["0"] % 2 == 0], "evens", client=client)
    assert stored.nrows == 25_000 and stored.get(0, 1) == 2
    assert str(stored.schema) == "I"
    clash = ddf.assign(**{"1": ddf["0"]}).rename(columns={"0": 1})  # 1 and "1": one name as text
    with pytest.raises(ValueError, match="column name '1' occurs more than once"):
        eau2_dask.from_dask(clash, "clash", client=client)
    assert Key("clash") not in {info.key for info in kv.keys()}


def test_from_dask_stores_its_own_copy_of_the_partitions(client):
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(3_000), "y": np.arange(3_000) * 0.5}), npartitions=3)
    kept = ddf.persist()
    stored = eau2_dask.from_dask(kept, "own", client=client)
    kept.map_partitions(_zero_through_the_owners, meta=kept._meta).compute()
    assert stored.to_arrow().column("x").to_pylist() == list(range(3_000))
    eau2_dask.connect(client).delete(Key("own"))


def test_memory_urls_on_a_threaded_cluster_registered_by_the_client():
    with fsspec.open("memory://eau2/x.sor", "wb") as f:
        f.write(b"".join(b'<%d> <"s%d">\n' % (i, i) for i in range(10_000)))
    # Worker threads in this process (inproc comms, no sockets) share memory:// files.
    cluster = LocalCluster(n_workers=2, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:
        stored = eau2_dask.read_sor("memory://eau2/x.sor", client=client, blocksize=10_000)
        assert DataFrame(stored.to_arrow()) == read_sor("memory://eau2/x.sor")


def eau2_cli(*args):
    return subprocess.run([sys.executable, "-m", "eau2", *args], capture_output=True, text=True, timeout=300)


def test_wordcount_command(data_dir, tmp_path):
    path = data_dir / "text" / "asyoulik.txt"
    out = tmp_path / "counts.tsv"
    result = eau2_cli("run", "wordcount", str(path), "--top", "3", "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    expected = plain_count(path)
    top = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert summary == {
        "distinct": len(expected),
        "total": sum(expected.values()),
        "top": [list(t) for t in top],
    }
    written = dict(line.split("\t") for line in out.read_text().splitlines())
    assert {word: int(count) for word, count in written.items()} == expected


@pytest.mark.parametrize("compat", [False, True])
def test_linus_command(data_dir, compat):
    folder = data_dir / "linus" / "ghtorrent-100k"
    result = eau2_cli("run", "linus", "--data", str(folder), "--json", *(["--compat"] if compat else []))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"stages": degrees_of_linus(folder, compat=compat)}
    stages = [line for line in result.stdout.splitlines() if line.startswith("[node 0] stage")]
    assert len(stages) == 4


@pytest.fixture
def s3(tmp_path):
    """A local S3 (moto) on 127.0.0.1 with a bucket, and the storage options to reach it."""
    port = _free_port()
    log = (tmp_path / "moto.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"},
    }
    try:
        import boto3

        s3_client = boto3.client(
            "s3", aws_access_key_id="testing", aws_secret_access_key="testing", **options["client_kwargs"]
        )
        for _ in range(100):  # until the server answers
            try:
                s3_client.create_bucket(Bucket="eau2-test")
                break
            except Exception:
                time.sleep(0.1)
        yield fsspec.filesystem("s3", **options), options
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_urls_through_fsspec(client, s3):
    fs, options = s3
    text = b"".join(b'<%d> <"user%d"> <%d.25>\n' % (i, i % 97, i) for i in range(20_000))
    with fs.open("eau2-test/data.sor", "wb") as f:
        f.write(text)
    local = read_sor("s3://eau2-test/data.sor", storage_options=options)
    assert local == read_sor(text)
    stored = eau2_dask.read_sor(
        "s3://eau2-test/data.sor", client=client, storage_options=options, blocksize=50_000
    )
    assert stored.nchunks > 3
    assert DataFrame(stored.to_arrow()) == local
