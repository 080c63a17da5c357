"""Where SoR comes from: paths, fsspec URLs, compressed files, bytes; errors that name the input."""

import gzip
import os

import fsspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eau2 import SorError, read_sor
from eau2.sor import reader
from eau2.sor.block import parse_block
from eau2.sor.source import Window, line_blocks, lines_starting_in, open_source

TEXT = b"<1> <a>\n<2> <b>\n<3> <c>\n"


def test_local_path_and_memory_url_and_bytes_agree(tmp_path):
    path = tmp_path / "t.sor"
    path.write_bytes(TEXT)
    with fsspec.open("memory://eau2-test/t.sor", "wb") as f:
        f.write(TEXT)
    frames = [read_sor(path), read_sor(str(path)), read_sor("memory://eau2-test/t.sor"), read_sor(TEXT)]
    assert all(frame == frames[0] for frame in frames)
    assert frames[0].nrows == 3


def test_compressed_files_are_read_whole(tmp_path):
    path = tmp_path / "t.sor.gz"
    path.write_bytes(gzip.compress(TEXT))
    assert read_sor(path) == read_sor(TEXT)
    assert read_sor(path, start=8, length=8).get(1, 0) == "b"


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.sor$"):
        read_sor(tmp_path / "nope.sor")
    (tmp_path / "a.sor").write_bytes(b"<1>\n")
    with pytest.raises(FileNotFoundError, match=r"\*\.sor \(one file: globs and lists are for kv\.read_sor"):
        read_sor(tmp_path / "*.sor")  # a glob that matches is still not a file to this reader


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(SorError, match="directory"):
        read_sor(tmp_path)


@pytest.mark.timeout(60)
def test_a_pipe_or_device_is_refused_at_once_not_waited_on(tmp_path):
    from eau2 import Key, KVStore
    from eau2.store.inprocess import InProcessCluster

    fifo, compressed = tmp_path / "fifo.sor", tmp_path / "fifo.sor.gz"  # (compressed files are read whole)
    os.mkfifo(fifo)  # opening it would wait for a writer, for ever
    os.mkfifo(compressed)
    for path in (fifo, compressed, "/dev/null"):
        with pytest.raises(SorError, match=rf"{path} is not a regular file \(a pipe, socket or device"):
            read_sor(path)
        with InProcessCluster(2) as cluster:  # the parallel readers' way, with a schema: no inference
            kv = KVStore(cluster.transport(0))
            with pytest.raises(SorError, match=rf"{path} .*is not a regular file"):
                kv.read_sor(str(path), Key("pipe"), schema="II")
            assert kv.keys() == []


@pytest.mark.skipif(not os.path.exists("/proc/version"), reason="no /proc on this system")
def test_a_file_that_cannot_be_opened_is_named():
    with pytest.raises(OSError, match=r"^\[Errno 22\] /proc/version cannot be opened: Invalid argument$"):
        read_sor("/proc/version")  # it cannot seek to its end


def test_no_file_at_all_is_said_plainly_by_both_readers():
    from eau2 import Key, KVStore
    from eau2.store.inprocess import InProcessCluster

    with InProcessCluster(1) as cluster:
        kv = KVStore(cluster.transport(0))
        for read, what in [
            (lambda: read_sor(""), "an empty path"),  # was "' is a directory", of the current one
            (lambda: kv.read_sor("", Key("x")), "an empty path"),
            (lambda: kv.read_sor([], Key("x")), "an empty list of paths"),
        ]:
            with pytest.raises(ValueError, match=f"^no SoR file given: {what}$"):
                read()
        assert kv.keys() == []


def test_an_unknown_protocol_is_named_with_its_url_by_both_readers():
    from eau2 import Key, KVStore
    from eau2.store.inprocess import InProcessCluster

    with InProcessCluster(1) as cluster:
        kv = KVStore(cluster.transport(0))
        for read in (lambda: read_sor("foo://x.sor"), lambda: kv.read_sor("foo://x.sor", Key("x"))):
            with pytest.raises(ValueError, match=r"^foo://x\.sor: Protocol not known: foo$"):
                read()


def test_window_past_the_end_names_the_input(tmp_path):
    path = tmp_path / "t.sor"
    path.write_bytes(TEXT)
    with pytest.raises(SorError, match=r"t\.sor: window start 99 is past the end"):
        read_sor(path, start=99)


def test_wrong_source_type():
    with pytest.raises(TypeError, match="path, an fsspec URL or bytes"):
        read_sor(12)


class CountingSource:
    """Wraps a source and records every byte range read."""

    def __init__(self, inner):
        self.inner, self.name, self.size, self.reads = inner, inner.name, inner.size, []

    def read(self, start, stop):
        self.reads.append((start, stop))
        return self.inner.read(start, stop)


@pytest.mark.parametrize("block_bytes", [1, 3, 8, 100])
def test_blocks_are_whole_lines_and_never_read_past_the_window(block_bytes):
    data = b"".join(b"<%d>\n" % i for i in range(50))
    source = CountingSource(open_source(data))
    window = Window.of(source, 13, 101)
    blocks = [bytes(b) for b in line_blocks(source, window, block_bytes)]
    assert all(block.endswith(b"\n") for block in blocks)
    joined = b"".join(blocks)
    first = data.index(b"\n", 13) + 1
    assert joined == data[first : data.rindex(b"\n", 0, 114) + 1]
    assert all(start >= 12 and stop <= 114 for start, stop in source.reads)


@settings(max_examples=300)
@given(st.lists(st.integers(0, 7), max_size=12), st.booleans(), st.integers(1, 12))
def test_block_grids_cover_every_line_once(line_lengths, unterminated_last, blocksize):
    data = b"".join(b"x" * n + b"\n" for n in line_lengths) + (b"yy" if unterminated_last else b"")
    source = open_source(data)
    position = 0
    for offset in range(0, len(data), blocksize):
        lines, first_byte = lines_starting_in(source, offset, blocksize)
        block = bytes(lines)
        if block:  # it starts at a line start inside its range
            assert first_byte == position
            assert offset <= position < offset + blocksize
            assert position == 0 or data[position - 1 : position] == b"\n"
        assert data[position : position + len(block)] == block
        position += len(block)
    assert position == len(data)


def test_blocks_of_a_file_parse_as_its_bytes_do(tmp_path):
    """Blocks are read into memory later blocks reuse once freed: what a parse keeps of a
    block is its own, on the compiled path too (blocks past the interpreted budget)."""
    data = b"".join(b'<%d> <%d.25> <"s%d"> <%d>\n' % (i, i, i % 89, i % 2) for i in range(60_000))
    path = tmp_path / "t.sor"
    path.write_bytes(data)
    source = open_source(path)
    schema = "IFSB"
    blocks = line_blocks(source, Window.of(source), 300 << 10)
    batches = [parse_block(block, schema).batch for block in blocks]
    assert len(batches) > 3
    assert pa.Table.from_batches(batches).equals(pa.Table.from_batches([parse_block(data, schema).batch]))


@pytest.mark.parametrize(
    "read", [lambda s: list(line_blocks(s, Window.of(s))), lambda s: lines_starting_in(s, 0, 8)]
)
def test_a_file_cut_short_while_read_is_an_error_not_a_hang(tmp_path, read):
    path = tmp_path / "t.sor"
    path.write_bytes(TEXT)
    source = open_source(path)
    path.write_bytes(TEXT[:5])
    with pytest.raises(SorError, match=r"ends before byte \d+, though it was 24 bytes when opened"):
        read(source)


def test_a_file_cut_short_is_named_once_by_the_reader(tmp_path, monkeypatch):
    """The message names the file once, and a byte the file no longer reaches."""
    path = tmp_path / "t.sor"
    path.write_bytes(TEXT)

    def open_then_truncate(source, storage_options=None):
        opened = open_source(source, storage_options)
        path.write_bytes(b"")
        return opened

    monkeypatch.setattr(reader, "open_source", open_then_truncate)
    with pytest.raises(SorError) as caught:
        read_sor(path)
    message = str(caught.value)
    assert message.count("t.sor") == 1
    assert "ends before byte 24, though it was 24 bytes when opened" in message


def test_files_of_other_file_systems_are_read_as_they_come():
    """Only a local file is read into pooled memory; a `memory://` file (as remote ones)
    is read by its own ``read``, and all give the same unsigned bytes."""
    with fsspec.open("memory://eau2-test/u.sor", "wb") as f:
        f.write(TEXT)
    remote = open_source("memory://eau2-test/u.sor")
    assert bytes(remote.read(0, 8)) == TEXT[:8] == bytes(open_source(TEXT).read(0, 8))
    with pytest.raises(SorError, match=r"ends before byte 30, though it was 24 bytes"):
        remote.read(0, 30)


def test_a_local_files_bytes_are_unsigned_as_in_memory_ones(tmp_path):
    """A file object that copies with ``buffer[:n] = data`` (paramiko's) needs format "B"."""
    path = tmp_path / "u.sor"
    path.write_bytes('<"é">\n'.encode())
    read = memoryview(open_source(path).read(0, 3))
    assert read.format == memoryview(open_source(path.read_bytes()).read(0, 3)).format == "B"
    assert read[2] == 0xC3


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 3 * 4096 + 7), length=st.integers(0, 2 * 4096 + 3))
def test_a_local_read_from_any_byte_gives_exactly_those_bytes(tmp_path_factory, start, length):
    # Local reads start at a page and return a view past the bytes before `start`.
    path = tmp_path_factory.getbasetemp() / "pages.bin"
    if not path.exists():
        path.write_bytes(bytes(range(256)) * 64)  # 16 KiB, 4 pages
    whole = path.read_bytes()
    stop = min(start + length, len(whole))
    source = open_source(path)
    try:
        assert bytes(source.read(start, stop)) == whole[start:stop]
    finally:
        source.close()
