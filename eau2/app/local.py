"""`run_local`: an application on in-process nodes, one thread each."""

from __future__ import annotations

import threading
import time
from typing import Any

from eau2.app.application import Application, ApplicationError, start
from eau2.app.output import node_output, real_stdout
from eau2.distributed.chunking import CHUNK_BYTES
from eau2.distributed.kv import KVStore
from eau2.errors import RunCancelled
from eau2.store.inprocess import InProcessCluster


def run_local(
    app_cls: type[Application],
    *args,
    nodes: int = 3,
    timeout: float | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    **kwargs,
) -> list[Any]:
    """Run `app_cls` on `nodes` in-process nodes at once; each node's `run()` result, by node.

    What a node prints reaches standard output prefixed ``[node N]``. An exception on
    any node cancels the others' waits and is raised as `ApplicationError` naming the
    node; a run that outlasts `timeout` seconds is cancelled with `TimeoutError`.
    """
    results: list[Any] = [None] * nodes
    errors: dict[int, BaseException] = {}
    lock = threading.Lock()

    with InProcessCluster(nodes) as cluster:

        def emit(line: str) -> None:
            with lock:
                print(line, file=real_stdout(), flush=True)

        def rank(node: int) -> None:
            kv = KVStore(cluster.transport(node), chunk_bytes=chunk_bytes)
            try:
                with node_output(node, emit):
                    results[node] = start(app_cls, args, kwargs, kv)
            except BaseException as error:
                with lock:
                    errors[node] = error
                cluster.cancel(f"node {node} failed")

        threads = [
            threading.Thread(target=rank, args=(node,), name=f"eau2-node-{node}", daemon=True)
            for node in range(nodes)
        ]
        for thread in threads:
            thread.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        running = [node for node, thread in enumerate(threads) if thread.is_alive()]
        if running:
            cluster.cancel("the run timed out")
            raise TimeoutError(
                f"{app_cls.__name__} did not finish within {timeout} s; still running: nodes {running}"
            )
    _raise_first_failure(errors)
    return results


def _raise_first_failure(errors: dict[int, BaseException]) -> None:
    """Raise the failure that caused the others (not a `RunCancelled`), naming its node."""
    if not errors:
        return
    causes = {node: error for node, error in errors.items() if not isinstance(error, RunCancelled)} or errors
    node = min(causes)
    error = causes[node]
    raise ApplicationError(node, f"{type(error).__name__}: {error}") from error
