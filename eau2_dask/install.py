"""Turning Dask servers into eau2: the worker plugin, preloads, and readiness checks from a client."""

from __future__ import annotations

import asyncio
import logging

from distributed import Client, Scheduler, Worker
from distributed.diagnostics.plugin import WorkerPlugin

from eau2_dask import metrics
from eau2_dask.node import install_node
from eau2_dask.scheduler import Eau2SchedulerPlugin

logger = logging.getLogger("eau2")

PROBE_SECONDS = 10.0
"""How long `ensure_ready` waits for a worker to say whether it is an eau2 node."""


class Eau2WorkerPlugin(WorkerPlugin):
    """Makes each worker an eau2 node, including workers that join later.

    Registering it again (another client) keeps each worker's existing node and data.
    """

    name = "eau2"

    def __init__(
        self,
        budget: str | int | None = None,
        directory: str | None = None,
        spill_directory: str | None = None,
    ):
        self.budget = budget
        self.directory = directory
        self.spill_directory = spill_directory

    def setup(self, worker: Worker) -> None:
        log_like_dask()
        metrics.export_node(install_node(worker, self.budget, self.directory, self.spill_directory))


def log_like_dask() -> None:
    """Send eau2's log lines (a node's number, budget, directory, repairs, damaged files)
    where the server's own go, at the level Dask's logging config gives ``eau2`` (info by
    default)."""
    import dask.config

    ours, dasks = logging.getLogger("eau2"), logging.getLogger("distributed")
    if not ours.handlers and dasks.handlers:
        for handler in dasks.handlers:
            ours.addHandler(handler)
        ours.setLevel(dask.config.get("logging.eau2", default="info").upper())
        ours.propagate = False


async def setup_server(server, budget=None, directory=None, spill_directory=None) -> None:
    """What ``--preload eau2`` does: a worker becomes a node; a scheduler gets eau2's plugin.

    Dask only logs a preload's exception and starts the server anyway, so a worker whose
    node cannot start (an option that does not parse, a directory it cannot use) logs
    one critical line saying why and exits (`SystemExit`, which Dask does not catch)
    before it joins the cluster.
    """
    log_like_dask()
    if isinstance(server, Scheduler):
        await server.register_scheduler_plugin(
            Eau2SchedulerPlugin(), name=Eau2SchedulerPlugin.name, idempotent=True
        )
    elif isinstance(server, Worker):
        try:
            node = install_node(server, budget, directory, spill_directory)
        except (ValueError, OSError) as error:
            message = f"eau2: worker {server.name} cannot be an eau2 node: {error}"
            logger.critical(message)
            raise SystemExit(message) from None
        metrics.export_node(node)


def ensure_ready(client: Client, timeout: float = 60) -> list[str | None]:
    """Make sure the cluster behind `client` runs eau2; each node's worker address, by node
    (None for a node whose worker is gone).

    Registers the scheduler plugin, and the worker plugin where a worker has no node yet.
    """
    if not client.scheduler_info(n_workers=-1)["workers"]:
        client.wait_for_workers(1, timeout=timeout)
    has_plugin = client.run_on_scheduler(
        lambda dask_scheduler: Eau2SchedulerPlugin.name in dask_scheduler.plugins
    )
    if not has_plugin:
        client.register_plugin(Eau2SchedulerPlugin())
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    if client.sync(_workers_without_node, client, workers):
        client.register_plugin(Eau2WorkerPlugin())
    return client.sync(client.scheduler.eau2_directory)


async def _workers_without_node(client: Client, workers: list[str]) -> list[str]:
    """The workers that answer but are not eau2 nodes. One that does not answer within
    `PROBE_SECONDS` (hung, or leaving) is left to the calls that need it, which name it."""

    async def lacks_node(address: str) -> bool:
        try:
            reply = await asyncio.wait_for(client.rpc(address).eau2_status(), PROBE_SECONDS)
        except Exception:  # silent, or gone meanwhile: not one to make a node now
            return False
        return not isinstance(reply, dict)  # a node replies with its figures (or its error)

    found = await asyncio.gather(*(lacks_node(address) for address in workers))
    return [address for address, lacks in zip(workers, found, strict=True) if lacks]
