"""The `eau2` command."""

import logging
import os
import signal
import sys
import threading
import warnings

import click

from eau2 import __version__
from eau2.cli.admin import info, ls, nodes, rm
from eau2.cli.errors import one_line_usage
from eau2.cli.generate import generate
from eau2.cli.load import load
from eau2.cli.run import run
from eau2.cli.sorer import sorer

INTERRUPTED = 130
"""The exit status of a command ended by Ctrl-C, as shells give it (128 + SIGINT)."""


BROKEN_PIPE = 141
"""The exit status of a command whose standard output was closed (128 + SIGPIPE), as a
shell reports it for other tools."""


def _quiet_stdout() -> None:
    """Point standard output at the null device, so that what is left in its buffer is
    dropped instead of failing again as the interpreter exits."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture)
        pass


ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
"""Signals that end a command as Ctrl-C does (``kill``, ``timeout``, a closed terminal),
with the same clean-up, and status 128 + their number."""


class _Ended(KeyboardInterrupt):
    """A signal of `ENDING_SIGNALS`, raised in the main thread as Ctrl-C is."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


def _end(number: int, frame) -> None:
    _quiet_loop_errors()
    raise _Ended(number)


def _quiet_loop_errors() -> None:
    """Silence what Dask's event loop thread logs as the interrupt goes up: a ``sync`` call
    interrupted before it started fails to cancel it (a NameError in Dask), harmlessly."""
    for name in ("tornado.application", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _unraisable(hook):
    """`sys.unraisablehook` that sends again a signal whose exception Python swallowed (it
    came while a weak reference callback or a finaliser ran, which cannot raise): its
    handler then runs again at the next instruction, and the command ends as asked."""

    def unraisable(unraisable) -> None:
        error = unraisable.exc_value
        if isinstance(error, _Ended):
            os.kill(os.getpid(), error.number)
        elif isinstance(error, KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        else:
            hook(unraisable)

    return unraisable


class _Eau2(click.Group):
    """The command group. A usage error of any of its commands is one line, as their other
    errors are (exit status 1, not click's usage block and 2). Ctrl-C ends any of its
    commands quietly with status 130 (click's own would print "Aborted!" and exit with 1),
    SIGTERM and SIGHUP likewise with 143 and 129, after the same clean-up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order added: running, data, nodes, tools

    def make_context(self, info_name, args, parent=None, **extra):
        with one_line_usage():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        with one_line_usage():
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = {number: signal.signal(number, _end) for number in ENDING_SIGNALS} if main_thread else {}
        hook = sys.unraisablehook
        sys.unraisablehook = _unraisable(hook)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Standard output was closed (`eau2 info users | head -1`): end quietly, as
            # other tools do, and spare the interpreter a failing flush at exit.
            _quiet_stdout()
            raise click.exceptions.Exit(BROKEN_PIPE) from None
        except KeyboardInterrupt as interrupt:
            status = 128 + interrupt.number if isinstance(interrupt, _Ended) else INTERRUPTED
            # What the command had to undo was undone as the interrupt went up; a second
            # signal while the interpreter shuts down ends it at once, without a traceback.
            for number in (signal.SIGINT, *previous):
                signal.signal(number, lambda *_, status=status: os._exit(status))
            previous = {}
            raise click.exceptions.Exit(status) from None
        finally:
            sys.unraisablehook = hook
            for number, handler in previous.items():
                signal.signal(number, handler)


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
