"""Column projection at load (`columns=`): both readers give what a full read followed by a
select gives (the same rows, dropped lines included), keep the file's positions as names,
refuse bad positions clearly, and a chunk read again from its file keeps the same columns."""

from __future__ import annotations

import tracemalloc
import warnings

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eau2
import eau2_dask
from eau2 import Key, KVStore, SorError, parse_block, read_sor
from eau2.store.inprocess import InProcessCluster
from eau2.store.values import FrameMeta

# Fields of every type, and ones that make a line drop: wherever they fall, in a column
# kept or not, the line is dropped the same.
FIELDS = st.sampled_from(
    ["<0>", "<1>", "<-7>", "<12>", "<2.5>", "<1e3>", "<hi>", '<"a b">', "<>", "<h i>", "junk", "<x"]
)
LINES = st.lists(st.lists(FIELDS, min_size=1, max_size=5).map(" ".join), min_size=1, max_size=25)


def quietly(read, *args, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eau2.SorWarning)
        return read(*args, **options)


def selected(table: pa.Table, columns) -> pa.Table:
    return table.select([str(c) for c in columns])


def sor(rows: int, bad_from: int = 500) -> bytes:
    """Rows of types B, I, S, F, I; past the lines the schema is inferred from, every 7th
    line has a string in column 1 (an INT column), and is dropped."""
    return b"".join(
        b'<%d> <%s> <"s %d"> <%d.5> <%d>\n' % (i % 2, b"oops" if _bad(i, bad_from) else b"%d" % i, i, i, -i)
        for i in range(rows)
    )


def _bad(i: int, bad_from: int) -> bool:
    return i >= bad_from and i % 7 == 3


@pytest.fixture
def sor_file(tmp_path):
    path = tmp_path / "data.sor"
    path.write_bytes(sor(3_000))
    return str(path)


# -- the local reader ----------------------------------------------------------------------


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(LINES, st.data())
def test_the_local_reader_equals_a_full_read_then_a_select(lines, data):
    text = "\n".join(lines).encode() + b"\n"
    full = quietly(read_sor, text)
    if full.ncols == 0:
        return
    columns = data.draw(st.lists(st.integers(0, full.ncols - 1), min_size=1, unique=True))
    schema = data.draw(st.sampled_from([None, str(full.schema)]))
    got = quietly(read_sor, text, columns=columns, schema=schema)
    assert got.to_arrow().equals(selected(full.to_arrow(), columns))
    assert got.column_names == [str(c) for c in columns]
    assert str(got.schema) == "".join(str(full.schema)[c] for c in columns)
    assert (got.dropped_rows, got.dropped_lines) == (full.dropped_rows, full.dropped_lines)


@pytest.mark.parametrize("columns", [[0], [2, 0], [4, 3, 2], ["3", 0], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
@pytest.mark.parametrize("schema", [None, "BISFI"])
def test_lines_dropped_for_a_column_left_out_are_dropped_all_the_same(columns, schema):
    data = sor(800)
    with pytest.warns(eau2.SorWarning, match=r"line 501: column 1: value does not fit"):
        got = read_sor(data, columns=columns, schema=schema)
    full = quietly(read_sor, data, schema="BISFI")
    dropped = sum(_bad(i, 500) for i in range(800))
    assert got.dropped_rows == full.dropped_rows == dropped > 40
    assert got.nrows == full.nrows == 800 - dropped
    assert got.to_arrow().equals(selected(full.to_arrow(), [int(c) for c in columns]))


def test_a_window_and_dataframe_from_sor_take_columns(sor_file):
    window = quietly(read_sor, sor_file, start=100, length=5_000, columns=[3])
    assert window.to_arrow().equals(
        selected(quietly(read_sor, sor_file, start=100, length=5_000).to_arrow(), [3])
    )
    assert quietly(eau2.DataFrame.from_sor, sor_file, columns=[2]).column_names == ["2"]


def test_the_columns_left_out_are_not_held():
    # A parsed block's columns of one type share arrays: the kept ones are copied out.
    data = sor(100_000, bad_from=10**9)
    for columns in (None, [1]):  # numba loaded and the parser compiled before measuring
        parse_block(data, "BISFI", columns=columns)
    tracemalloc.start()
    try:
        whole = parse_block(data, "BISFI").batch
        peak_full = tracemalloc.get_traced_memory()[0]
        del whole
        one = parse_block(data, "BISFI", columns=[1]).batch
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert one.nbytes == 800_000 and one.column_names == ["1"]
    assert held < one.nbytes + 100_000 < peak_full / 4


def test_each_column_of_numbers_holds_its_own_memory():
    # A stored chunk's column replaced (by a dask view's join, see NodeStore.share) or
    # dropped frees its memory, though the parser fills the columns of a type together.
    data = sor(100_000, bad_from=10**9)
    parse_block(data, "BISFI")  # numba loaded and the parser compiled before measuring
    tracemalloc.start()
    try:
        batch = parse_block(data, "BISFI").batch
        whole = tracemalloc.get_traced_memory()[0]
        batch = batch.drop_columns(["1"])  # the first of the two INT columns
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert batch.column_names == ["0", "2", "3", "4"]
    assert whole - held >= 800_000  # its 100,000 values of 8 bytes


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "error", "message"),
    [
        ([], ValueError, r"columns= is empty"),
        ([1, 3, 1], ValueError, r"columns= names column 1 more than once"),
        ([0, "2", 2], ValueError, r"columns= names column 2 more than once"),
        ([-1, 0], ValueError, r"columns= names column -1: positions are numbered from 0"),
        (["first"], ValueError, r"columns= names 'first', which is not a column"),
        ("3", TypeError, r"columns= is a list of column positions such as \[0, 3\], not '3'"),
        (3, TypeError, r"not 3"),
        ([1.0], TypeError, r"columns= holds column positions \(ints\), not 1.0"),
        ([True], TypeError, r"not True"),
    ],
)
def test_bad_columns_are_refused_before_anything_is_read(columns, error, message):
    with pytest.raises(error, match=message):
        read_sor("no-such-file.sor", columns=columns)
    with pytest.raises(error, match=message):
        parse_block(b"<1>\n", "B", columns=columns)
    with InProcessCluster(1) as cluster, pytest.raises(error, match=message):
        KVStore(cluster.transport(0)).read_sor("no-such-file.sor", columns=columns)


def test_a_column_past_the_rows_names_the_file_and_its_columns(sor_file):
    expected = (
        r"data\.sor: columns= names columns 5, 9, but the rows have 5 columns \(0 to 4\), of schema 'BISFI'"
    )
    with pytest.raises(SorError, match=expected):
        read_sor(sor_file, columns=[0, 9, 5])
    with pytest.raises(SorError, match=r"data\.sor: columns= names column 3, but the rows have 2 columns"):
        read_sor(sor_file, columns=[3], schema="BI")
    with InProcessCluster(2) as cluster:
        kv = KVStore(cluster.transport(0))
        with pytest.raises(SorError, match=expected):
            kv.read_sor(sor_file, Key("wide"), columns=[0, 9, 5])
        assert kv.keys() == []
    with pytest.raises(SorError, match=r"<bytes> has no rows \(it is empty, or none .* column 0 to keep"):
        read_sor(b"\n\n", columns=[0])


# -- stored frames ----------------------------------------------------------------------


def test_kv_read_sor_stores_only_the_columns_asked_for(sor_file):
    with InProcessCluster(3) as cluster:
        kv = KVStore(cluster.transport(0))
        stored = quietly(kv.read_sor, sor_file, Key("picked"), blocksize=9_000, columns=[3, 0])
        local = quietly(read_sor, sor_file, columns=[3, 0])
        assert stored.nchunks > 5
        assert stored.column_names == ["3", "0"] and str(stored.schema) == "FB"
        assert stored.to_arrow().equals(local.to_arrow())
        assert stored.dropped_rows == local.dropped_rows > 0
        assert stored.get(0, 1) == 1.5 and stored.get(1, 1) is True
        for index, chunk in enumerate(stored.meta.chunks):
            held = cluster.transport(None).get(chunk.holders[0], chunk.key)
            assert held.column_names == ["3", "0"]
            assert chunk.origin.columns == (3, 0) and chunk.nbytes == held.nbytes, index


def test_a_chunk_rebuilt_from_its_file_keeps_the_columns(sor_file):
    with InProcessCluster(4) as cluster:
        nodes = cluster.transport(None)
        kv = KVStore(cluster.transport(0))
        for name in ("read", "repaired"):
            quietly(kv.read_sor, sor_file, Key(name), blocksize=9_000, columns=["4", "2"])
        expected = kv.get(Key("read")).to_arrow()
        lost = [c for c in kv.get(Key("read")).meta.chunks if c.holders[0] in (1, 3)]
        cluster.kill(1)
        cluster.kill(3)
        # Read: each lost chunk is read again from its file onto the reading node.
        assert KVStore(cluster.transport(0)).get(Key("read")).to_arrow().equals(expected)
        assert lost and all(nodes.get(0, chunk.key).column_names == ["4", "2"] for chunk in lost)
        # Repair: the lost chunks are read again onto the live nodes.
        cluster.restart(1)
        report = kv.repair()
        assert report.rebuilt == len(lost) and report.lost == {}
        repaired = kv.get(Key("repaired"))
        for chunk in repaired.meta.chunks:
            held = [node for node in nodes.live_nodes() if nodes.info(node, chunk.key) is not None]
            assert held and all(nodes.get(node, chunk.key).column_names == ["4", "2"] for node in held)
        assert repaired.to_arrow().equals(expected)


def test_the_columns_of_an_origin_survive_the_metadata_on_disk(sor_file):
    with InProcessCluster(1) as cluster:
        stored = quietly(KVStore(cluster.transport(0)).read_sor, sor_file, Key("f"), columns=[1, 4])
        again = FrameMeta.from_bytes(stored.meta.to_bytes())
    assert again == stored.meta and again.chunks[0].origin.columns == (1, 4)
    assert again.names == ["1", "4"] and again.schema == "II"


# -- on Dask ------------------------------------------------------------------------------


def test_dask_read_sor_parses_on_the_nodes_and_rebuilds_with_the_columns(client, sor_file):
    stored = quietly(
        eau2_dask.read_sor, sor_file, "dask-picked", client=client, blocksize=9_000, columns=[2, 4]
    )
    local = quietly(read_sor, sor_file, columns=[2, 4])
    assert stored.nchunks > 5 and stored.column_names == ["2", "4"]
    assert stored.to_arrow().equals(local.to_arrow())
    assert stored.dropped_rows == local.dropped_rows
    # A node reads a chunk again from its file, through the RPC every rebuild takes.
    transport = eau2_dask.connect(client).transport
    chunk = stored.meta.chunks[1]
    rebuilt = Key.internal("columns-rebuilt", 0)
    transport.rebuild(2, rebuilt, chunk.origin)
    try:
        assert transport.get(2, rebuilt).equals(transport.get(chunk.holders[0], chunk.key))
    finally:
        transport.delete(2, rebuilt)
        eau2_dask.connect(client).delete(Key("dask-picked"))
