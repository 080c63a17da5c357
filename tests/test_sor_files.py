"""The 2020 peers' SoR files, read in place; expectations worked out by hand from the spec."""

import pytest

from eau2 import SorWarning, read_sor


def rows(frame) -> list[tuple]:
    return list(zip(*frame.to_arrow().to_pydict().values(), strict=True))


DATA3_ROWS = [
    (False, 0, 0.0, "0"),
    (True, 2, 2.0, "2"),
    (True, -11, 0.4, "0.4"),
    (False, 8, -17.5, "Hello"),
]

CASES = {
    # one row, no final newline; a quoted string holding '>' and a trailing space
    "anuj-modi-data1.sor": ("BISIF", [(True, 2, "string with > inside ", 4, -3.14)]),
    "anuj-modi-data2.sor": ("I", [(-5,)]),
    # CRLF lines; column types widen down each column
    "anuj-modi-data3.sor": ("BIFS", DATA3_ROWS),
    "anuj-modi-data4.sor": ("BIFS", DATA3_ROWS * 168),
    "az0977776-test.sor": (
        "BIFSS",
        [
            (False, 1, 123.0, "-12444.21123", "hello world"),
            (True, 133454, -123.938, "hello", "0"),
            (False, 2, None, None, "quoted string"),
            (True, 3, 123.0, "-12444.21123", "quoted string that is really long and might be hard"),
            (False, 4, 123.0, "-12444.21123", None),
            (None, None, None, None, None),  # "<>" is a row; the blank line after it is not
            (False, 6, -123.0, "+12444.21123", "quoted string"),
            (True, 7, 444.0, "-12444.21123", "+1. 222"),
            (False, 8, 123.0, "1.23456789", "quoted string"),
        ],
    ),
    "rupark-data.sor": ("BIS", [(False, 23, "hi"), (True, 12, None), (True, 11, None)]),
    # a row of words makes every column STRING
    "rupark-data1.sor": (
        "SSSS",
        [("1", "hi", "+2.2", " bye "), ("2", None, "4", "helloworld"), ("test1", "test2", "test3", "test4")],
    ),
    "rupark-data2.sor": (
        "SSSS",
        [
            ("test1", "test2", "test3", "test4"),
            ("1", "1", "100", "1"),
            ("2", "2", "2", None),
            ("3", "3", "3", "3"),
        ],
    ),
    "rupark-data3.sor": ("BISI", [(True, 2, "string with > inside ", 4)]),
    "yeungbri-test.sor": ("BIS", [(False, 23, "hi"), (True, 12, None), (True, 1, None)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_peer_file(data_dir, name):
    schema, expected = CASES[name]
    frame = read_sor(data_dir / "sor" / name)
    assert str(frame.schema) == schema
    assert rows(frame) == expected
    assert frame.dropped_rows == 0


def test_peer_file_with_an_invalid_line(data_dir):
    # Line 3 has "<invalid field>": whitespace inside an unquoted value, so it is not a
    # row: it does not count for inference and is dropped.
    with pytest.warns(SorWarning, match="line 3"):
        frame = read_sor(data_dir / "sor" / "yeungbri-test2.sor")
    assert str(frame.schema) == "ISIFIB"
    assert rows(frame) == [
        (0, "hey", 23, 5.0, -3, True),
        (1, "O", -40, -9.2, 6, None),
        (15, "hello world", 1, 3.5, 5, False),
    ]
    assert frame.dropped_rows == 1


def test_linus_prefixes_read_whole(data_dir):
    for size, lines in (("10k", 10_000), ("100k", 100_000)):
        folder = data_dir / "linus" / f"ghtorrent-{size}"
        commits = read_sor(folder / "commits.ltgt")
        assert (str(commits.schema), commits.nrows) == ("III", lines)
        projects = read_sor(folder / "projects.ltgt")
        assert (str(projects.schema), projects.nrows) == ("IS", lines)
        assert projects.get(1, 2) == "matplotlib/basemap"
        ids = projects.to_arrow().column(0).to_numpy()
        assert (ids == range(lines)).all()  # pid = line number
