"""Properties of the SoR reader: it agrees with a plain reference reader on any input, never
crashes, obeys the window rule at every offset, and reads back what the writer writes."""

import struct
import warnings

import pyarrow as pa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eau2 import DataFrame, SorError, read_sor
from eau2.types import Schema
from tests import reference_sor as ref

FIELDS = st.sampled_from(
    [
        "<0>",
        "<1>",
        "< 1 >",
        "<+1>",
        "<-0>",
        "<12>",
        "<-3>",
        "<9223372036854775807>",
        "<-9223372036854775809>",
        "<99999999999999999999>",
        "<1.5>",
        "<-.25>",
        "<3.>",
        "<1e10>",
        "<2E-3>",
        "<1e>",
        "<.>",
        "<+>",
        "<0.1000000000000000055511151231257827>",
        "<123456.789012345678>",
        "<hi>",
        "<h i>",
        '<"a b">',
        '<"<>">',
        '< "x" >',
        '<"">',
        "<>",
        "<  >",
        '<"unterminated>',
        "<unterminated",
        "junk",
        '<"a" b>',
        "<é>",
        "<\xff>",
        '<"\xc3">',
        "\t",
        " ",
        "\r",
    ]
)
LINES = st.lists(st.lists(FIELDS, max_size=6).map(" ".join), max_size=30)


def _encode(lines: list[str]) -> bytes:
    # "\xff" and "\xc3" stand for raw bytes that are not valid UTF-8.
    out = "\n".join(lines).encode("utf-8")
    return out.replace("\xff".encode(), b"\xff").replace("\xc3".encode(), b"\xc3")


def same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b and type(a) is type(b)


def same_row(a: tuple, b: tuple) -> bool:
    return all(same_value(x, y) for x, y in zip(a, b, strict=True))


def read_quietly(data: bytes, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_sor(data, **options)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(LINES, st.booleans())
def test_agrees_with_the_reference_reader(lines, trailing_newline):
    data = _encode(lines) + (b"\n" if trailing_newline else b"")
    schema, expected_rows, expected_dropped = ref.read(data)
    frame = read_quietly(data)
    assert [t.code for t in frame.schema] == schema
    if not schema:
        return
    got = list(zip(*frame.to_arrow().to_pydict().values(), strict=True))
    assert len(got) == len(expected_rows)
    for got_row, expected_row in zip(got, expected_rows, strict=True):
        assert same_row(got_row, expected_row), (got_row, expected_row)
    assert frame.dropped_rows == expected_dropped


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data):
    frame = read_quietly(data)
    assert frame.nrows >= 0


@settings(max_examples=60)
@given(LINES.filter(lambda lines: len(lines) > 1))
def test_windows_at_every_offset_follow_the_spec(lines):
    data = _encode(lines) + b"\n"
    schema = ref.infer(data)
    assume(schema)
    letters = str(Schema(Schema.parse("BIFS")[t] for t in schema))
    for start in range(len(data)):
        for length in (1, 7, len(data) // 2 + 1, len(data)):
            expected = ref.read(ref.window(data, start, length), schema)[1]
            try:
                frame = read_quietly(data, start=start, length=length, schema=letters)
            except SorError:
                assert not expected, (start, length)  # nothing in the window fits the schema
                continue
            got = list(zip(*frame.to_arrow().to_pydict().values(), strict=True))
            assert len(got) == len(expected), (start, length)
            assert all(same_row(g, e) for g, e in zip(got, expected, strict=True)), (start, length)


_TEXT = st.text(st.characters(blacklist_characters='"\n', blacklist_categories=("Cs",)), max_size=12)
_COLUMNS = {
    "B": st.booleans(),
    "I": st.integers(-(2**63), 2**63 - 1),
    "F": st.floats(allow_nan=False),
    "S": _TEXT,
}


@st.composite
def frames(draw):
    letters = draw(st.text("BIFS", min_size=1, max_size=5))
    n = draw(st.integers(0, 25))
    columns = {
        str(i): pa.array([draw(st.none() | _COLUMNS[letter]) for _ in range(n)], type=t.arrow_type)
        for i, (letter, t) in enumerate(zip(letters, Schema.parse(letters), strict=True))
    }
    return DataFrame(pa.table(columns))


@settings(max_examples=200)
@given(frames())
def test_written_sor_reads_back_equal(frame):
    text = frame.to_sor()
    assert read_quietly(text.encode(), schema=str(frame.schema)).equals(frame)
    each_column_has_a_value = all(
        frame.to_arrow().column(i).null_count < frame.nrows for i in range(frame.ncols)
    )
    if frame.nrows and each_column_has_a_value:
        assert read_quietly(text.encode()).equals(frame)


@settings(max_examples=2000)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**25), 10**25).map(float))
def test_floats_read_exactly(value):
    for text in (repr(value), f"{value:.17g}", f"{value:.6e}", f"{value:.3f}"):
        got = read_quietly(f"<{text}>\n".encode(), schema="F").get(0, 0)
        assert same_value(got, float(text)), text


@given(
    st.integers(0, 30)
    .flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
    .map(str)
)
def test_decimal_literals_read_exactly(text):
    # str(Decimal) writes forms such as "0E-30", "1.5E+7" and "-0.000".
    frame = read_quietly(f"<{text}>\n".encode(), schema="F")
    assert same_value(frame.get(0, 0), float(text)), text
