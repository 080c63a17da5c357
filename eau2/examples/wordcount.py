"""WordCount: node 0 splits a text into words; every node counts its own chunks; node 0 merges."""

from __future__ import annotations

import lzma
import zlib

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
from fsspec.utils import infer_compression

from eau2.app.application import Application
from eau2.frame.dataframe import DataFrame
from eau2.store.key import Key

_PIECE = 64 << 20  # text split into words this many bytes at a time
_WHITESPACE = b" \t\n\r\v\f"


def read_words(path: str, storage_options: dict | None = None) -> DataFrame:
    """A one-column STRING frame of the words of a text file, in order.

    A word is a maximal run of bytes that are not ASCII whitespace; case and
    punctuation are kept. Bytes that are not valid UTF-8 become U+FFFD. A compressed
    file that cannot be decompressed (truncated, corrupt) is a `ValueError` naming it.
    """
    with fsspec.open(path, "rb", compression="infer", **(storage_options or {})) as f:
        try:
            text = f.read()
        except (EOFError, zlib.error, lzma.LZMAError, OSError) as error:
            if isinstance(error, OSError) and error.errno is not None:
                raise  # the file's own (permission, I/O), not its compression's
            if isinstance(error, OSError) and not infer_compression(str(path)):
                raise
            raise ValueError(f"{path}: truncated or corrupt compressed file ({error})") from error
    pieces = []
    start = 0
    while start < len(text):
        stop = _piece_end(text, start)
        pieces.append(_words(text[start:stop]))
        start = stop
    words = pa.chunked_array(pieces, pa.string()) if pieces else pa.chunked_array([], pa.string())
    return DataFrame(pa.table({"word": words}))


def _piece_end(text: bytes, start: int) -> int:
    """End of a piece of about `_PIECE` bytes that does not cut a word."""
    stop = start + _PIECE
    if stop >= len(text):
        return len(text)
    while stop < len(text) and text[stop] not in _WHITESPACE:
        stop += 1
    return stop


def _words(piece: bytes) -> pa.Array:
    try:
        text = pa.array([piece], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        text = pa.array([piece.decode("utf-8", errors="replace")], pa.large_string())
    words = pc.list_flatten(pc.ascii_split_whitespace(text))
    return pc.filter(words, pc.not_equal(pc.binary_length(words), 0)).cast(pa.string())


def count_words(words: list[pa.Array | pa.ChunkedArray]) -> pa.Table:
    """(word, count) of all the given word columns, counted with Arrow (no Python per word)."""
    tables = [
        pa.table({"word": counted.field("values"), "count": counted.field("counts")})
        for counted in (pc.value_counts(column) for column in words)
    ]
    return merge_counts(tables)


def merge_counts(tables: list[pa.Table]) -> pa.Table:
    """The (word, count) tables summed by word, most frequent first (ties by word)."""
    if not tables:
        return pa.table({"word": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    summed = pa.concat_tables(tables).group_by("word").aggregate([("count", "sum")])
    summed = pa.table({"word": summed.column("word"), "count": summed.column("count_sum").cast(pa.int64())})
    return summed.sort_by([("count", "descending"), ("word", "ascending")])


class WordCount(Application):
    """Count the words of a text file: node 0 stores them under ``data``, every node counts
    the chunks it holds into ``wc-map-<node>``, and node 0 merges the true totals."""

    nodes = 3
    data = Key("data", 0)

    def __init__(self, path: str, top: int = 10):
        self.path = path
        self.top = top

    def run(self):
        node = self.this_node()
        if node == 0:
            self.kv.put(self.data, read_words(self.path))
        frame = self.kv.get_and_wait(self.data)
        partial = count_words(frame.local_map_batches(lambda batch: batch.column(0)))
        self.kv.put(Key(f"wc-map-{node}", node), DataFrame(partial))
        if node != 0:
            return None
        maps = [self.kv.get_and_wait(Key(f"wc-map-{i}", i)).to_arrow() for i in range(self.num_nodes())]
        counts = merge_counts(maps)
        total = pc.sum(counts.column("count")).as_py() or 0
        print(f"{counts.num_rows} distinct words, {total} in all")
        for word, count in zip(
            *(counts.column(c).to_pylist()[: self.top] for c in ("word", "count")), strict=True
        ):
            print(f"{count:>10}  {word}")
        self._clean_up()
        return {"distinct": counts.num_rows, "total": total, "counts": counts}

    def _clean_up(self) -> None:
        """Free what the run stored: every node is done with it once its map is stored."""
        for i in range(self.num_nodes()):
            self.kv.delete(Key(f"wc-map-{i}", i))
        self.kv.delete(self.data)
