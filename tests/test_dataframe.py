"""The local DataFrame: constructors, cells, visitors, conversion."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eau2 import ColumnType, DataFrame, MissingValueError, Reader, Row, Rower, Schema, Writer, read_sor


@pytest.fixture
def frame() -> DataFrame:
    return read_sor(b'<1> <10> <1.5> <"a">\n<0> <20> <> <"b c">\n<1> <> <3.5> <>\n')


def test_shape_and_schema(frame):
    assert (frame.nrows, frame.ncols, len(frame)) == (3, 4, 3)
    assert str(frame.schema) == "BIFS"
    assert frame.schema == "bifs"
    assert list(frame.schema) == [ColumnType.BOOL, ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING]


def test_typed_getters(frame):
    assert frame.get_bool(0, 0) is True
    assert frame.get_int(1, 1) == 20
    assert frame.get_float(2, 2) == 3.5
    assert frame.get_string(3, 1) == "b c"
    assert frame.get(1, 2) is None and frame.is_missing(1, 2)


def test_getter_errors_name_what_is_wrong(frame):
    with pytest.raises(TypeError, match="column 1 is INT, not FLOAT"):
        frame.get_float(1, 0)
    with pytest.raises(MissingValueError, match="row 2, column 1"):
        frame.get_int(1, 2)
    with pytest.raises(IndexError, match="column 9"):
        frame.get(9, 0)
    with pytest.raises(IndexError, match="row 3"):
        frame.get(0, 3)


def test_from_array_types():
    assert str(DataFrame.from_array([True, False]).schema) == "B"
    assert str(DataFrame.from_array(np.arange(5, dtype=np.int16)).schema) == "I"
    assert str(DataFrame.from_array(np.ones(3, np.float32)).schema) == "F"
    assert str(DataFrame.from_array(["x", None]).schema) == "S"
    assert str(DataFrame.from_array([None, None]).schema) == "B"
    assert DataFrame.from_scalar(7).get(0, 0) == 7


@pytest.mark.parametrize(
    "values",
    [
        [1, "x"],
        pa.array([b"bytes"]),
        pa.array([[1, 2]]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        pa.array([2**64 - 1], pa.uint64()),
    ],
)
def test_other_types_are_refused(values):
    with pytest.raises(TypeError, match="column"):
        DataFrame.from_array(values)


def test_from_arrow_widens_and_from_pandas_keeps_missing():
    table = pa.table({"a": pa.array([1, None], pa.int8()), "b": pa.array(["x", "y"], pa.large_string())})
    assert str(DataFrame.from_arrow(table).schema) == "IS"
    frame = DataFrame.from_pandas(pd.DataFrame({"n": pd.array([1, None], "Int64"), "f": [0.5, None]}))
    assert str(frame.schema) == "IF"
    assert frame.is_missing(0, 1) and frame.is_missing(1, 1)


def test_column_names_that_repeat_as_text_are_refused_naming_them():
    with pytest.raises(
        ValueError, match=r"column name '1' occurs more than once \(names are compared as text\)"
    ):
        DataFrame.from_pandas(pd.DataFrame({1: [1, 2], "1": [3, 4], "y": [5, 6]}))
    with pytest.raises(ValueError, match="column names 'x', 'y' occur more than once"):
        DataFrame.from_arrow(pa.table([pa.array([1])] * 4, names=["x", "x", "y", "y"]))
    with pytest.raises(ValueError, match="column name 'x' occurs more than once"):
        DataFrame.from_pandas(pd.DataFrame([[1, 2]], columns=["x", "x"]))


def test_to_pandas_keeps_missing_values(frame):
    df = frame.to_pandas()
    assert str(df.dtypes.iloc[1]) == "Int64"
    assert df.iloc[2, 1] is pd.NA
    assert DataFrame.from_pandas(df).equals(frame)


def test_to_pandas_shares_columns_without_missing_values():
    table = pa.table({"i": [1, 2], "f": [0.5, 1.5], "b": [True, False], "s": ["x", None], "n": [1, None]})
    df = DataFrame.from_arrow(table).to_pandas()
    assert [str(t) for t in df.dtypes] == ["int64", "float64", "bool", "string", "Int64"]
    assert np.shares_memory(df["i"].to_numpy(), table.column("i").chunk(0).to_numpy())
    assert df["s"].iloc[1] is pd.NA


def test_to_arrow_is_the_data(frame):
    assert frame.to_arrow().num_rows == 3
    assert DataFrame.from_arrow(frame.to_arrow()) == frame


class SumInts(Rower):
    def __init__(self, col: int):
        self.col, self.total, self.seen = col, 0, []

    def accept(self, row: Row) -> bool:
        if not row.is_missing(self.col):
            self.total += row.get_int(self.col)
        self.seen.append(row.index)
        return True

    def join(self, other: "SumInts") -> None:
        self.total += other.total
        self.seen += other.seen


def test_map_visits_every_row_in_order(frame):
    rower = frame.map(SumInts(1))
    assert rower.total == 30
    assert rower.seen == [0, 1, 2]


def test_pmap_joins_clones_in_row_order():
    frame = DataFrame.from_array(np.arange(10_001))
    rower = frame.pmap(SumInts(0), threads=4)
    assert rower.total == sum(range(10_001))
    assert rower.seen == list(range(10_001))


class KeepTrue(Reader):
    def visit(self, row: Row) -> bool:
        return row.get_bool(0)


def test_filter_keeps_accepted_rows(frame):
    kept = frame.filter(KeepTrue())
    assert kept.nrows == 2
    assert kept.get(3, 0) == "a" and kept.is_missing(3, 1)


class Squares(Writer):
    def __init__(self, n: int):
        self.i, self.n = 0, n

    def visit(self, row: Row) -> None:
        row.set_int(0, self.i)
        row.set_float(1, self.i**2)
        if self.i % 2:
            row.set_missing(1)
        row.set_string(2, f"s{self.i}")
        self.i += 1

    def done(self) -> bool:
        return self.i == self.n


def test_from_visitor_builds_rows():
    frame = DataFrame.from_visitor("IFS", Squares(4))
    assert str(frame.schema) == "IFS"
    assert frame.get(1, 2) == 4.0 and frame.is_missing(1, 3)
    assert frame.get(2, 3) == "s3"


def test_row_setters_check_types():
    row = Row(Schema.parse("BIS"))
    with pytest.raises(TypeError, match="column 1 is INT"):
        row.set_int(1, "x")
    with pytest.raises(TypeError, match="column 1 is INT"):
        row.set_int(1, True)
    row.set(1, np.int64(3))
    assert row.get_int(1) == 3


def test_map_batches_sees_arrow_batches(frame):
    sums = frame.map_batches(lambda batch: pa.compute.sum(batch.column(1)).as_py())
    assert sum(sums) == 30


def test_print_writes_sor(frame):
    out = io.StringIO()
    frame.print(out)
    assert out.getvalue().splitlines()[0] == '<1> <10> <1.5> <"a">'
    assert read_sor(out.getvalue().encode(), schema="BIFS") == frame


def test_to_sor_keeps_types_that_look_alike():
    frame = DataFrame.from_arrow(pa.table({"i": [0, 1], "f": [1.0, float("inf")], "s": ["1", 'a"b']}))
    text = frame.to_sor()
    assert text == '<+0> <1.0> <"1">\n<+1> <1e999> <a"b>\n'
    assert read_sor(text.encode()) == frame


@pytest.mark.parametrize("value", [float("nan")])
def test_to_sor_refuses_nan(value):
    with pytest.raises(ValueError, match="NaN"):
        DataFrame.from_array([value]).to_sor()


@pytest.mark.parametrize("value", ['a "b"', "two\nlines"])
def test_to_sor_refuses_strings_sor_cannot_hold(value):
    with pytest.raises(ValueError, match="row 0, column 0"):
        DataFrame.from_array([value]).to_sor()


def test_frames_are_immutable(frame):
    with pytest.raises(AttributeError):
        frame.nrows = 5
    with pytest.raises(AttributeError):
        frame.extra = 1
