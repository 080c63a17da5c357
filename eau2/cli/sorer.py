"""`eau2 sorer`: one query about an SoR file, with the single-dash flags of the `sorer`
program that SoR files come from."""

from __future__ import annotations

import warnings

import click

from eau2.cli.errors import OneLineCommand
from eau2.errors import SorWarning
from eau2.sor.reader import read_sor
from eau2.types import ColumnType


@click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "file", required=True, metavar="FILE", help="The SoR file to read.")
@click.option(
    "-from", "start", type=click.IntRange(min=0), default=0, metavar="N", help="First byte of the window."
)
@click.option(
    "-len", "length", type=click.IntRange(min=0), default=None, metavar="N", help="Bytes in the window."
)
@click.option("-print_col_type", "col_type", type=int, metavar="C", help="Print column C's type.")
@click.option(
    "-print_col_idx", "col_idx", type=int, nargs=2, metavar="C R", help="Print the value at column C, row R."
)
@click.option(
    "-is_missing_idx",
    "missing_idx",
    type=int,
    nargs=2,
    metavar="C R",
    help="Print 1 if that value is missing, else 0.",
)
def sorer(file, start, length, col_type, col_idx, missing_idx) -> None:
    """Answer one query about an SoR file (or a byte window of it)."""
    queries = [q for q in (col_type, col_idx, missing_idx) if q is not None]
    if len(queries) != 1:
        raise click.ClickException(
            "give exactly one of -print_col_type C, -print_col_idx C R, -is_missing_idx C R"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SorWarning)
            frame = read_sor(file, start=start, length=length)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if frame.nrows == 0 and frame.dropped_rows:
        raise click.ClickException(
            f"{file}: every line was dropped ({frame.dropped_rows}), none is a row of the SoR format; "
            f"the first: {frame.dropped_lines[0]}"
        )
    col = col_type if col_type is not None else (col_idx or missing_idx)[0]
    if not 0 <= col < frame.ncols:
        raise click.ClickException(f"column {col} is out of range: {file} has {frame.ncols} columns")
    if col_type is not None:
        click.echo(frame.schema[col].name)
        return
    row = (col_idx or missing_idx)[1]
    if not 0 <= row < frame.nrows:
        raise click.ClickException(f"row {row} is out of range: {file} has {frame.nrows} rows")
    if missing_idx is not None:
        click.echo("1" if frame.is_missing(col, row) else "0")
    else:
        click.echo(format_value(frame.schema[col], frame.get(col, row)))


def format_value(column_type: ColumnType, value) -> str:
    """A value as sorer prints it: BOOL 0/1, INT plain, FLOAT shortest, STRING quoted, missing empty."""
    if value is None:
        return ""
    if column_type is ColumnType.BOOL:
        return "1" if value else "0"
    if column_type is ColumnType.FLOAT:
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if column_type is ColumnType.STRING:
        return f'"{value}"'
    return str(value)
