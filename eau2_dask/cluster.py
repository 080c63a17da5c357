"""The embedded default: a local Dask cluster whose workers are eau2 nodes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from eau2_dask import config


@contextmanager
def embedded_cluster(
    nodes: int | None = None,
    *,
    budget: str | None = None,
    memory_limit: str | int = "auto",
    quiet: bool = False,
) -> Iterator[Client]:
    """A client of a new local cluster: `nodes` worker processes on 127.0.0.1, each an eau2
    node (preloaded with eau2, one thread), closed with all its processes on exit.

    `nodes` defaults to the ``eau2.nodes`` setting, `budget` to ``eau2.budget``.
    """
    nodes = nodes or config.get("nodes")
    preload_argv = ["--eau2-budget", str(budget)] if budget else []
    with (
        LocalCluster(
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
