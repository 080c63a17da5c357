"""Float literals read exactly: every one equals Python's ``float()`` of its text, bit for bit,
whether the kernel runs compiled or as Python, and whichever way it converts the value
(Clinger's fast path, the Eisel-Lemire method, or the correctly rounding fallback). And the
kernel's scans of digits and quoted strings eight bytes at a time agree with the reference
reader wherever the bytes fall in the eight, and near the end of the input."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eau2 import SorError
from eau2.sor import block, kernel
from eau2.types import Schema
from tests import reference_sor as ref
from tests.test_sor_kernel import ENTRY_POINTS, run_as
from tests.test_sor_properties import _encode, read_quietly, same_row

ANY_DOUBLE = st.floats(allow_nan=False, allow_infinity=False)
SUBNORMAL = st.floats(min_value=0.0, max_value=2.2250738585072014e-308)
NEAR_OVERFLOW = st.floats(min_value=1e300, allow_infinity=False)


@pytest.fixture(scope="module", autouse=True)
def _compiled_once():
    """The compiled entry points, kept through this module's tests (else `run_as` loads them
    from numba's cache at every example); what there was before is put back after."""
    saved = [entry._compiled for entry in ENTRY_POINTS]
    for entry in ENTRY_POINTS:
        entry.compiled()
    yield
    for entry, function in zip(ENTRY_POINTS, saved, strict=True):
        entry._compiled = function


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def read_floats(texts: list[str]) -> list[float]:
    frame = read_quietly("".join(f"<{text}>\n" for text in texts).encode(), schema="F")
    assert frame.nrows == len(texts)
    return frame.to_arrow().column(0).to_pylist()


def assert_read_exactly(texts: list[str]) -> None:
    """Each text reads as float(text), compiled and as Python."""
    expected = [bits(float(text)) for text in texts]
    for python in (True, False):
        with run_as(python=python):
            got = [bits(value) for value in read_floats(texts)]
        wrong = [(text, python) for text, g, e in zip(texts, got, expected, strict=True) if g != e]
        assert not wrong


def formats(value: float) -> list[str]:
    return [repr(value), f"{value:.17g}", f"{value:.16e}", f"{value:.15g}", f"{value:.20e}"]


@st.composite
def digit_strings(draw) -> str:
    """A decimal literal of 1 to 25 digits, with or without a dot, sign and exponent (an
    integer literal too, read into a FLOAT column)."""
    digits = draw(st.text("0123456789", min_size=1, max_size=25))
    dot = draw(st.none() | st.integers(0, len(digits)))
    text = digits if dot is None else f"{digits[:dot]}.{digits[dot:]}"
    if draw(st.booleans()):
        text += f"e{draw(st.integers(-360, 330))}"
    return draw(st.sampled_from(["", "-", "+"])) + text


@st.composite
def halfway(draw) -> str:
    """A decimal at, or a last digit away from, the midpoint between two neighbouring
    doubles: m * 2**e for an odd 54-bit m, written with at most 19 (or a few more) digits."""
    m = draw(st.integers(1 << 53, (1 << 54) - 1)) | 1
    e = draw(st.integers(-8, 10))
    w, q = (m << e, 0) if e >= 0 else (m * 5**-e, e)
    zeros = draw(st.integers(0, 3))
    w, q = w * 10**zeros + draw(st.sampled_from([0, 0, -1, 1])), q - zeros
    if draw(st.booleans()):
        return f"{w}e{q}"
    digits = str(w).rjust(1 - q, "0")
    return f"{digits}.{'0' * q}" if q >= 0 else f"{digits[:q]}.{digits[q:]}"


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY_DOUBLE | SUBNORMAL | NEAR_OVERFLOW, min_size=1, max_size=20))
def test_doubles_in_every_format_read_exactly(values):
    assert_read_exactly([text for value in values for text in formats(value)])


@settings(max_examples=300, deadline=None)
@given(st.lists(digit_strings(), min_size=1, max_size=40))
def test_digit_strings_read_exactly(texts):
    assert_read_exactly(texts)


@settings(max_examples=300, deadline=None)
@given(st.lists(halfway(), min_size=1, max_size=40))
def test_halfway_cases_round_to_even(texts):
    assert_read_exactly(texts)


@pytest.mark.parametrize(
    "text",
    [
        "9007199254740993",  # 2**53 + 1: halfway, rounds down to even
        "9007199254740995",  # halfway, rounds up to even
        "9007199254740993.0",
        "90071992547409930e-1",
        "1.7976931348623157e308",  # the largest double
        "1.7976931348623158e308",  # rounds down to it
        "1.7976931348623159e308",  # overflows
        "2.2250738585072011e-308",  # the largest subnormal
        "2.2250738585072014e-308",  # the smallest normal
        "2.2250738585072012e-308",  # rounds up across the boundary
        "4.9406564584124654e-324",  # the smallest subnormal
        "2.4703282292062327e-324",  # just under half of it: zero
        "2.4703282292062328e-324",  # just over: the smallest subnormal
        "1e-342",
        "1e-343",
        "9999999999999999999e-343",
        "1e308",
        "1e309",
        "0.1",
        "-0.0",
        "12345678901234567890e-10",  # 20 digits: the fallback
        "1844674407370955161.5",  # 19 digits, and the largest uint64 beyond
        "18446744073709551615",
        "9223372036854775808",  # a FLOAT literal: past int64
        "0.30000000000000004",
        "1234.5678901234567",
        "-1234.5678901234567",
    ],
)
def test_hard_cases_read_exactly(text):
    assert_read_exactly([text])


def test_full_precision_floats_need_no_fallback(monkeypatch):
    """Up to 19 significant digits, floats are converted in the kernel: only longer ones
    reach Arrow's correctly rounding parser."""
    rng = np.random.default_rng(0)
    values = [*rng.normal(0, 1000, 500), *rng.normal(0, 1e-200, 100), *rng.normal(0, 1e200, 100)]
    texts = [repr(float(value)) for value in values]
    queued = []
    convert = block._convert_exactly

    def counted(buf, slow, floats):
        queued.append(len(slow))
        convert(buf, slow, floats)

    monkeypatch.setattr(block, "_convert_exactly", counted)
    for python in (True, False):
        with run_as(python=python):
            assert [bits(v) for v in read_floats(texts)] == [bits(float(t)) for t in texts]
            assert read_floats(["1.2345678901234567890123"]) == [1.2345678901234567]
    assert queued == [1, 1]


def test_the_table_of_powers_of_five():
    """Each entry is 5**q to 128 bits, the top one set: for q >= 0, 5**q truncated; for
    q < 0, 2**k / 5**-q to within one."""
    table = kernel._POW5.reshape(-1, 2)
    for q in (-342, -300, -28, -27, -1, 0, 1, 27, 28, 55, 308):
        value = (int(table[q + 342, 0]) << 64) | int(table[q + 342, 1])
        assert value >> 127 == 1
        if q >= 0:
            shift = value.bit_length() - (5**q).bit_length()
            assert value == (5**q << shift if shift >= 0 else 5**q >> -shift)
        else:
            k = 127 + (5**-q).bit_length()
            assert (value - 1) * 5**-q < 1 << k < (value + 1) * 5**-q


_DIGIT_RUNS = st.builds(
    lambda sign, digits, dot: sign + (digits if dot is None else f"{digits[:dot]}.{digits[dot:]}"),
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=24),
    st.none() | st.integers(0, 24),
)
_STRINGS = st.text(st.sampled_from([*'ab <>"\n\t0.', "é", "\xff"]), max_size=20)
_FIELDS = st.one_of(
    _DIGIT_RUNS.map(lambda text: f"<{text}>"),
    _STRINGS.map(lambda text: f'<"{text}">'),
    _STRINGS.map(lambda text: f"<{text}>"),
    st.sampled_from(["<>", "<1>", "<0>", "<x>", " "]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_FIELDS, max_size=6).map(" ".join), max_size=12), st.booleans())
def test_eight_byte_scans_agree_with_the_reference_reader(lines, trailing_newline):
    data = _encode(lines) + (b"\n" if trailing_newline else b"")
    schema, expected_rows, expected_dropped = ref.read(data)
    for python in (True, False):
        with run_as(python=python):
            frame = read_quietly(data)
        assert [t.code for t in frame.schema] == schema
        if schema:
            got = list(zip(*frame.to_arrow().to_pydict().values(), strict=True))
            assert len(got) == len(expected_rows)
            assert all(same_row(g, e) for g, e in zip(got, expected_rows, strict=True))
            assert frame.dropped_rows == expected_dropped


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELDS, min_size=1, max_size=8), st.sampled_from(["S", "SS", "F", "I", "FS"]), st.booleans())
def test_eight_byte_scans_agree_with_the_reference_reader_in_typed_columns(fields, schema, trailing_newline):
    data = _encode([" ".join(fields[k : k + len(schema)]) for k in range(0, len(fields), len(schema))])
    data += b"\n" if trailing_newline else b""
    codes = [Schema.parse(schema)[k].code for k in range(len(schema))]
    _, expected_rows, expected_dropped = ref.read(data, codes)
    for python in (True, False):
        with run_as(python=python):
            try:
                frame = read_quietly(data, schema=schema)
            except SorError:  # no line fits the schema
                assert not expected_rows
                continue
        got = list(zip(*frame.to_arrow().to_pydict().values(), strict=True))
        assert len(got) == len(expected_rows)
        assert all(same_row(g, e) for g, e in zip(got, expected_rows, strict=True))
        assert frame.dropped_rows == expected_dropped
