"""`run`: an application on every eau2 node of a Dask cluster at once, one pinned task per node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import distributed
from distributed import Client, get_worker, secede

from eau2.app.application import Application, ApplicationError, start
from eau2.app.output import node_output
from eau2.errors import RunCancelled
from eau2.store.key import Key
from eau2_dask.cluster import embedded_cluster
from eau2_dask.install import ensure_ready
from eau2_dask.kv import DaskKVStore, store_settings
from eau2_dask.node import EXTENSION
from eau2_dask.transport import DaskTransport, worker_transport

_POLL = 0.25  # seconds between checks that every node's worker is still there


logger = logging.getLogger("eau2")

STOP_SECONDS = 0.2
"""How long a stopped run's ranks get to reach their next eau2 call (which stops them)
before what they stored is taken back."""

ASK_SECONDS = 2.0
"""How long a stopping run waits for a node's answer (to its cancel, for its writes)."""


def run(
    app_cls: type[Application],
    *args,
    client: Client | None = None,
    timeout: float | None = None,
    keep_on_failure: bool = False,
    **kwargs,
) -> list[Any]:
    """Run `app_cls` on every eau2 node of the cluster at once; each node's `run()` result, by node.

    Uses `client` (or the current Dask client); with neither, starts an embedded local
    cluster for the run and closes it after. What nodes print reaches this process's
    standard output prefixed ``[node N]``. An exception on a node cancels the others and
    is raised as `ApplicationError` naming the node, as is the loss of a node's worker;
    a run that outlasts `timeout` seconds is cancelled with `TimeoutError`, and Ctrl-C
    (`KeyboardInterrupt`) cancels it too.

    A cancelled rank stops at its next call to the store (`eau2.RunCancelled`), and no
    put of the run is taken after that. A run that fails, times out or is interrupted
    then removes every value and frame it stored, unless `keep_on_failure`; one that
    succeeds keeps what its application kept.
    """
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            with embedded_cluster() as own:
                return _run(own, app_cls, args, kwargs, timeout, keep_on_failure)
    return _run(client, app_cls, args, kwargs, timeout, keep_on_failure)


def _run(
    client: Client, app_cls, args: tuple, kwargs: dict, timeout: float | None, keep_on_failure: bool
) -> list[Any]:
    if not (isinstance(app_cls, type) and issubclass(app_cls, Application)):
        raise TypeError(f"an application is a subclass of eau2.Application, not {app_cls!r}")
    directory = ensure_ready(client)
    vacant = [node for node, address in enumerate(directory) if address is None]
    if vacant:
        raise ApplicationError(
            vacant[0],
            f"node{'s' if len(vacant) > 1 else ''} {vacant} have no worker (they left the cluster): an "
            "application runs on every node; start workers to take their places (they take the "
            "numbers that are free) and run it again",
        )
    run_id = uuid.uuid4().hex[:12]
    output, writes = _Output(), _Writes()
    topics = {f"eau2-print-{run_id}": output.receive, f"eau2-writes-{run_id}": writes.receive}
    for topic, handler in topics.items():
        client.subscribe_topic(topic, handler)
    settings = store_settings()
    futures = [
        client.submit(
            _rank,
            app_cls,
            args,
            kwargs,
            run_id,
            settings,
            key=f"eau2-run-{app_cls.__name__.lower()}-{run_id}-{node}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        for node, address in enumerate(directory)
    ]
    try:
        _watch(client, futures, directory, timeout, app_cls.__name__)
        returned = client.gather(futures)
        _ask_every_node(client, directory, "eau2_run_finished", run_id=run_id)
        output.wait_for(sum(lines for _, lines in returned))
        return [result for result, _ in returned]
    except BaseException as error:
        stopped = "interrupted" if isinstance(error, KeyboardInterrupt) else f"stopped: {error}"
        _cancel(client, directory, run_id, f"the run was {stopped}")
        with contextlib.suppress(TimeoutError), client.as_current():  # wait() uses it
            distributed.wait(futures, timeout=STOP_SECONDS)
        client.cancel(futures)
        if not keep_on_failure:
            try:
                _take_back(client, directory, run_id, writes)
            except Exception:  # the run's own error is the one to raise
                logger.warning("eau2 could not remove all that run %s stored", run_id, exc_info=True)
        raise
    finally:
        for topic in topics:
            client.unsubscribe_topic(topic)


def _watch(client: Client, futures: list, directory: list[str], timeout: float | None, name: str) -> None:
    """Return when every rank finished; raise naming the node on a failure or a lost worker."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = set(futures)
    while pending:
        with contextlib.suppress(TimeoutError), client.as_current():  # wait() uses it
            distributed.wait(list(pending), timeout=_POLL, return_when="FIRST_COMPLETED")
        failed = [f for f in futures if f.status in ("error", "cancelled")]
        if failed:
            _raise_failure(futures, failed)
        pending = {f for f in futures if f.status != "finished"}
        now = client.sync(client.scheduler.eau2_directory)
        for node, address in enumerate(directory):
            if node >= len(now) or now[node] != address:
                raise ApplicationError(node, f"its worker {address} left the cluster during the run")
        if deadline is not None and time.monotonic() > deadline and pending:
            still = sorted(futures.index(f) for f in pending)
            raise TimeoutError(f"{name} did not finish within {timeout} s; still running: nodes {still}")


def _raise_failure(futures: list, failed: list) -> None:
    errors = {futures.index(f): f.exception() if f.status == "error" else None for f in failed}
    causes = {node: e for node, e in errors.items() if not isinstance(e, RunCancelled)} or errors
    node = min(causes)
    error = causes[node]
    if error is None:
        raise ApplicationError(node, "its task was cancelled")
    raise ApplicationError(node, f"{type(error).__name__}: {error}") from error


def _cancel(client: Client, directory: list[str], run_id: str, reason: str) -> None:
    """Cancel the run on every node: its waits wake with `RunCancelled`, its calls and puts
    are refused from now on. Nodes that are gone or do not answer in time are skipped
    (they have nothing to cancel, or are lost anyway)."""
    _ask_every_node(client, directory, "eau2_cancel", run_id=run_id, reason=reason)


def _take_back(client: Client, directory: list[str], run_id: str, writes: _Writes) -> None:
    """Remove what the run stored: the writes its ranks reported as they made them, and
    those the live nodes recorded (whose report may not have arrived yet)."""
    made = set(writes.received)
    for recorded in _ask_every_node(client, directory, "eau2_run_writes", run_id=run_id):
        if isinstance(recorded, (list, tuple)):  # None from a node gone; a dict is an error
            made.update(tuple(write) for write in recorded)
    if not made:
        return
    kv = DaskKVStore(DaskTransport(client.loop, client.rpc, client.scheduler.eau2_directory))
    taken = []
    for name, home, tag in sorted(made, key=str):
        with contextlib.suppress(ValueError, TypeError):  # not a key: nothing of it was stored
            taken.append((Key(name, home), tag))
    kv.take_back(taken)


def _ask_every_node(client: Client, directory: list[str], verb: str, **arguments) -> list:
    """Each node's reply to `verb`, asked of all at once; None for a node that is gone or
    did not answer within `ASK_SECONDS`."""

    async def ask(address: str):
        try:
            return await asyncio.wait_for(getattr(client.rpc(address), verb)(**arguments), ASK_SECONDS)
        except Exception:
            return None

    async def ask_all():
        return await asyncio.gather(*(ask(address) for address in directory if address))

    return client.sync(ask_all)


def _rank(app_cls, args: tuple, kwargs: dict, run_id: str, settings: dict):
    """One node's part of a run, as a task on that node's worker; returns (result, lines printed)."""
    secede()
    worker = get_worker()
    transport = worker_transport(run_id)
    eau2_node = worker.extensions[EXTENSION]
    node = transport.this_node()
    lines = 0

    def emit(line: str) -> None:
        nonlocal lines
        lines += 1
        worker.log_event(f"eau2-print-{run_id}", line)

    def wrote(key: Key, tag: str | None) -> None:
        """Record a write twice: on this node, and with the client (if this worker dies)."""
        eau2_node.runs.wrote(run_id, (key, tag))
        worker.log_event(f"eau2-writes-{run_id}", [key.name, key.home, tag])

    kv = DaskKVStore(transport, **settings, on_write=wrote)
    try:
        with node_output(node, emit):
            result = start(app_cls, args, kwargs, kv)
    except RunCancelled:
        return None, lines  # stopped by the run (which already failed): not a failure of this node
    return result, lines


class _Writes:
    """The writes a run's ranks report (name, home, frame write tag) as they make them."""

    def __init__(self) -> None:
        self.received: list[tuple] = []

    def receive(self, event) -> None:
        _, write = event
        self.received.append(tuple(write))


class _Output:
    """Prints the lines nodes send, and tells when all of them have arrived."""

    def __init__(self) -> None:
        self._received = 0
        self._changed = threading.Condition()

    def receive(self, event) -> None:
        _, line = event
        print(line, flush=True)
        with self._changed:
            self._received += 1
            self._changed.notify_all()

    def wait_for(self, lines: int, timeout: float = 10) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._received >= lines, timeout)
