"""`eau2 sorer`, as the spec's last section defines it."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from eau2.cli import main


@pytest.fixture
def worked(tmp_path):
    path = tmp_path / "worked.sor"
    path.write_bytes(b"<0> <23> <hi>\n<1> <12> <>\n<1> <1>\n")
    return str(path)


def sorer(*args: str):
    return CliRunner().invoke(main, ["sorer", *args])


@pytest.mark.parametrize(
    ("args", "output"),
    [
        (["-print_col_type", "0"], "BOOL"),
        (["-print_col_type", "2"], "STRING"),
        (["-is_missing_idx", "2", "0"], "0"),
        (["-is_missing_idx", "2", "1"], "1"),
        (["-is_missing_idx", "2", "2"], "1"),
        (["-print_col_idx", "2", "0"], '"hi"'),
        (["-print_col_idx", "2", "1"], ""),
        (["-print_col_idx", "0", "1"], "1"),
        (["-from", "5", "-len", "100", "-print_col_idx", "1", "0"], "12"),
    ],
)
def test_worked_example(worked, args, output):
    result = sorer("-f", worked, *args)
    assert result.exit_code == 0, result.output
    assert result.output == output + "\n"


@pytest.mark.parametrize(
    ("literal", "printed"),
    [
        ("1.2", "1.2"),
        ("-.2", "-0.2"),
        ("-2e-9", "-2e-09"),
        ("1e10", "10000000000"),
        ("+306", "306"),
        ("3.", "3"),
    ],
)
def test_value_formats(tmp_path, literal, printed):
    path = tmp_path / "v.sor"
    path.write_text(f"<{literal}>\n<2.5>\n")
    assert sorer("-f", str(path), "-print_col_idx", "0", "0").output == printed + "\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-print_col_type", "3"], "column 3 is out of range"),
        (["-print_col_idx", "0", "3"], "row 3 is out of range"),
        (["-print_col_type", "0", "-is_missing_idx", "0", "0"], "exactly one of"),
        ([], "exactly one of"),
        (["-print_col_idx", "0"], "requires 2 arguments"),
        (["-from", "-3", "-print_col_type", "0"], "-from"),
        (["-from", "500", "-print_col_type", "0"], "past the end"),
    ],
)
def test_errors_are_one_line_and_fail(worked, args, message):
    result = sorer("-f", worked, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_file_is_one_line_error(tmp_path):
    result = sorer("-f", str(tmp_path / "missing.sor"), "-print_col_type", "0")
    assert result.exit_code != 0 and "missing.sor" in result.output


def test_a_file_whose_every_line_is_dropped_says_so(tmp_path):
    path = tmp_path / "garbage.sor"
    path.write_text("garbage\nmore garbage\n")
    result = sorer("-f", str(path), "-print_col_type", "0")
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"Error: {path}: every line was dropped (2), none is a row of the SoR format; "
        "the first: line 1: text outside a field"
    ]


def test_installed_command_runs(worked):
    result = subprocess.run(
        [sys.executable, "-m", "eau2", "sorer", "-f", worked, "-print_col_idx", "1", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "12\n")
    bad = subprocess.run(
        [sys.executable, "-m", "eau2", "sorer", "-f", worked, "-print_col_type", "7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1
