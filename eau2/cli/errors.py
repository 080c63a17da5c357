"""Errors as one line on standard error: usage errors, and the errors eau2 and Dask raise
that a user can act on (a missing key, a value already there, a lost node, a bad file)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from eau2.errors import Eau2Error


@contextmanager
def one_line_usage() -> Iterator[None]:
    """Usage errors (a bad option or argument, an unknown command) raised within, as one
    line (``Error: ...``, exit status 1) instead of click's usage block; a group called
    without a command still shows its help."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as error:
        raise click.ClickException(error.format_message()) from None


class OneLineCommand(click.Command):
    """A command whose bad arguments are one line on stderr (``Error: ...``), not click's
    usage block."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as error:
            raise click.ClickException(error.format_message()) from None


def one_line_errors(command: Callable) -> Callable:
    """`command`, with the errors a user can act on turned into one-line `ClickException`s."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            raise  # standard output closed (`| head`): the command group ends quietly
        except (Eau2Error, LookupError, ValueError, OSError, TimeoutError) as error:
            raise click.ClickException(message(error)) from None

    return wrapper


def message(error: BaseException) -> str:
    """An error's own text (a `KeyError`'s without the quotes ``str`` adds)."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error) or type(error).__name__
