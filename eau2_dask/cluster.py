"""The embedded default: a local Dask cluster whose workers are eau2 nodes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import forkserver, resource_tracker

import dask.config
from distributed import Client, LocalCluster

from eau2_dask import config

WORKER_IMPORTS = ["eau2_dask.own_session", "eau2_dask", "eau2.examples"]
"""What the embedded cluster's workers import before they start: once, in the process they
are forked from, rather than in each worker (the first puts them in a session of their
own, out of reach of signals for the command's process group)."""


@contextmanager
def embedded_cluster(
    nodes: int | None = None,
    *,
    budget: str | None = None,
    memory_limit: str | int = "auto",
    quiet: bool = False,
) -> Iterator[Client]:
    """A client of a new local cluster: `nodes` worker processes on 127.0.0.1, each an eau2
    node (preloaded with eau2, one thread), closed with all its processes on exit. Its
    workers are in a session of their own: Ctrl-C, SIGTERM and SIGHUP sent to this
    process's group are this process's to answer (by closing the cluster).

    `nodes` defaults to the ``eau2.nodes`` setting, `budget` to ``eau2.budget``. Workers
    are forked from a server process that has imported eau2 and Dask already (see
    `start_worker_server`; it stays for the life of this process), unless the platform has
    none or ``distributed.worker.multiprocessing-method`` asks for ``fork``.
    """
    nodes = nodes or config.get("nodes")
    preload_argv = ["--eau2-budget", str(budget)] if budget else []
    method = dask.config.get("distributed.worker.multiprocessing-method")
    forked = method in ("spawn", "forkserver") and start_worker_server()
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": "forkserver" if forked else method}),
        LocalCluster(
            # A forked worker has the server's environment: give it this process's, as a
            # spawned one would have it (credentials and settings set since, say).
            env=dict(os.environ) if forked else None,
            n_workers=nodes,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            preload=["eau2"],
            preload_argv=preload_argv,
            memory_limit=memory_limit,
            silence_logs=logging.CRITICAL,  # failures reach the caller as exceptions
        ) as cluster,
        Client(cluster) as client,
    ):
        if not quiet:
            print(
                f"eau2: started a local cluster of {nodes} node{'s' if nodes > 1 else ''}; "
                f"dashboard: {client.dashboard_link}",
                file=sys.stderr,
            )
        yield client


def start_worker_server() -> bool:
    """Start multiprocessing's fork server with `WORKER_IMPORTS` imported, if it is not
    running; whether the platform has one (not Windows). Returns at once: the server
    imports while this process goes on, so call it early.

    Workers forked from it start in a fraction of the time spawned ones take (each would
    import Dask, pandas and eau2 itself, side by side on the same cores). It starts with the
    environment Dask gives the workers it spawns (``distributed.nanny.pre-spawn-environ``,
    a fixed ``PYTHONHASHSEED``), since those only work from the start of a process; this
    process's own environment is left as it was.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    spawn_environ = dask.config.get("distributed.nanny.pre-spawn-environ", default=None) or {}
    environ = {k: os.environ.get(k, str(v)) for k, v in spawn_environ.items() if v is not None}
    if environ.get("PYTHONHASHSEED") in (None, "0"):
        environ["PYTHONHASHSEED"] = "6640"  # what Dask's Nanny gives its workers
    multiprocessing.get_context("forkserver").set_forkserver_preload(WORKER_IMPORTS)
    _start_resource_tracker_deaf_to_hangups()
    saved = {key: os.environ.get(key) for key in environ}
    os.environ.update(environ)
    try:
        forkserver.ensure_running()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return True


def _start_resource_tracker_deaf_to_hangups() -> None:
    """Start multiprocessing's resource tracker (the fork server's workers use it) ignoring
    SIGHUP, as it ignores SIGINT and SIGTERM itself: a closed terminal ends the command,
    which closes its cluster, while a tracker killed first would print a traceback for
    every shared lock the workers then release."""
    try:
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    except (ValueError, AttributeError):  # not the main thread, or no SIGHUP here
        resource_tracker.ensure_running()
        return
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)
