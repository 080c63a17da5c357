"""The `eau2` command."""

import click

from eau2 import __version__
from eau2.cli.generate import generate
from eau2.cli.run import run
from eau2.cli.sorer import sorer


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eau2")
def main() -> None:
    """eau2: a distributed, read-only store for dataframes, on Dask."""


main.add_command(sorer)
main.add_command(run)
main.add_command(generate)
