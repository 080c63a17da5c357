"""`read_sor`: SoR files parsed in parallel on the nodes, each chunk kept where it was parsed."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid

import distributed
from dask.utils import parse_bytes
from distributed import Client

from eau2.distributed.checks import check_timeout
from eau2.distributed.frame import DistributedDataFrame
from eau2.distributed.load import BlockResult, LoadPlan, parse_chunk
from eau2.distributed.placement import others
from eau2.errors import KeyExistsError, NodeLost
from eau2.sor.block import MAX_COLUMNS, MAX_LINE_BYTES
from eau2.sor.origin import BlockOrigin
from eau2.store.key import Key
from eau2.store.values import chunk_key
from eau2.types import Schema
from eau2_dask.kv import connect
from eau2_dask.refs import PARSE_TASK_PREFIX
from eau2_dask.transport import worker_transport

_POLL = 0.5  # seconds between checks that some worker is left
_NO_WORKER_GRACE = 10.0  # seconds a read waits for a worker when every one is gone


def read_sor(
    urlpath: str | os.PathLike | list,
    key: Key | str | None = None,
    *,
    client: Client | None = None,
    blocksize: int | str = "64MiB",
    schema: Schema | str | None = None,
    columns: list[int | str] | None = None,
    storage_options: dict | None = None,
    replicas: int | None = None,
    progress: bool | None = None,
    timeout: float | None = None,
    max_columns: int = MAX_COLUMNS,
    max_line_bytes: int | str = MAX_LINE_BYTES,
) -> DistributedDataFrame:
    """Read SoR files into a frame stored on the eau2 nodes, parsing blocks in parallel.

    Args:
        urlpath: a path or fsspec URL, a glob, or a list of them; files are read in order.
        key: where to store the frame (a `Key`, or a name homed on node 0); a fresh name
            when None.
        client: the Dask client (the current one by default).
        blocksize: bytes per block; each block is parsed by one node, which keeps the
            resulting chunk, so no chunk crosses the network after it is parsed.
        schema: column types (``"IIS"``) of every column of a line (also with `columns`);
            inferred from the first 500 lines of the first file when None.
        columns: only these columns, by position (``[0, 3]``; names such as ``"3"`` too),
            in that order; every column when None. They keep their positions as names, and
            the rows are those of a full read (see `eau2.read_sor`). Each node parses its
            block whole and keeps only these columns; a chunk read again from its file
            keeps the same ones.
        storage_options: passed to fsspec.
        replicas: copies of each chunk (``eau2.replicas`` by default). Each chunk also
            records its block of its file, so a chunk whose every copy is lost is read
            again from the file, which must then be unchanged.
        progress: show progress on standard error (default: when it is a terminal).
        timeout: give up after this many seconds, with `TimeoutError` (None: no limit).
        max_columns: at most this many columns (10,000 by default); more among the lines
            the schema is inferred from, or a longer schema, is a `SorError`.
        max_line_bytes: at most this many bytes in a line (``"64MiB"`` by default); a
            longer line is a `SorError` naming its file and its byte. A block holds at
            most `blocksize` plus this.

    Rows keep file order; the frame's `dropped_rows` counts the lines that did not fit,
    and a `SorWarning` names the first of them. A worker lost during the read has its
    blocks parsed again elsewhere; a failed or interrupted read leaves nothing stored.
    """
    client = client or _current_client()
    timeout = check_timeout(timeout)
    kv = connect(client)
    key = Key(key) if isinstance(key, str) else key or Key(f"sor-{uuid.uuid4().hex[:12]}")
    plan = LoadPlan.make(
        urlpath,
        parse_bytes(blocksize),
        schema,
        storage_options,
        columns=columns,
        max_columns=max_columns,
        max_line_bytes=parse_bytes(max_line_bytes),
    )
    tag = uuid.uuid4().hex[:8]
    with kv.writer(key, replicas) as writer:
        directory = kv.transport.directory(fresh=True)
        homes = plan.homes(writer)
        futures = [
            client.submit(
                _parse_on_node,
                origin,
                storage_options,
                writer.chunk_key(i).name,
                writer.replicas,
                key=f"{PARSE_TASK_PREFIX}{tag}-{i}",
                pure=False,
                **_near(directory[homes[i]]),
            )
            for i, origin in enumerate(plan.origins)
        ]
        try:
            _wait(client, futures, progress, timeout, urlpath)
            results = client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise
        plan.finish(writer, results)
    return kv.get(key)


def _near(address: str | None) -> dict:
    """Where a block's task should run: its node's worker, or another if that one is lost
    (or already gone: then anywhere)."""
    return {"workers": [address], "allow_other_workers": True} if address else {}


def _parse_on_node(origin: BlockOrigin, storage_options, name: str, replicas: int) -> BlockResult:
    """Parse one block on this worker, keep its chunk in this node's store, and send its
    other copies to the next live nodes (while other blocks are still being parsed)."""
    table, parsed, checksum = parse_chunk(origin, storage_options)
    transport = worker_transport()
    here = transport.this_node()
    holders = [here]
    with contextlib.suppress(KeyExistsError):  # parsed here before, and Dask ran it again
        transport.put_here(chunk_key(name), table)  # on disk by the commit, which syncs
    for node in others(transport.live_nodes(), here, replicas - 1) if replicas > 1 else []:
        try:
            transport.put(node, chunk_key(name), table)
        except KeyExistsError:
            pass  # sent there before, and Dask ran this block again
        except NodeLost:
            continue
        holders.append(node)
    return BlockResult.of(tuple(holders), table, parsed, checksum)


def _current_client() -> Client:
    try:
        return distributed.get_client()
    except ValueError:
        raise RuntimeError(
            "eau2_dask.read_sor needs a Dask cluster whose workers are eau2 nodes: pass client=, or start "
            "one with eau2_dask.embedded_cluster()"
        ) from None


def _wait(client: Client, futures: list, progress: bool | None, timeout: float | None, urlpath) -> None:
    """Wait for the blocks, telling on stderr how many are done (on a terminal, by default);
    `ConnectionError` if every worker is gone for longer than a moment, `TimeoutError`
    after `timeout` seconds."""
    if progress is None:
        progress = sys.stderr.isatty()
    started = time.monotonic()
    workerless_since = None
    pending = set(futures)
    while pending:
        with contextlib.suppress(TimeoutError), client.as_current():  # wait() uses it
            distributed.wait(list(pending), timeout=_POLL, return_when="FIRST_COMPLETED")
        if any(future.status == "error" for future in pending):
            return  # gather raises it
        pending = {future for future in pending if future.status != "finished"}
        if progress:
            done = len(futures) - len(pending)
            rate = done / max(time.monotonic() - started, 1e-9)
            print(
                f"\reau2: parsed {done}/{len(futures)} blocks ({rate:.1f}/s)",
                end="",
                file=sys.stderr,
                flush=True,
            )
        if pending and timeout is not None and time.monotonic() - started > timeout:
            done = len(futures) - len(pending)
            raise TimeoutError(
                f"reading {urlpath} did not finish within {timeout:g} s "
                f"({done} of {len(futures)} blocks parsed)"
            )
        if pending and not client.nthreads():
            workerless_since = workerless_since or time.monotonic()
            if time.monotonic() - workerless_since > _NO_WORKER_GRACE:
                raise ConnectionError("every worker left the cluster during the read")
        else:
            workerless_since = None
    if progress:
        print(file=sys.stderr)
