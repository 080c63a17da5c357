"""Which Dask scheduler a command talks to, and its client.

As Dask's own commands choose: ``--scheduler ADDRESS``, else ``--scheduler-file FILE``
(the JSON that ``dask scheduler --scheduler-file FILE`` writes), else Dask's
``scheduler-address`` setting (the ``DASK_SCHEDULER_ADDRESS`` variable, or Dask's
configuration files); else none, and `eau2 run` starts an embedded cluster.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import gc
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from eau2.cli.scheduler_address import check_scheduler

CONNECT_TIMEOUT = "30s"
"""How long a client has to connect, once the scheduler has answered the check."""

VARIABLE = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class Scheduler:
    """A scheduler's address, and how the user named it (for messages)."""

    address: str
    named_by: str


_OPTIONS = [
    (
        ["--scheduler"],
        {
            "default": None,
            "metavar": "ADDRESS",
            "help": f"The Dask scheduler to use (tcp://HOST:8786); without it, --scheduler-file's, "
            f"else ${VARIABLE}.",
        },
    ),
    (
        ["--scheduler-file", "scheduler_file"],
        {
            "default": None,
            "metavar": "FILE",
            "help": "Use the scheduler this file names: the JSON file that "
            "`dask scheduler --scheduler-file FILE` writes.",
        },
    ),
]


def scheduler_options(command: Callable) -> Callable:
    """Add ``--scheduler`` and ``--scheduler-file`` to `command` (as `scheduler` and
    `scheduler_file`), as a decorator."""
    for declarations, attributes in reversed(_OPTIONS):
        command = click.option(*declarations, **attributes)(command)
    return command


def scheduler_params() -> list[click.Option]:
    """``--scheduler`` and ``--scheduler-file``, to add to a command's parameters."""
    return [click.Option(declarations, **attributes) for declarations, attributes in _OPTIONS]


def resolve(address: str | None, scheduler_file: str | None) -> Scheduler | None:
    """The scheduler the user named: `address`, else `scheduler_file`'s, else Dask's
    ``scheduler-address`` setting; None if none is named."""
    import dask.config

    if address:
        return Scheduler(address, f"--scheduler {address}")
    if scheduler_file:
        return read_scheduler_file(scheduler_file)
    configured = dask.config.get("scheduler-address", None)
    if configured:
        configured = str(configured)
        if os.environ.get(VARIABLE) == configured:
            return Scheduler(configured, f"{VARIABLE}={configured}")
        return Scheduler(configured, f"Dask's scheduler-address setting {configured}")
    return None


def read_scheduler_file(path: str) -> Scheduler:
    """The scheduler a Dask scheduler file names (resolved where the command runs); one
    line if the file is missing or is not one."""
    where = f"--scheduler-file {path}"
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(f"{where}: no such file") from None
    except IsADirectoryError:
        raise click.ClickException(f"{where} is a folder, not a scheduler file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{where}: cannot read it: {getattr(error, 'strerror', error)}") from None
    try:
        address = json.loads(text)["address"]
    except (ValueError, KeyError, TypeError):
        address = None
    if not isinstance(address, str) or not address:
        raise click.ClickException(
            f'{where} is not a Dask scheduler file: that is JSON with the scheduler\'s "address", '
            "as `dask scheduler --scheduler-file FILE` writes it"
        )
    return Scheduler(address, f"{where} (scheduler {address})")


def required(scheduler: Scheduler | None) -> Scheduler:
    """`scheduler`; one line saying how to name one if it is None."""
    if scheduler is None:
        raise click.ClickException(
            f"no scheduler given: pass --scheduler ADDRESS or --scheduler-file FILE, or set {VARIABLE}"
        )
    return scheduler


@contextmanager
def scheduler_client(scheduler: Scheduler) -> Iterator:
    """A Dask client of `scheduler`, once it has answered the check; closed on exit."""
    from distributed import Client

    skip_last_collections()
    check_scheduler(scheduler.address, where=scheduler.named_by)
    try:
        client = Client(scheduler.address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as error:
        raise click.ClickException(f"{scheduler.named_by}: cannot connect: {error}") from None
    with client:
        try:
            yield client
        except (OSError, concurrent.futures.CancelledError, asyncio.CancelledError) as error:
            if not _lost(client, error):
                raise
            # Closing the client cancels its attempts to reconnect, which Dask logs with a
            # traceback: the one line below says it all.
            for name in ("distributed.client", "distributed.comm", "distributed.core"):
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
            lost = f"lost the connection to the scheduler at {scheduler.address}"
            raise click.ClickException(lost) from None


def _lost(client, error: BaseException) -> bool:
    """Whether `error`, raised while `client` was in use, is its connection to the
    scheduler lost: Dask's errors for it, or any I/O error once the client is no longer
    connected."""
    from distributed.client import FuturesCancelledError
    from distributed.comm.core import CommClosedError

    if isinstance(error, (CommClosedError, FuturesCancelledError)):
        return True
    return client.status != "running"


@contextmanager
def cluster_client(scheduler: Scheduler | None, nodes: int) -> Iterator:
    """A client of `scheduler`, or, if there is none, of an embedded cluster of `nodes`
    nodes that is closed on exit."""
    import eau2_dask

    if scheduler is not None:
        with scheduler_client(scheduler) as client:
            yield client
    else:
        skip_last_collections()
        with eau2_dask.embedded_cluster(nodes) as client:
            yield client


@contextmanager
def node_client(address: str | None, scheduler_file: str | None) -> Iterator:
    """For the admin commands: a client of the scheduler the user named (one line if none
    is named, or it has no workers), whose workers are eau2 nodes."""
    scheduler = required(resolve(address, scheduler_file))
    with scheduler_client(scheduler) as client:
        if not client.scheduler_info(n_workers=-1)["workers"]:
            raise click.ClickException(
                f"{scheduler.named_by}: the scheduler has no workers, so no eau2 nodes"
            )
        yield client


@functools.cache
def skip_last_collections() -> None:
    """At exit, spare the interpreter its last garbage collections over all that a Dask
    client loads (Dask, pandas, bokeh, ...): half a second of a short command's time, and
    nothing left to collect then that the process's end does not free."""
    atexit.register(gc.freeze)
