"""The `eau2` command."""

import sys
import warnings

import click

from eau2 import __version__
from eau2.cli.generate import generate
from eau2.cli.run import run
from eau2.cli.sorer import sorer


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eau2")
def main() -> None:
    """eau2: a distributed, read-only store for dataframes, on Dask."""
    warnings.showwarning = _one_line


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on standard error, without Python's echo of the source line."""
    print(f"eau2: {category.__name__}: {message}", file=file or sys.stderr)


main.add_command(sorer)
main.add_command(run)
main.add_command(generate)
