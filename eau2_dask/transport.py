"""The Transport over Dask: values on this worker directly, on other workers by RPC, with
node loss noticed at once (no connect time-outs) and waits that cannot starve other calls."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from distributed import get_worker
from distributed.utils import sync

from eau2.errors import NodeLost
from eau2.sor.origin import BlockOrigin
from eau2.store.key import Key
from eau2.store.pieces import Shape, assemble, pieces, shape_of
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, KeyInfo, nbytes
from eau2.store.waits import wait_for
from eau2_dask.node import EXTENSION, LARGE_BYTES, Eau2Node, raise_reply
from eau2_dask.wire import unwire, wire

WATCH_SECONDS = 0.5
"""How often a call that has not answered checks that its node is still there."""

WAIT_SLICE_SECONDS = 2.0
"""A remote wait holds a connection at most this long before it yields its turn."""

WAITS_AT_ONCE = threading.BoundedSemaphore(64)
"""Remote waits under way at once from this process: the rest of the connection pool
(512 by default) stays free for other calls, however many threads wait."""

PIECES_AT_ONCE = 4
"""Pieces of one large value under way at once while it is read from another node."""

ANSWER_SECONDS = 10.0
"""How long a node has to answer a call that moves no data (`QUICK_VERBS`): one that does
not is hung or overloaded, and the call fails naming it instead of waiting for it."""

RECHECK_SECONDS = 2.0
"""A node found hung is asked again (Dask's ``identity``, waiting `RECHECK_ANSWER_SECONDS`)
at most this often, when a read would go around it: so it is read from again soon after
it recovers."""

RECHECK_ANSWER_SECONDS = 1.0

QUICK_VERBS = frozenset({"eau2_info", "eau2_keys", "eau2_delete", "eau2_drop", "eau2_update", "eau2_status"})

__all__ = ["DaskTransport", "NodeLost"]

Directory = Callable[[], Awaitable[list]]


class DaskTransport(Transport):
    """A node's (or a client's) access to the eau2 nodes of a Dask cluster.

    `directory` is an async function that returns each node's worker address by node
    number (None while a node has no worker): it is asked again whenever a call fails or
    takes long, so no address outlives its worker. Calls block the calling thread: use
    it from a task or a client's thread, never from the event loop.
    """

    def __init__(
        self,
        loop,
        rpc: Callable,
        directory: Directory,
        *,
        node: int | None = None,
        local: Eau2Node | None = None,
        run_id: str | None = None,
    ):
        self._loop = loop
        self._rpc = rpc
        self._ask_directory = directory
        self._node = node
        self._local = local
        self._run_id = run_id
        self._directory: list[str | None] = []
        self._asked = -1.0
        self._hung: dict[str, float] = {}  # worker address -> when it last did not answer

    def this_node(self) -> int | None:
        return self._node

    def num_nodes(self) -> int:
        return len(self.directory())

    def live_nodes(self) -> list[int]:
        return [node for node, address in enumerate(self.directory()) if address is not None]

    def directory(self, fresh: bool = False) -> list[str | None]:
        """Each node's worker address, by node number (asked again if older than a moment)."""
        if fresh or time.monotonic() - self._asked > WATCH_SECONDS:
            self._directory = sync(self._loop, self._ask_directory)
            self._asked = time.monotonic()
        return self._directory

    def put(self, node: int, key: Key, value, replicas: int = 1) -> None:
        if self._is_local(node):
            self._local.store.put(key, value, replicas)
            self._keep_unless_cancelled(key)
        elif nbytes(value) > LARGE_BYTES:
            self._put_in_pieces(node, key, value, replicas)
        else:
            self._call(
                node,
                "eau2_put",
                name=key.name,
                home=key.home,
                value=wire(value),
                replicas=replicas,
                run_id=self._run_id,
            )

    def put_here(self, key: Key, value) -> None:
        """Keep `value` on this worker's node, served at once and written to its directory
        (if it has one) in the background: `sync` waits for that."""
        self._check_run()
        self._local.store.put(key, value, owned=True, deferred=True)

    def sync(self, node: int, prefix: str) -> None:
        if self._is_local(node):
            self._local.store.sync(prefix)
        else:
            self._call(node, "eau2_sync", prefix=prefix)

    def _put_in_pieces(self, node: int, key: Key, value, replicas: int) -> None:
        """A large value, one piece per message: the node writes each to disk as it comes."""
        shape = shape_of(value)
        upload = self._call(
            node,
            "eau2_receive",
            name=key.name,
            home=key.home,
            shape=shape.to_dict(),
            replicas=replicas,
            run_id=self._run_id,
        )
        for part in pieces(value, shape):
            self._call(node, "eau2_piece", upload=upload, data=wire(part))
        self._call(node, "eau2_finish", upload=upload)

    def get(self, node: int, key: Key, impatient: bool = False):
        if self._is_local(node):
            return self._local.store.get(key)
        reply = self._call(
            node, "eau2_get", impatient=impatient, name=key.name, home=key.home, whole_from_memory=True
        )
        return self._value(node, key, reply)

    def _value(self, node: int, key: Key, reply: dict):
        """The value a reply carries, or whose first piece it carries (then the others are
        fetched, `PIECES_AT_ONCE` messages under way at a time)."""
        if "value" in reply:
            return unwire(reply["value"])
        shape = Shape.from_dict(reply["shape"])

        def fetch(index: int):
            part = self._call(
                node, "eau2_get_piece", name=key.name, home=key.home, shape=reply["shape"], index=index
            )
            return unwire(part["piece"])

        with ThreadPoolExecutor(PIECES_AT_ONCE) as pool:
            rest = list(pool.map(fetch, range(1, shape.count)))
        return assemble(shape, [unwire(reply["piece"]), *rest])

    def answering(self, node: int) -> bool:
        nodes = self.directory()
        address = nodes[node] if node < len(nodes) else None
        found = self._hung.get(address)
        if found is None or self._is_local(node):
            return True
        if time.monotonic() - found < RECHECK_SECONDS:
            return False
        if sync(self._loop, self._answers, address, RECHECK_ANSWER_SECONDS):
            self._hung.pop(address, None)
            return True
        self._hung[address] = time.monotonic()
        return False

    def wait(self, node: int, key: Key, timeout: float | None):
        if self._is_local(node):
            cancellation = self._local.cancellation(self._run_id) if self._run_id else None
            return wait_for(self._local.store, key, timeout, cancellation)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not self.answering(node):  # found hung by the get before this wait, say
                raise NodeLost(node, f"node {node} does not answer: its worker is there but hung")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not WAITS_AT_ONCE.acquire(timeout=left):
                break
            try:
                reply = self._call(
                    node,
                    "eau2_wait",
                    impatient=True,  # a slice ends within seconds: a node that does not answer is hung
                    name=key.name,
                    home=key.home,
                    timeout=WAIT_SLICE_SECONDS if left is None else min(left, WAIT_SLICE_SECONDS),
                    run_id=self._run_id,
                    whole_from_memory=True,
                )
                return self._value(node, key, reply)
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    break
            finally:
                WAITS_AT_ONCE.release()
        raise TimeoutError(f"key {key.name!r} was not put on node {node} within {timeout} s")

    def info(self, node: int, key: Key) -> KeyInfo | None:
        if self._is_local(node):
            return self._local.store.info(key)
        row = self._call(node, "eau2_info", name=key.name, home=key.home)
        return None if row is None else KeyInfo(key, *row)

    def delete(self, node: int, key: Key) -> None:
        if self._is_local(node):
            self._local.store.delete(key)
        else:
            self._call(node, "eau2_delete", name=key.name, home=key.home)

    def keys(self, node: int) -> list[KeyInfo]:
        if self._is_local(node):
            return self._local.store.keys()
        rows = self._call(node, "eau2_keys")
        return [
            KeyInfo(Key.internal(name, home), kind, nbytes, replicas=replicas)
            for name, home, kind, nbytes, replicas in rows
        ]

    def drop(self, node: int, prefix: str) -> int:
        if self._is_local(node):
            return self._local.store.drop(prefix)
        return self._call(node, "eau2_drop", prefix=prefix)

    def update(self, node: int, key: Key, meta: FrameMeta) -> None:
        if self._is_local(node):
            self._local.store.update(key, meta)
        else:
            self._call(node, "eau2_update", name=key.name, home=key.home, value=wire(meta))

    def copy(self, node: int, key: Key, source: int, replicas: int = 1) -> None:
        """`node` fetches the value from `source` itself: it travels worker to worker."""
        self._call(
            node, "eau2_copy", name=key.name, home=key.home, source=self._address(source), replicas=replicas
        )

    def rebuild(self, node: int, key: Key, origin: BlockOrigin) -> None:
        """`node` reads and parses the block again itself."""
        self._call(node, "eau2_rebuild", name=key.name, home=key.home, origin=asdict(origin))

    def _is_local(self, node: int) -> bool:
        """Whether `node` is this transport's own; first, every call (here or in `_call`)
        raises `RunCancelled` if the run it was made for was cancelled."""
        self._check_run()
        return self._local is not None and node == self._node

    def _keep_unless_cancelled(self, key: Key) -> None:
        """After a put on this node: if this transport's run was cancelled meanwhile, take
        the value back and raise `RunCancelled` (as a remote node does)."""
        if self._run_id is not None and self._local.cancellation(self._run_id).cancelled:
            with contextlib.suppress(KeyError):
                self._local.store.delete(key)
            self._check_run()

    def _check_run(self) -> None:
        if self._run_id is not None and self._local is not None:
            self._local.cancellation(self._run_id).check()

    def _address(self, node: int) -> str:
        nodes = self.directory()
        if node >= len(nodes) or nodes[node] is None:
            nodes = self.directory(fresh=True)
        if node >= len(nodes):
            raise NodeLost(node, f"there is no node {node}: the cluster has {len(nodes)} nodes")
        if nodes[node] is None:
            raise NodeLost(node)
        return nodes[node]

    def _call(self, node: int, verb: str, retried: bool = False, impatient: bool = False, **arguments):
        """`verb` on `node`. `NodeLost` if the node's worker leaves; for `QUICK_VERBS`, if it
        has not answered within `ANSWER_SECONDS`; `impatient`, if it has not answered by
        then and does not answer a quick question either: it is hung, not busy with other
        work or sending a large answer."""
        self._check_run()
        address = self._address(node)
        quick = verb in QUICK_VERBS
        patience = ANSWER_SECONDS if impatient or quick else None
        probe = impatient and not quick
        try:
            reply = sync(self._loop, self._watched, node, address, verb, arguments, patience, probe)
        except OSError as error:  # the comm closed, no connection could be made, or NodeLost
            now = self.directory(fresh=True)
            if node < len(now) and now[node] not in (None, address) and not retried:
                return self._call(node, verb, retried=True, impatient=impatient, **arguments)  # a new worker
            if isinstance(error, NodeLost):
                raise
            if node >= len(now) or now[node] != address:
                raise NodeLost(node, f"node {node} ({address}) is gone") from None
            raise NodeLost(node, f"node {node} ({address}) could not be reached: {error}") from None
        self._hung.pop(address, None)  # it answered
        raise_reply(reply)
        return reply

    async def _watched(
        self, node: int, address: str, verb: str, arguments: dict, patience: float | None, probe: bool
    ):
        """The call, abandoned as soon as the scheduler says its node's worker is gone, or
        after `patience` seconds without an answer, if given. With `probe`, a node that
        then answers Dask's ``identity`` (its event loop, which takes no lock of eau2's)
        is busy, not hung, and is waited for, asked again each `patience` seconds."""
        call = asyncio.ensure_future(getattr(self._rpc(address), verb)(**arguments))
        deadline = None if patience is None else time.monotonic() + patience
        try:
            while True:
                done, _ = await asyncio.wait([call], timeout=WATCH_SECONDS)
                if done:
                    return call.result()
                if deadline is not None and time.monotonic() > deadline:
                    answered = probe and await self._answers(address)
                    if call.done():
                        return call.result()
                    if not answered:
                        self._hung[address] = time.monotonic()
                        asked = " nor a question after it" if probe else ""
                        raise NodeLost(
                            node,
                            f"node {node} ({address}) did not answer within {patience:g} s{asked}: "
                            "its worker is there but hung or overloaded",
                        )
                    deadline = time.monotonic() + patience  # busy, not hung
                now = await self._ask_directory()
                self._directory, self._asked = now, time.monotonic()
                if node >= len(now) or now[node] != address:
                    raise NodeLost(node, f"node {node} ({address}) is gone: its worker left the cluster")
        finally:
            call.cancel()  # a no-op once it is done

    async def _answers(self, address: str, seconds: float | None = None) -> bool:
        """Whether the worker at `address` answers Dask's ``identity`` within `seconds`
        (`ANSWER_SECONDS` by default)."""
        try:
            await asyncio.wait_for(self._rpc(address).identity(), seconds or ANSWER_SECONDS)
        except (TimeoutError, OSError):
            return False
        return True


def worker_transport(run_id: str | None = None) -> DaskTransport:
    """This worker's node's view of the cluster (call from a task on an eau2 worker)."""
    worker = get_worker()
    node = worker.extensions.get(EXTENSION)
    if node is None:
        raise RuntimeError(f"worker {worker.address} is not an eau2 node (start it with --preload eau2)")
    if run_id is None and node.transport is not None:
        return node.transport  # one per worker: its directory is asked at most twice a second
    transport = DaskTransport(
        worker.loop,
        worker.rpc,
        worker.scheduler.eau2_directory,
        node=node.number(),
        local=node,
        run_id=run_id,
    )
    if run_id is None:
        node.transport = transport
    return transport
