"""An eau2 node inside a Dask worker: its store, the RPC verbs peers call, its runs."""

from __future__ import annotations

import asyncio
import collections
import logging
import tempfile
import uuid
from pathlib import Path

from distributed.utils import offload, sync

from eau2.errors import KeyExistsError, NodeLost, RunCancelled, SorError
from eau2.sor.origin import BlockOrigin, reload_block
from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2.store.waits import Cancellation
from eau2_dask import config
from eau2_dask.wire import unwire, wire

logger = logging.getLogger("eau2")

EXTENSION = "eau2"
"""The node's name in ``worker.extensions``, where tasks find it."""

REPORTED_ERRORS = {
    error.__name__: error
    for error in (
        KeyError,
        KeyExistsError,
        TimeoutError,
        RunCancelled,
        SorError,
        TypeError,
        ValueError,
        OSError,
        MemoryError,
    )
}
"""Errors a verb reports in its reply (``{"error": name, "message": text}``), raised again
by the caller as themselves: so that an error on a live node (a full disk, a bad value) is
never taken for the loss of the node, and Dask does not log expected ones as failures.
Other errors come back as `RuntimeError`."""


def raise_reply(reply) -> None:
    """Raise the error a verb reported in its reply, if it did."""
    if isinstance(reply, dict) and "error" in reply:
        if reply["error"] == "NodeLost":
            raise NodeLost(reply["node"], reply["message"])
        raise REPORTED_ERRORS.get(reply["error"], RuntimeError)(reply["message"])


def _reported(handler):
    """A handler whose errors come back in its reply, for the caller to raise again."""

    async def reply(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except NodeLost as error:
            return {"error": "NodeLost", "node": error.node, "message": str(error)}
        except Exception as error:
            kind = next((name for name, cls in REPORTED_ERRORS.items() if type(error) is cls), None)
            if kind is None:
                kind = next((name for name, cls in REPORTED_ERRORS.items() if isinstance(error, cls)), "")
            message = error.args[0] if len(error.args) == 1 else str(error)
            return {"error": kind, "message": str(message) if kind else f"{type(error).__name__}: {error}"}

    return reply


class Eau2Node:
    """One worker's eau2 node: a `NodeStore` within a byte budget, reached by peers over
    Dask's comms (the ``eau2_*`` handlers) and by tasks through ``worker.extensions``."""

    def __init__(self, worker, budget: int | None, spill_directory: str | None):
        self.worker = worker
        root = Path(spill_directory or tempfile.gettempdir())
        self.spill_directory = root / f"eau2-spill-{uuid.uuid4().hex[:12]}"
        self.store = NodeStore(budget, self.spill_directory if budget is not None else None)
        self.budget = budget
        self.reads: collections.Counter = collections.Counter()
        """Chunks read by dask partitions on this worker: "local" ones, "remote" ones."""
        self._runs: dict[str, Cancellation] = {}
        self._number: int | None = None
        self.transport = None
        """This node's own `DaskTransport`, shared by its tasks (set by `worker_transport`)."""
        worker.handlers.update(
            {
                "eau2_put": _reported(self.handle_put),
                "eau2_get": _reported(self.handle_get),
                "eau2_wait": _reported(self.handle_wait),
                "eau2_info": _reported(self.handle_info),
                "eau2_delete": _reported(self.handle_delete),
                "eau2_keys": _reported(self.handle_keys),
                "eau2_update": _reported(self.handle_update),
                "eau2_drop": _reported(self.handle_drop),
                "eau2_copy": _reported(self.handle_copy),
                "eau2_rebuild": _reported(self.handle_rebuild),
                "eau2_cancel": self.handle_cancel,
            }
        )
        logger.info("eau2 node on %s: budget %s, spill to %s", worker.address, budget, self.spill_directory)

    def number(self) -> int:
        """This node's number (asks the scheduler once; call from a task thread)."""
        if self._number is None:
            directory = sync(self.worker.loop, self.worker.scheduler.eau2_directory)
            self._number = directory.index(self.worker.address)
        return self._number

    def cancellation(self, run_id: str) -> Cancellation:
        return self._runs.setdefault(run_id, Cancellation())

    def end_run(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    async def handle_put(self, name: str, home: int, value, replicas: int = 1) -> str:
        await offload(self.store.put, Key.internal(name, home), unwire(value), replicas)
        return "OK"

    async def handle_get(self, name: str, home: int):
        return {"value": wire(self.store.get(Key.internal(name, home)))}

    async def handle_info(self, name: str, home: int):
        info = self.store.info(Key.internal(name, home))
        return None if info is None else (info.kind, info.nbytes, 0, info.replicas)

    async def handle_wait(self, name: str, home: int, timeout: float | None, run_id: str | None):
        key = Key.internal(name, home)
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: arrived.done() or arrived.set_result(None))

        cancellation = self.cancellation(run_id) if run_id else None
        unregister = cancellation.register(wake) if cancellation else (lambda: None)
        stop_waiting = self.store.when_put(key, wake)
        try:
            await asyncio.wait_for(arrived, timeout)
        except TimeoutError:
            pass
        finally:
            stop_waiting()
            unregister()
        if key in self.store:
            return {"value": wire(self.store.get(key))}
        if cancellation:
            cancellation.check()
        raise TimeoutError(f"key {name!r} was not put on {self.worker.address} within {timeout} s")

    async def handle_delete(self, name: str, home: int) -> str:
        self.store.delete(Key.internal(name, home))
        return "OK"

    async def handle_keys(self) -> list[tuple]:
        return [(i.key.name, i.key.home, i.kind, i.nbytes, i.replicas) for i in self.store.keys()]

    async def handle_drop(self, prefix: str) -> int:
        return self.store.drop(prefix)

    async def handle_update(self, name: str, home: int, value) -> str:
        self.store.update(Key.internal(name, home), unwire(value))
        return "OK"

    async def handle_copy(self, name: str, home: int, source: str, replicas: int = 1) -> str:
        """Fetch a value from the node at `source` and keep a copy here (a replica)."""
        try:
            reply = await self.worker.rpc(source).eau2_get(name=name, home=home)
        except OSError as error:
            raise NodeLost(None, f"the node at {source} to copy {name!r} from is gone: {error}") from None
        raise_reply(reply)
        await offload(self.store.put, Key.internal(name, home), unwire(reply["value"]), replicas)
        return "OK"

    async def handle_rebuild(self, name: str, home: int, origin: dict) -> str:
        """Read and parse a chunk's block again from its file, and keep it here."""
        table = await offload(reload_block, BlockOrigin(**origin))
        await offload(self.store.put, Key.internal(name, home), table)
        return "OK"

    async def handle_cancel(self, run_id: str, reason: str) -> str:
        self.cancellation(run_id).cancel(reason)
        return "OK"

    def close(self) -> None:
        """Called by the worker as it closes: drop the values and the spill files."""
        self.store.close()


def install_node(worker, budget=None, spill_directory: str | None = None) -> Eau2Node:
    """Make `worker` an eau2 node (once; a second call keeps the first node and its data)."""
    node = worker.extensions.get(EXTENSION)
    if node is None:
        memory_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        node = Eau2Node(
            worker,
            config.budget_bytes(budget, memory_limit),
            spill_directory or config.get("spill-directory"),
        )
        worker.extensions[EXTENSION] = node
    return node
