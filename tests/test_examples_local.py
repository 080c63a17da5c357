"""WordCount and Linus on in-process nodes, against plain single-process computations."""

import collections

import pytest

from eau2 import DataFrame, Key, run_local
from eau2.examples import Linus, WordCount
from eau2.examples.wordcount import read_words
from tests.linus_reference import degrees_of_linus


def plain_count(path) -> dict[str, int]:
    return {word.decode(): count for word, count in collections.Counter(path.read_bytes().split()).items()}


@pytest.mark.parametrize("name", ["sample.txt", "100k.txt", "asyoulik.txt", "plrabn12.txt"])
@pytest.mark.parametrize(("nodes", "chunk_bytes"), [(1, 1 << 20), (3, 10_000), (4, 777)])
def test_wordcount_equals_a_plain_count(data_dir, name, nodes, chunk_bytes):
    path = data_dir / "text" / name
    results = run_local(WordCount, str(path), top=0, nodes=nodes, chunk_bytes=chunk_bytes)
    counts = results[0]["counts"]
    got = dict(zip(counts.column("word").to_pylist(), counts.column("count").to_pylist(), strict=True))
    expected = plain_count(path)
    assert got == expected
    assert results[0]["distinct"] == len(expected)
    assert results[0]["total"] == sum(expected.values())


def test_words_are_runs_of_non_whitespace_bytes(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"foo foo, \tFoo\r\n\x0bbar\x0c\n  caf\xc3\xa9 \xff!")
    words = read_words(str(path)).to_arrow().column(0).to_pylist()
    assert words == ["foo", "foo,", "Foo", "bar", "café", "\ufffd!"]


class LoadThenLinus(Linus):
    """Linus, after node 0 loads the three files with the local reader."""

    def __init__(self, folder, **options):
        super().__init__(Key("projects"), Key("users"), Key("commits"), **options)
        self.folder = folder

    def run(self):
        if self.this_node() == 0:
            for name in ("projects", "users", "commits"):
                DataFrame.from_sor(Key(name), self.kv, self.folder / f"{name}.ltgt")
        return super().run()


@pytest.mark.parametrize("prefix", ["ghtorrent-10k", "ghtorrent-100k"])
@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize(("nodes", "chunk_bytes"), [(1, 32 << 20), (3, 50_000)])
def test_linus_equals_a_plain_computation(data_dir, prefix, compat, nodes, chunk_bytes):
    folder = data_dir / "linus" / prefix
    results = run_local(LoadThenLinus, folder, compat=compat, nodes=nodes, chunk_bytes=chunk_bytes)
    assert results[0] == {"stages": degrees_of_linus(folder, compat=compat)}
    assert all(result is None for result in results[1:])


def test_linus_leaves_no_stage_keys(data_dir):
    folder = data_dir / "linus" / "ghtorrent-10k"

    class Twice(LoadThenLinus):
        def run(self):
            first = super().run()
            names = sorted(info.key.name for info in self.kv.keys())
            return first, names

    _, names = run_local(Twice, folder, degrees=2, nodes=2)[0]
    assert names == ["commits", "projects", "users"]
