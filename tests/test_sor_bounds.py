"""The SoR reader is bounded under any input: memory a small multiple of the input (or of
its block) whatever the shape of the lines, limits on columns and line length that fail
naming the file and the line, and clear errors for damaged compressed files."""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import pickle
import subprocess
import sys
import textwrap
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eau2_dask
from eau2 import Key, KVStore, SorError, read_sor
from eau2.errors import LineTooLong
from eau2.sor import reader, source
from eau2.sor.block import MAX_COLUMNS, MAX_LINE_BYTES, parse_block
from eau2.store.inprocess import InProcessCluster
from tests import reference_sor as ref
from tests.test_sor_properties import FIELDS, _encode, same_row

MB = 1 << 20


def peak_rss_mb(code: str) -> tuple[float, dict]:
    """Run `code` in a fresh interpreter, after importing eau2; how much its peak resident
    memory grew over the peak after the imports (MiB), and what it printed (JSON)."""
    script = (
        textwrap.dedent(
            """
        import json, resource, warnings
        import eau2
        warnings.simplefilter("ignore")
        # load every kernel first: numba and its compiled code are not the input's memory
        # (a small input runs the kernel's Python source, so it loads nothing)
        from eau2.sor import kernel
        for entry in ("count_lines", "first_newline", "last_line_end", "infer_types", "parse"):
            getattr(kernel, entry).compiled()
        kernel.gather_strings.compiled(), kernel.gather.compiled()
        eau2.read_sor(b'<1> <+2> <.5> <0.1000000000000000055511> <"a"> <b> <> <x>\\n<1>\\n')
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = {}
        """
        )
        + textwrap.dedent(code)
        + textwrap.dedent(
            """
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
        print(json.dumps({"grown_kib": grown, **result}))
        """
        )
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out.pop("grown_kib") / 1024, out


@pytest.fixture(scope="module")
def long_line(tmp_path_factory):
    """A file of one 200 MB line: a single quoted string."""
    path = tmp_path_factory.mktemp("bounds") / "long.sor"
    with open(path, "wb") as f:
        f.write(b'<"')
        f.write(b"x" * (200 * MB))
        f.write(b'">\n')
    return path


# Wide input


def test_a_thousand_string_columns_read_in_memory_a_small_multiple_of_the_input(tmp_path):
    path = tmp_path / "wide.sor"
    row = b" ".join(b'<"c%d">' % column for column in range(1000)) + b"\n"
    path.write_bytes(row * 2000)  # 13 MB; each string column used to reserve all of it
    size_mb = path.stat().st_size / MB
    grown, out = peak_rss_mb(
        f"""
        frame = eau2.read_sor({str(path)!r})
        result = {{"shape": [frame.nrows, frame.ncols], "corner": frame.get(999, 1999)}}
        """
    )
    assert out == {"shape": [2000, 1000], "corner": "c999"}
    assert grown < 4 * size_mb + 64, f"peak grew {grown:.0f} MiB reading {size_mb:.0f} MB"


def test_a_wide_block_parses_strings_of_every_column():
    frame = read_sor(b'<"a"> <b> <"c d"> <>\n<e> <"f"> <> <"g">\n<"h">\n')
    assert frame.to_arrow().to_pydict() == {
        "0": ["a", "e", "h"],
        "1": ["b", "f", None],
        "2": ["c d", None, None],
        "3": [None, "g", None],
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from("BIFS"), min_size=30, max_size=90).map("".join),
    st.lists(st.lists(FIELDS, max_size=4).map(" ".join), max_size=60),
)
def test_short_rows_of_a_wide_schema_agree_with_the_reference_reader(schema, lines):
    # Rows far shorter than the schema make the parser grow its arrays as it goes.
    data = _encode(lines)
    codes = ["BIFS".index(t) for t in schema]
    _, expected_rows, expected_dropped = ref.read(data, codes)
    parsed = parse_block(data, schema)
    got = list(zip(*parsed.batch.to_pydict().values(), strict=True))
    assert len(got) == len(expected_rows)
    for got_row, expected_row in zip(got, expected_rows, strict=True):
        assert same_row(got_row, expected_row), (got_row, expected_row)
    assert parsed.dropped_rows == expected_dropped


def test_many_padded_rows_of_a_wide_schema():
    frame = read_sor(b"<1> <2.5> <x>" + b" <>" * 997 + b"\n" + b"<7>\n" * 20_000)
    assert (frame.nrows, frame.ncols) == (20_001, 1000)
    assert frame.get(0, 20_000) == 7 and frame.is_missing(2, 20_000)


# Columns


def test_a_million_fields_in_one_line_is_refused_quickly_in_little_memory(tmp_path):
    path = tmp_path / "million.sor"
    path.write_bytes(b"<1> " * 1_000_000 + b"\n<0>\n")  # 4 MB: took 20 s and 1.8 GB
    grown, out = peak_rss_mb(
        f"""
        try:
            eau2.read_sor({str(path)!r})
        except eau2.SorError as error:
            result["error"] = str(error)
        result["explicit"] = eau2.read_sor({str(path)!r}, schema="B").dropped_rows
        """
    )
    assert out["error"] == (
        f"{path}: line 1 has more than max_columns (10,000) fields; pass a larger max_columns= to read it"
    )
    assert out["explicit"] == 1  # with a schema, it is a row with too many fields
    assert grown < 64, f"peak grew {grown:.0f} MiB"


def test_max_columns_counts_among_the_inferred_lines_only():
    data = b"<1> <2>\n" + b"<3>\n" * 600 + b"<1> <2> <3>\n"
    with pytest.raises(SorError, match=r"<bytes>: line 1 has more than max_columns \(1\) fields"):
        read_sor(data, max_columns=1)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        frame = read_sor(data, max_columns=2)  # the wide last line is past the first 500
    assert (frame.ncols, frame.dropped_rows) == (2, 1)


def test_a_schema_wider_than_max_columns_is_refused():
    with pytest.raises(SorError, match=r"schema has 3 columns, more than max_columns \(2\)"):
        read_sor(b"<1>\n", schema="III", max_columns=2)
    with pytest.raises(SorError, match="more than max_columns"):
        parse_block(b"<1>\n", "III", max_columns=2)


def test_an_empty_schema_is_refused_by_both_readers_not_taken_for_none(kv, tmp_path):
    path = tmp_path / "two.sor"
    path.write_bytes(b"<1> <2>\n<3> <4>\n")
    for read in (lambda: read_sor(path, schema=""), lambda: kv.read_sor(str(path), Key("x"), schema="")):
        with pytest.raises(SorError, match="schema '' has no columns"):
            read()
    assert kv.keys() == []


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_limits_must_be_whole_numbers_of_at_least_one(value):
    for limit in ("max_columns", "max_line_bytes"):
        with pytest.raises(ValueError, match=f"{limit} must be a whole number >= 1"):
            read_sor(b"<1>\n", **{limit: value})


# Line length


def test_a_200_mb_line_is_refused_by_default_naming_file_and_line(long_line):
    with pytest.raises(LineTooLong) as caught:
        read_sor(long_line)
    assert str(caught.value) == (
        f"{long_line}: line 1 is longer than max_line_bytes (67,108,864 bytes); "
        "pass a larger max_line_bytes= to read it"
    )
    assert isinstance(caught.value, SorError)


def test_a_200_mb_line_under_a_larger_limit_reads_in_bounded_memory(long_line):
    grown, out = peak_rss_mb(
        f"""
        frame = eau2.read_sor({str(long_line)!r}, max_line_bytes=256 << 20)
        result["length"] = len(frame.to_arrow().column(0)[0].as_py())
        """
    )
    assert out == {"length": 200 * MB}
    assert grown < 3 * 200 + 64, f"peak grew {grown:.0f} MiB reading a 200 MB line"


def test_long_lines_inside_a_block_are_named_by_number():
    data = b"<1>\n<22>\n\n<333>\n"
    with pytest.raises(LineTooLong, match=r"^<bytes>: line 4 is longer than max_line_bytes \(4 bytes\)"):
        read_sor(data, max_line_bytes=4)
    with pytest.raises(LineTooLong, match=r"^<bytes>: line 2 is longer"):
        read_sor(data, schema="I", start=5, max_line_bytes=4)  # counted from the window
    assert read_sor(data, max_line_bytes=5).nrows == 3  # a line's newline is not counted


@pytest.mark.parametrize("explicit", [None, "S"])
def test_lines_longer_than_a_block_grow_it_up_to_the_limit_only(monkeypatch, explicit):
    monkeypatch.setattr(reader, "line_blocks", functools.partial(source.line_blocks, block_bytes=8))
    data = b"<a>\n" * 10 + b'<"' + b"b" * 28 + b'">\n<c>\n'
    assert read_sor(data, schema=explicit, max_line_bytes=32).nrows == 12
    with pytest.raises(LineTooLong, match=r"^<bytes>: line 11 is longer than max_line_bytes \(31 bytes\)"):
        read_sor(data, schema=explicit, max_line_bytes=31)


def test_a_block_never_reads_more_than_the_limit_of_a_long_line():
    class Counting(source.MemorySource):
        largest = 0

        def read(self, start, stop):
            Counting.largest = max(Counting.largest, stop - start)
            return super().read(start, stop)

    src = Counting(b"<1>\n" + b"x" * 10_000 + b"\n")
    with pytest.raises(LineTooLong, match="the line at byte 4 is longer"):
        list(source.line_blocks(src, source.Window.of(src), 16, max_line_bytes=100))
    assert Counting.largest <= 101
    with pytest.raises(LineTooLong, match="the line at byte 4 is longer"):
        source.lines_starting_in(src, 0, 10, max_line_bytes=100)
    assert Counting.largest <= 101
    assert source.lines_starting_in(src, 5, 10, max_line_bytes=100) == (b"", 15)  # no line starts there


def test_line_too_long_survives_pickling():
    error = LineTooLong(10, "f.sor", offset=42)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again)) == (LineTooLong, str(error))


def test_the_defaults():
    assert (MAX_COLUMNS, MAX_LINE_BYTES) == (10_000, 64 << 20)


# The loaders in blocks: LoadPlan, in this process and on Dask nodes


@pytest.fixture
def kv():
    with InProcessCluster(2) as nodes:
        yield KVStore(nodes.transport(0))


def long_line_file(tmp_path):
    path = tmp_path / "data.sor"
    # the 5006-byte line starts at byte 9000, in the third block of 4000 bytes
    path.write_bytes(b"<+1> <a>\n" * 1000 + b"<2> <" + b"b" * 5000 + b">\n" + b"<+3> <c>\n" * 1000)
    return path


@pytest.mark.parametrize("schema", [None, "IS"])
def test_blocks_name_a_long_line_by_its_byte(kv, tmp_path, schema):
    path = long_line_file(tmp_path)
    with pytest.raises(LineTooLong, match=r"data\.sor: the line at byte 9000 is longer than max_line_bytes"):
        kv.read_sor(str(path), Key("x"), blocksize=4000, schema=schema, max_line_bytes=4000)
    frame = kv.read_sor(str(path), Key("y"), blocksize=4000, schema=schema, max_line_bytes=5007)
    assert frame.nrows == 2001


def test_the_loader_limits_columns(kv, tmp_path):
    path = long_line_file(tmp_path)
    with pytest.raises(SorError, match=r"data\.sor: line 1 has more than max_columns \(1\) fields"):
        kv.read_sor(str(path), Key("x"), max_columns=1)
    with pytest.raises(SorError, match="schema has 2 columns, more than max_columns"):
        kv.read_sor(str(path), Key("x"), schema="IS", max_columns=1)


@pytest.mark.parametrize("blocksize", [0, -1, 1.5, True])
def test_blocksize_must_be_at_least_one_byte(kv, tmp_path, blocksize):
    with pytest.raises(ValueError, match="blocksize must be a number of bytes >= 1"):
        kv.read_sor(str(long_line_file(tmp_path)), Key("x"), blocksize=blocksize)


def test_the_parallel_reader_takes_the_limits(client, tmp_path):
    path = long_line_file(tmp_path)
    with pytest.raises(LineTooLong, match=r"data\.sor: the line at byte 9000 is longer than max_line_bytes"):
        eau2_dask.read_sor(str(path), client=client, blocksize=4000, max_line_bytes="4000B")
    with pytest.raises(SorError, match=r"data\.sor: line 1 has more than max_columns \(1\) fields"):
        eau2_dask.read_sor(str(path), client=client, max_columns=1)
    for blocksize in (0, -1, "0B"):
        with pytest.raises(ValueError, match="blocksize must be a number of bytes >= 1"):
            eau2_dask.read_sor(str(path), client=client, blocksize=blocksize)
    assert eau2_dask.read_sor(str(path), client=client, blocksize=4000, max_line_bytes=5007).nrows == 2001


# Damaged compressed files

TEXT = b"<1> <a>\n" * 10_000
COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
@pytest.mark.parametrize("damage", ["truncated", "corrupt", "not compressed"])
def test_damaged_compressed_files_are_errors_naming_them(tmp_path, kv, suffix, damage):
    whole = COMPRESSORS[suffix](TEXT)
    data = {
        "truncated": whole[: len(whole) // 2],
        "corrupt": whole[:12] + bytes(64) + whole[76:],
        "not compressed": TEXT,
    }[damage]
    path = tmp_path / f"t.sor.{suffix}"
    path.write_bytes(data)
    expected = rf"t\.sor\.{suffix}: truncated or corrupt {'gzip' if suffix == 'gz' else suffix} data"
    with pytest.raises(SorError, match=expected):
        read_sor(path)
    with pytest.raises(SorError, match=expected):
        kv.read_sor(str(path), Key("x"))
