"""The store on Dask nodes, from a client or from a task: `connect`, and the store class that
adds the dask.dataframe view."""

from __future__ import annotations

import pickle

from distributed import Client, get_worker
from distributed.utils import sync

from eau2.distributed.checks import check_replicas, check_timeout
from eau2.distributed.kv import KVStore
from eau2.distributed.repair import RepairReport
from eau2.store.key import Key
from eau2.store.values import FrameMeta
from eau2_dask import collection, config
from eau2_dask.install import ensure_ready
from eau2_dask.transport import DaskTransport


class DaskKVStore(KVStore):
    """A `KVStore` on Dask nodes, whose frames also have `to_dask()` (which asks `client`,
    when there is one, how many threads each node's worker has)."""

    def __init__(self, *args, client: Client | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client

    def repair(self, timeout: float | None = None) -> RepairReport:
        """Bring every frame back to its replica count now, on the scheduler, after any
        repair it is running (never two at once: each could remove copies the other counts
        on), whether asked from a client or from a task (from neither: here). `TimeoutError`
        if it has not finished within `timeout` seconds (None: no limit), the repair going
        on; `ConnectionError` if the scheduler cannot be reached or this store's client is
        closed."""
        timeout = check_timeout(timeout)
        if self.client is not None:
            if self.client.status in ("closing", "closed") or self.client.scheduler is None:
                raise ConnectionError("this store's client is closed: connect a new one to repair")
            loop, scheduler = self.client.loop, self.client.scheduler
        else:
            try:
                worker = get_worker()
            except ValueError:  # neither a client nor a task: repair from here
                return super().repair(timeout)
            loop, scheduler = worker.loop, worker.scheduler
        try:
            answer = sync(loop, scheduler.eau2_repair_now, callback_timeout=timeout)
        except TimeoutError:  # the repair's own errors come back as data
            if timeout is None:
                raise
            raise TimeoutError(
                f"the repair did not finish within {timeout:g} s; if the scheduler at "
                f"{scheduler.address} had the request, the repair goes on there"
            ) from None
        except OSError as error:
            if self.client is not None and self.client.status in ("closing", "closed"):
                raise ConnectionError("this store's client was closed during the repair") from None
            lost = f"lost the scheduler at {scheduler.address} during the repair: {error}"
            raise ConnectionError(lost) from None
        if "error" in answer:
            raise _unpickled(answer)
        report = answer["report"]
        lost = {name: list(chunks) for name, chunks in report.pop("lost").items()}  # msgpack: tuples
        return RepairReport(**report, lost=lost)

    def to_dask(self, meta: FrameMeta, frame: Key, partition_size: int | str | None):
        return collection.to_dask(meta, frame, self.transport.directory(), partition_size, self.client)


def _unpickled(answer: dict) -> BaseException:
    """The error a repair on the scheduler raised; a `RuntimeError` with its text where this
    process cannot unpickle it (a class it cannot import, or one that does not take back
    its own arguments)."""
    try:
        return pickle.loads(answer["error"])
    except Exception:
        return RuntimeError(answer.get("error_text", "the repair on the scheduler failed"))


def store_settings() -> dict:
    """The ``eau2.*`` settings a `KVStore` takes, from Dask's configuration."""
    return {
        "chunk_bytes": config.byte_setting("chunk-bytes"),
        "cache_bytes": config.byte_setting("cache-bytes"),
        "replicas": check_replicas(config.get("replicas")),
    }


def connect(client: Client, *, node: int | None = None, replicas: int | None = None) -> DaskKVStore:
    """A `KVStore` on the eau2 nodes behind `client`, used from this (client) process.

    `node` only sets what `this_node()` answers (and so which chunks `local_map` visits);
    every value is reached over the network. `replicas` defaults to ``eau2.replicas``.
    """
    ensure_ready(client)
    transport = DaskTransport(client.loop, client.rpc, client.scheduler.eau2_directory, node=node)
    settings = store_settings()
    if replicas is not None:
        settings["replicas"] = replicas
    return DaskKVStore(transport, **settings, client=client)
