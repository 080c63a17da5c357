"""An eau2 node inside a Dask worker: its store, the RPC verbs peers call, its runs."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dask.utils import format_bytes
from distributed.core import Status
from distributed.utils import offload, sync

from eau2.distributed.checks import check_replicas, check_timeout
from eau2.errors import KeyExistsError, NodeLost, RunCancelled, SorError
from eau2.sor.origin import BlockOrigin, reload_block
from eau2.store.files import DiskError, remove_abandoned, why, write_synced
from eau2.store.key import Key, is_chunk_prefix
from eau2.store.node import Incoming, NodeStore
from eau2.store.pieces import PIECE_BYTES, Shape, piece, shape_of
from eau2.store.values import frame_of_chunk, nbytes
from eau2.store.waits import Cancellation, Runs
from eau2_dask import config
from eau2_dask.converted import ConvertedColumns
from eau2_dask.wire import unwire, wire

logger = logging.getLogger("eau2")

LARGE_BYTES = 2 * PIECE_BYTES
"""Values larger than this travel in pieces: no message holds a whole large value."""

UPLOAD_IDLE_SECONDS = 60.0
"""An upload that gets no piece for this long is abandoned (its sender is gone)."""

REASON_CHARS = 1000
"""The longest cancellation reason a node keeps."""

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

    def __init__(
        self,
        worker,
        budget: int | None,
        directory: str | None,
        spill_directory: str | None,
        view_cache: int = 0,
    ):
        self.worker = worker
        self.budget = budget
        self.converted = ConvertedColumns(view_cache)
        """Columns this node converted for dask partitions, kept within `view_cache` bytes."""
        if directory:
            self.identity: NodeIdentity | None = NodeIdentity(Path(directory))
            files, durable = self.identity.values, True
        else:
            self.identity = None
            root = Path(spill_directory) if spill_directory else Path(worker.local_directory)
            if spill_directory:  # Dask cleans its local directories after a crash, not this
                remove_abandoned(root, "eau2-spill-*")
            files, durable = root / f"eau2-spill-{uuid.uuid4().hex[:12]}", False
        self.store = NodeStore(
            budget,
            files,
            durable=durable,
            on_damage=self._damaged,
            on_forget=self._forgotten,
            on_drop=self.converted.drop_write,
        )
        self.reads: collections.Counter = collections.Counter()
        """Chunks read by dask partitions on this worker: "local" ones, "remote" ones."""
        self.runs = Runs()
        """The runs of applications this node has seen: their cancellations and writes."""
        self._incoming: dict[str, _Upload] = {}
        self._number: int | None = None
        self._nodes_seen = 0  # how many nodes the cluster had when this node last asked
        self.transport = None
        """This node's own `DaskTransport`, shared by its tasks (set by `worker_transport`)."""
        worker.handlers.update(
            {
                "eau2_put": _reported(self.handle_put),
                "eau2_get": _reported(self.handle_get),
                "eau2_get_piece": _reported(self.handle_get_piece),
                "eau2_receive": _reported(self.handle_receive),
                "eau2_piece": _reported(self.handle_piece),
                "eau2_finish": _reported(self.handle_finish),
                "eau2_wait": _reported(self.handle_wait),
                "eau2_info": _reported(self.handle_info),
                "eau2_delete": _reported(self.handle_delete),
                "eau2_keys": _reported(self.handle_keys),
                "eau2_status": _reported(self.handle_status),
                "eau2_update": _reported(self.handle_update),
                "eau2_drop": _reported(self.handle_drop),
                "eau2_copy": _reported(self.handle_copy),
                "eau2_rebuild": _reported(self.handle_rebuild),
                "eau2_sync": _reported(self.handle_sync),
                "eau2_cancel": _reported(self.handle_cancel),
                "eau2_run_writes": _reported(self.handle_run_writes),
                "eau2_run_finished": _reported(self.handle_run_finished),
                "eau2_numbered": self.handle_numbered,
            }
        )
        claim = None if self.identity is None else self.identity.number
        worker.startup_information["eau2"] = lambda _: {"node": claim, "durable": durable}
        found = len(self.store.keys())
        logger.info(
            "eau2 node on %s: budget %s, %s %s%s",
            worker.address,
            "none" if budget is None else format_bytes(budget),
            "directory" if durable else "spill files in",
            directory if durable else self.store.directory,
            f" ({found} values found{'' if claim is None else f', node {claim}'})" if durable else "",
        )
        for name, damage in self.store.damaged:
            logger.error("eau2 dropped the value %r found in %s: %s", name, directory, damage)
        if durable:
            threading.Thread(target=self._scrub, name="eau2-scrub", daemon=True).start()

    def number(self) -> int:
        """This node's number (asks the scheduler once; call from a task thread)."""
        if self._number is None:
            sync(self.worker.loop, self.learn_number)
        return self._number

    async def learn_number(self) -> int:
        """Ask the scheduler for this node's number."""
        directory = await self.worker.scheduler.eau2_directory()
        self.numbered(directory.index(self.worker.address))
        return self._number

    async def learn_number_quietly(self) -> None:
        """`learn_number`, for a node installed on a running worker; a worker leaving
        meanwhile has no number to learn."""
        try:
            await self.learn_number()
        except Exception:
            logger.debug("eau2 node on %s could not learn its number", self.worker.address, exc_info=True)

    def numbered(self, number: int) -> None:
        """This node has `number` (told by the scheduler as the worker joins, or asked): a
        durable node records it in its directory, to claim it again when it restarts."""
        if self._number is not None:
            return
        self._number = number
        claim = None if self.identity is None else self.identity.number
        if claim is not None and claim != number:
            logger.critical(
                "eau2 node %s holds the values of node %d but was given number %d: another worker "
                "has that number; stop this worker and start it again when node %d is free",
                self.worker.address,
                claim,
                number,
                claim,
            )
        elif self.identity is not None and claim is None:
            self.identity.record(number)
        logger.info("eau2 node %d is worker %s", number, self.worker.address)

    async def handle_numbered(self, number: int) -> str:
        self.numbered(number)
        return "OK"

    def _scrub(self) -> None:
        damaged = self.store.scrub()
        if damaged:
            logger.error("eau2 node on %s dropped %d damaged files", self.worker.address, damaged)

    def _forgotten(self, key: Key) -> None:
        self.converted.discard(key.name)

    def _damaged(self, key: Key, why: str) -> None:
        """A value's file was found damaged: ask the scheduler to restore its copies."""
        self.worker.loop.add_callback(self._ask_repair)

    async def _ask_repair(self) -> None:
        try:
            await self.worker.scheduler.eau2_repair()
        except Exception:
            logger.warning("eau2 could not ask the scheduler to repair a damaged value", exc_info=True)

    def cancellation(self, run_id: str) -> Cancellation:
        return self.runs.cancellation(run_id)

    async def handle_put(
        self, name: str, home: int, value, replicas: int = 1, run_id: str | None = None
    ) -> str:
        """Keep `value` under the key (the home node's copy or a replica); refused for a
        run that was cancelled."""
        key = Key.received(name, home)
        replicas = check_replicas(replicas)
        if run_id is not None:
            self.cancellation(run_id).check()
        await self._check_home(key)
        await offload(self.store.put, key, unwire(value), replicas, owned=True)
        if run_id is not None:
            self._kept_for_run(key, run_id)
        return "OK"

    def _kept_for_run(self, key: Key, run_id: str) -> None:
        """After a run's put stored `key` here: if the run was cancelled meanwhile, take the
        value back and refuse the put; else note the write here as well, where a stopping
        run asks for its writes (its rank may be gone before it notes it)."""
        cancellation = self.cancellation(run_id)
        if cancellation.cancelled:
            with contextlib.suppress(KeyError):
                self.store.delete(key)
            cancellation.check()
        if not key.is_internal:  # a frame's chunks are taken back by their write's tag
            self.runs.wrote(run_id, (key, None))

    async def _check_home(self, key: Key) -> None:
        """`ValueError` if `key` (or the frame a chunk key belongs to) is homed on a node
        the cluster does not have: no client can store what no one could address."""
        owner = frame_of_chunk(key.name) if key.is_internal else (key, "")
        home = owner[0].home if owner else 0
        if home >= self._nodes_seen:
            self._nodes_seen = len(await self.worker.scheduler.eau2_directory())
        if home >= self._nodes_seen:
            raise ValueError(
                f"key {owner[0].name!r} has home node {home}, but the cluster has {self._nodes_seen} nodes"
            )

    async def handle_get(self, name: str, home: int, whole_from_memory: bool = False):
        """The value, or for a large one its `Shape` and first piece (`eau2_get_piece`
        serves the others), so that a node copying it writes it piece by piece and no
        message loads a large value from disk whole. A reader that keeps the value whole
        anyway asks with `whole_from_memory`: a large value held in memory then travels in
        one message too (Dask's comms send its buffers without copies)."""
        key = Key.received(name, home)
        value = await offload(self.store.get, key)
        if nbytes(value) <= LARGE_BYTES or (whole_from_memory and self.store.in_memory(key)):
            return {"value": wire(value)}
        shape = shape_of(value)
        return {"shape": shape.to_dict(), "piece": wire(piece(value, shape, 0))}

    async def handle_get_piece(self, name: str, home: int, shape: dict, index: int):
        value = await offload(self.store.get, Key.received(name, home))
        return {"piece": wire(await offload(piece, value, Shape.from_dict(shape), index))}

    async def handle_receive(
        self, name: str, home: int, shape: dict, replicas: int = 1, run_id: str | None = None
    ) -> str:
        """Start a put of a value that arrives in pieces (`eau2_piece`, then `eau2_finish`);
        an upload left without a piece for `UPLOAD_IDLE_SECONDS` is abandoned."""
        key = Key.received(name, home)
        shape = Shape.from_dict(shape)
        replicas = check_replicas(replicas)
        if run_id is not None:
            self.cancellation(run_id).check()
        await self._check_home(key)
        incoming = await offload(self.store.receive, key, shape, replicas)
        upload = uuid.uuid4().hex
        self._incoming[upload] = _Upload(incoming, run_id)
        self._abandon_when_idle(upload)
        return upload

    async def handle_piece(self, upload: str, data) -> str:
        entry = self._upload(upload)
        await offload(entry.incoming.write, unwire(data))
        entry.touched = time.monotonic()
        return "OK"

    async def handle_finish(self, upload: str) -> str:
        entry = self._upload(upload)
        del self._incoming[upload]
        await offload(entry.incoming.finish)
        if entry.run_id is not None:
            self._kept_for_run(entry.incoming.key, entry.run_id)
        return "OK"

    def _upload(self, upload: str) -> _Upload:
        entry = self._incoming.get(upload)
        if entry is None:
            raise KeyError(f"no upload {upload} on {self.worker.address}: it was finished or abandoned")
        return entry

    def _abandon_when_idle(self, upload: str) -> None:
        def check() -> None:
            entry = self._incoming.get(upload)
            if entry is None:
                return
            if time.monotonic() - entry.touched > UPLOAD_IDLE_SECONDS:
                del self._incoming[upload]
                entry.incoming.abort()
                logger.warning(
                    "eau2 abandoned an upload of %r: no piece came for a while", entry.incoming.key.name
                )
            else:
                asyncio.get_running_loop().call_later(UPLOAD_IDLE_SECONDS, check)

        asyncio.get_running_loop().call_later(UPLOAD_IDLE_SECONDS, check)

    async def handle_info(self, name: str, home: int):
        info = self.store.info(Key.received(name, home))
        return None if info is None else (info.kind, info.nbytes, 0, info.replicas)

    async def handle_wait(
        self, name: str, home: int, timeout: float | None, run_id: str | None, whole_from_memory: bool = False
    ):
        key = Key.received(name, home)
        timeout = check_timeout(timeout)
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
            return await self.handle_get(name, home, whole_from_memory)
        if cancellation:
            cancellation.check()
        raise TimeoutError(f"key {name!r} was not put on {self.worker.address} within {timeout} s")

    async def handle_delete(self, name: str, home: int) -> str:
        self.store.delete(Key.received(name, home))
        return "OK"

    async def handle_keys(self) -> list[tuple]:
        return [(i.key.name, i.key.home, i.kind, i.nbytes, i.replicas) for i in self.store.keys()]

    async def handle_status(self) -> dict:
        """This node's figures, for operators (`eau2 nodes`, the dashboard, metrics)."""
        return self.status()

    def status(self) -> dict:
        """This node's number, worker, budget and bytes held, the chunk reads served and
        the bytes of converted columns kept for dask partitions."""
        store = self.store
        return {
            "node": self._number,
            "address": self.worker.address,
            "name": str(self.worker.name),
            "budget": self.budget,
            "durable": store.durable,
            "directory": None if store.directory is None else str(store.directory),
            "values": len(store.keys()),
            "memory_bytes": store.memory_bytes,
            "spilled_bytes": store.spilled_bytes,
            "disk_bytes": store.disk_bytes,
            "reads_local": self.reads["local"],
            "reads_remote": self.reads["remote"],
            "view_cache_bytes": self.converted.nbytes,
        }

    async def handle_drop(self, prefix: str) -> int:
        return self.store.drop(_write_prefix(prefix))

    async def handle_update(self, name: str, home: int, value) -> str:
        self.store.update(Key.received(name, home), unwire(value))
        return "OK"

    async def handle_copy(self, name: str, home: int, source: str, replicas: int = 1) -> str:
        """Fetch a value from the node at `source` and keep a copy here (a replica)."""
        key = Key.received(name, home)
        replicas = check_replicas(replicas)
        try:
            reply = await self.worker.rpc(source).eau2_get(name=name, home=home)
        except OSError as error:
            raise NodeLost(None, f"the node at {source} to copy {name!r} from is gone: {error}") from None
        raise_reply(reply)
        if "value" in reply:
            await offload(self.store.put, key, unwire(reply["value"]), replicas, owned=True)
            return "OK"
        shape = Shape.from_dict(reply["shape"])
        incoming = await offload(self.store.receive, key, shape, replicas)
        try:
            await offload(incoming.write, unwire(reply.pop("piece")))
            for index in range(1, shape.count):
                part = await self.worker.rpc(source).eau2_get_piece(
                    name=name, home=home, shape=reply["shape"], index=index
                )
                raise_reply(part)
                await offload(incoming.write, unwire(part["piece"]))
        except BaseException:
            incoming.abort()
            raise
        await offload(incoming.finish)
        return "OK"

    async def handle_rebuild(self, name: str, home: int, origin: dict) -> str:
        """Read and parse a chunk's block again from its file, and keep it here."""
        key = Key.received(name, home)
        table = await offload(reload_block, BlockOrigin(**origin))
        await offload(self.store.put, key, table, owned=True)
        return "OK"

    async def handle_sync(self, prefix: str) -> str:
        await offload(self.store.sync, _write_prefix(prefix))
        return "OK"

    async def handle_cancel(self, run_id: str, reason: str) -> str:
        """Cancel a run here: its waits wake, its calls and puts are refused from now on."""
        self.cancellation(run_id).cancel(str(reason)[:REASON_CHARS])
        return "OK"

    async def handle_run_finished(self, run_id: str) -> str:
        """The run finished: its writes here are kept, and their record let go."""
        self.runs.forget_writes(run_id)
        return "OK"

    async def handle_run_writes(self, run_id: str) -> list[tuple[str, int, str | None]]:
        """The writes the run's rank on this node made: (name, home, frame write tag or None)."""
        return [(key.name, key.home, tag) for key, tag in self.runs.writes(run_id)]

    def close(self) -> None:
        """Called by the worker as it closes: drop the values and the spill files."""
        self.store.close()


def _write_prefix(prefix) -> str:
    """`prefix` if it names one write of a frame's chunks; `ValueError` otherwise (so that no
    call can drop or wait on every value of a node)."""
    if not is_chunk_prefix(prefix):
        raise ValueError(f"{prefix!r} is not the prefix of a frame write's chunks (name#home#tag#)")
    return prefix


@dataclass
class _Upload:
    """A value arriving in pieces, and when its last piece came."""

    incoming: Incoming
    run_id: str | None = None
    touched: float = field(default_factory=time.monotonic)


def install_node(
    worker, budget=None, directory: str | None = None, spill_directory: str | None = None
) -> Eau2Node:
    """Make `worker` an eau2 node (once; a second call keeps the first node and its data).

    Options left None come from the settings (``eau2.budget``, ``eau2.directory``,
    ``eau2.spill-directory``); invalid ones raise `ValueError` or `OSError` naming them."""
    node = worker.extensions.get(EXTENSION)
    if node is None:
        memory_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        node = Eau2Node(
            worker,
            config.budget_bytes(budget, memory_limit),
            directory or config.get("directory"),
            spill_directory or config.get("spill-directory"),
            config.view_cache_bytes(memory_limit),
        )
        worker.extensions[EXTENSION] = node
        if worker.status == Status.running:  # installed after the worker joined: not told its number
            worker.loop.add_callback(node.learn_number_quietly)
    return node


class NodeIdentity:
    """A durable node's directory: its values (under ``values/``) and the node number it
    had, which it claims again when its worker restarts."""

    def __init__(self, root: Path):
        self.root = root
        self.values = root / "values"
        self._file = root / "node.json"
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DiskError(f"cannot use {root} for eau2's files: {why(error)}") from None
        try:
            recorded = json.loads(self._file.read_text()) if self._file.exists() else {"node": None}
            self.number: int | None = recorded["node"]
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"{self._file} is not an eau2 node's identity: {error}") from None

    def record(self, number: int) -> None:
        write_synced(self._file, json.dumps({"node": number}).encode())
        self.number = number
