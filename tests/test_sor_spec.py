"""The SoR spec (shared/spec/sor-format.md), rule by rule."""

import math

import pytest

from eau2 import SorError, SorWarning, read_sor


def read(text: str | bytes, **options):
    data = text.encode() if isinstance(text, str) else text
    return read_sor(data, **options)


def rows(frame) -> list[tuple]:
    columns = frame.to_arrow().to_pydict().values()
    return list(zip(*columns, strict=True))


WORKED = "<0> <23> <hi>\n<1> <12> <>\n<1> <1>\n"


def test_worked_example():
    frame = read(WORKED)
    assert str(frame.schema) == "BIS"
    assert frame.get(2, 0) == "hi"
    assert not frame.is_missing(2, 0)
    assert frame.is_missing(2, 1)
    assert frame.is_missing(2, 2)
    assert read(WORKED, start=5, length=100).get(1, 0) == 12


def test_crlf_lines_and_a_last_line_without_newline():
    assert rows(read("<1> <a>\r\n<0> <b>")) == [(True, "a"), (False, "b")]


def test_whitespace_between_and_inside_brackets():
    frame = read("\t< 12 >  <\t-3 ><  x>\n")
    assert rows(frame) == [(12, -3, "x")]


@pytest.mark.parametrize("field", ["<>", "<   >"])
def test_missing_values(field):
    assert rows(read(f"<1> {field}\n<2> <3>\n")) == [(1, None), (2, 3)]


def test_short_rows_are_padded_with_missing_values():
    assert rows(read("<1> <2> <3>\n<4>\n")) == [(1, 2, 3), (4, None, None)]


def test_blank_lines_are_not_rows_and_not_dropped():
    frame = read("\n<1>\n   \n\r\n<2>\n\n")
    assert rows(frame) == [(1,), (2,)]
    assert frame.dropped_rows == 0


@pytest.mark.parametrize(
    "line",
    [
        "<1> junk <2>",  # text outside a field
        "<1> <2",  # unterminated <
        '<1> <"abc>',  # unterminated quote
        "<1> <h i>",  # whitespace inside an unquoted value
        '<1> <"a" b>',  # text after the closing quote
    ],
)
def test_lines_that_are_not_rows_are_dropped_and_counted(line):
    with pytest.warns(SorWarning, match="1 line"):
        frame = read(f"<5> <6>\n{line}\n<7> <8>\n")
    assert rows(frame) == [(5, 6), (7, 8)]
    assert frame.dropped_rows == 1
    assert frame.dropped_lines[0].line == 2


@pytest.mark.parametrize(
    ("literal", "letter", "value"),
    [
        ("0", "B", False),
        ("1", "B", True),
        ("+1", "I", 1),
        ("-0", "I", 0),
        ("12", "I", 12),
        ("-3", "I", -3),
        ("+306", "I", 306),
        ("9223372036854775807", "I", 2**63 - 1),
        ("-9223372036854775808", "I", -(2**63)),
        ("9223372036854775808", "F", 9223372036854775808.0),
        ("1.2", "F", 1.2),
        ("-.2", "F", -0.2),
        ("+2.2", "F", 2.2),
        ("3.", "F", 3.0),
        ("1e10", "F", 1e10),
        ("-2.5E-3", "F", -2.5e-3),
        ("hi", "S", "hi"),
        ("1e", "S", "1e"),
        (".", "S", "."),
        ("+", "S", "+"),
        ("1.2.3", "S", "1.2.3"),
        ("nan", "S", "nan"),
        ('"12"', "S", "12"),
        ('"<>"', "S", "<>"),
        ('"bye bye <> "', "S", "bye bye <> "),
        ('""', "S", ""),
    ],
)
def test_literals_and_their_types(literal, letter, value):
    frame = read(f"<{literal}>\n")
    assert str(frame.schema) == letter
    assert frame.get(0, 0) == value


def test_quoted_empty_string_is_not_missing():
    frame = read('<"">\n<>\n')
    assert rows(frame) == [("",), (None,)]


def test_column_type_is_the_most_general_of_its_values():
    frame = read("<1> <1> <1> <a>\n<0> <2> <2.5> <1>\n<> <> <3> <2.0>\n")
    assert str(frame.schema) == "BIFS"
    assert rows(frame)[2] == (None, None, 3.0, "2.0")


def test_a_column_with_no_value_is_bool():
    assert str(read("<1> <>\n<2>\n").schema) == "IB"


def test_column_count_is_the_widest_row():
    assert str(read("<1>\n<1> <2> <x>\n").schema) == "BIS"


def test_inference_looks_at_the_first_500_lines_only():
    text = "<1>\n" * 500 + "<2>\n<3.5>\n"
    with pytest.warns(SorWarning, match="2 line"):
        frame = read(text)
    assert str(frame.schema) == "B"
    assert frame.nrows == 500
    assert [d.line for d in frame.dropped_lines] == [501, 502]


def test_rows_that_do_not_fit_are_dropped_and_take_no_index():
    with pytest.warns(SorWarning):
        frame = read("<1> <x>\n<2> <3>\n<4> <5>\n", schema="II")
    assert frame.get(0, 0) == 2
    assert frame.get(0, 1) == 4


def test_a_schema_no_line_fits_is_an_error():
    with pytest.raises(SorError, match="does not match"):
        read("<a> <x>\n<b> <y>\n", schema="II")


def test_explicit_schema_drops_what_does_not_fit():
    with pytest.warns(SorWarning, match="column 1"):
        frame = read("<1> <2>\n<3> <4.5>\n<5> <6> <7>\n<8> <9>\n", schema="II")
    assert rows(frame) == [(1, 2), (8, 9)]
    assert frame.dropped_rows == 2
    assert [(d.line, d.column) for d in frame.dropped_lines] == [(2, 1), (3, 2)]


@pytest.mark.parametrize(
    ("literal", "column_type", "fits"),
    [
        ("1", "B", True),
        ("2", "B", False),
        ("1", "I", True),
        ("-5", "I", True),
        ("1.5", "I", False),
        ("1", "F", True),
        ("7", "F", True),
        ("x", "F", False),
        ('"7"', "F", False),
        ("1.5", "S", True),
        ("x", "S", True),
    ],
)
def test_what_fits_a_column(literal, column_type, fits):
    if fits:
        assert read(f"<{literal}>\n<1>\n", schema=column_type).nrows == 2
    else:
        with pytest.warns(SorWarning):
            assert read(f"<{literal}>\n<1>\n", schema=column_type).nrows == 1


def test_int_literal_read_into_float_column():
    frame = read("<1> <12345678901234567890>\n", schema="FF")
    assert rows(frame) == [(1.0, 12345678901234567890.0)]


def test_floats_round_like_python():
    texts = [
        "0.1",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
        "5e-324",
        "0.30000000000000004",
        "123456789012345678901234567890",
        "1e400",
        "-1e-400",
        "9007199254740993",
        "0.000000000000000000000000001234",
    ]
    frame = read("".join(f"<{t}>\n" for t in texts), schema="F")
    for row, text in enumerate(texts):
        got = frame.get(0, row)
        assert got == float(text) and math.copysign(1, got) == math.copysign(1, float(text))


def test_invalid_utf8_in_a_string_drops_the_row():
    with pytest.warns(SorWarning, match="UTF-8"):
        frame = read(b'<1> <"caf\xc3\xa9">\n<2> <"\xff">\n<3> <\xc3>\n', schema="IS")
    assert rows(frame) == [(1, "café")]
    assert frame.dropped_rows == 2


@pytest.mark.parametrize(
    "text",
    [
        b"<caf\xe9> <1>\n<\xe9t\xe9> <2>\n",  # Latin-1 throughout: inference found no row
        b"<10> <20>\n<30> <\xe9>\n",  # in a number column
        b'<10>\n<20> <ok> <"\xe9">\n',  # in a field past the schema's columns
        b"<1> <abc>\n<x> <caf\xe9>\n",  # after a value that does not fit its column
    ],
)
def test_a_line_with_a_field_not_utf8_is_dropped_as_such(text):
    """Such a line is no row (inference ignores it), not a row that does not fit: the
    reason names the encoding, whatever the column and however many columns there are."""
    with pytest.warns(SorWarning, match="UTF-8"):
        frame = read(text)
    assert [d.reason for d in frame.dropped_lines][-1] == "string is not valid UTF-8"
    assert not any(d.is_schema_mismatch for d in frame.dropped_lines)


def test_a_schema_given_for_a_file_not_utf8_is_not_called_a_mismatch():
    with pytest.warns(SorWarning, match="UTF-8"):
        frame = read(b"<caf\xe9> <1>\n<x> <caf\xe9>\n", schema="IS")
    assert frame.nrows == 0


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 100, [(0, 23), (1, 12), (1, 1)]),
        (1, 100, [(1, 12), (1, 1)]),  # partial first line skipped
        (14, 100, [(1, 12), (1, 1)]),  # byte before start is a newline: line kept
        (0, 14, [(0, 23)]),  # first line's newline is the window's last byte
        (0, 13, []),  # its newline is just past the window
        (14, 1000, [(1, 12), (1, 1)]),  # length past the end is fine
    ],
)
def test_byte_windows(start, length, expected):
    frame = read(WORKED, start=start, length=length, schema="BIS")
    assert [row[:2] for row in rows(frame)] == expected


def test_window_without_newline_at_end_of_file():
    assert rows(read("<1>\n<2>", start=4, length=3, schema="I")) == [(2,)]


@pytest.mark.parametrize(("start", "length"), [(-1, 5), (0, -1), (1000, 5)])
def test_windows_outside_the_input_are_errors(start, length):
    with pytest.raises(SorError):
        read(WORKED, start=start, length=length)


def test_empty_input():
    frame = read("")
    assert (frame.nrows, frame.ncols) == (0, 0)
