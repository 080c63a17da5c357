"""The `eau2` command."""

import os
import signal
import sys
import warnings

import click

from eau2 import __version__
from eau2.cli.admin import info, ls, nodes, rm
from eau2.cli.generate import generate
from eau2.cli.load import load
from eau2.cli.run import run
from eau2.cli.sorer import sorer

INTERRUPTED = 130
"""The exit status of a command ended by Ctrl-C, as shells give it (128 + SIGINT)."""


class _Eau2(click.Group):
    """The command group; Ctrl-C ends any of its commands quietly with status 130 (click's
    own would print "Aborted!" and exit with 1)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order added: running, data, nodes, tools

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # What the command had to undo was undone as the interrupt went up; a second
            # Ctrl-C while the interpreter shuts down ends it at once, without a traceback.
            signal.signal(signal.SIGINT, lambda *_: os._exit(INTERRUPTED))
            raise click.exceptions.Exit(INTERRUPTED) from None


@click.group(cls=_Eau2, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eau2")
def main() -> None:
    """eau2: a distributed, read-only store for dataframes, on Dask."""
    warnings.showwarning = _one_line


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on standard error, without Python's echo of the source line."""
    print(f"eau2: {category.__name__}: {message}", file=file or sys.stderr)


for _command in (run, load, ls, info, rm, nodes, generate, sorer):
    main.add_command(_command)
