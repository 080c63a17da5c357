"""`read_sor`: SoR files parsed in parallel on the nodes, each chunk kept where it was parsed."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass

import distributed
import fsspec
import fsspec.utils
import pyarrow as pa
from dask.utils import parse_bytes
from distributed import Client, get_worker

from eau2.distributed.frame import DistributedDataFrame
from eau2.errors import SorError, SorWarning
from eau2.sor.block import infer_schema_from_blocks, parse_block
from eau2.sor.source import Window, line_blocks, lines_starting_in, open_source
from eau2.store.key import CHUNK_MARK, Key
from eau2.store.values import FrameMeta
from eau2.types import Schema
from eau2_dask.install import ensure_ready
from eau2_dask.kv import connect
from eau2_dask.node import EXTENSION


@dataclass(frozen=True)
class _Block:
    url: str
    offset: int
    length: int | None  # None: the whole file (compressed files are read whole)


def read_sor(
    urlpath: str | os.PathLike | list,
    key: Key | str | None = None,
    *,
    client: Client | None = None,
    blocksize: int | str = "64MiB",
    schema: Schema | str | None = None,
    storage_options: dict | None = None,
    progress: bool | None = None,
) -> DistributedDataFrame:
    """Read SoR files into a frame stored on the eau2 nodes, parsing blocks in parallel.

    Args:
        urlpath: a path or fsspec URL, a glob, or a list of them; files are read in order.
        key: where to store the frame (a `Key`, or a name homed on node 0); a fresh name
            when None.
        client: the Dask client (the current one by default).
        blocksize: bytes per block; each block is parsed by one node, which keeps the
            resulting chunk, so no chunk crosses the network after it is parsed.
        schema: column types (``"IIS"``); inferred from the first 500 lines of the first
            file when None.
        storage_options: passed to fsspec.
        progress: show progress on standard error (default: when it is a terminal).

    Rows keep file order; the frame's `dropped_rows` counts the lines that did not fit,
    and a `SorWarning` names the first of them.
    """
    client = client or _current_client()
    directory = ensure_ready(client)
    key = Key(key) if isinstance(key, str) else key or Key(f"sor-{uuid.uuid4().hex[:12]}")
    urls = _expand(urlpath, storage_options)
    explicit = Schema.parse(schema) if schema is not None else None
    schema = explicit or _infer(urls[0], storage_options)
    blocks = [block for url in urls for block in _blocks(url, parse_bytes(blocksize), storage_options)]
    tag = uuid.uuid4().hex[:12]
    n = len(directory)
    homes = [(key.home + i) % n for i in range(len(blocks))]
    names = [f"{key.name}{CHUNK_MARK}{tag}{CHUNK_MARK}{i}" for i in range(len(blocks))]
    futures = [
        client.submit(
            _parse_on_node,
            block,
            str(schema),
            storage_options,
            name,
            home,
            key=f"eau2-read-{tag}-{i}",
            workers=[directory[home]],
            allow_other_workers=False,
            pure=False,
        )
        for i, (block, name, home) in enumerate(zip(blocks, names, homes, strict=True))
    ]
    kv = connect(client)
    try:
        _show_progress(futures, blocks, progress)
        parsed = client.gather(futures)
    except BaseException:
        client.cancel(futures)
        _delete_chunks(kv, names, homes)
        raise
    meta = FrameMeta(
        schema=str(schema),
        names=[str(i) for i in range(len(schema))],
        chunk_rows=[p.rows for p in parsed],
        chunk_bytes=[p.nbytes for p in parsed],
        chunk_keys=list(zip(names, homes, strict=True)),
        dropped_rows=sum(p.dropped_rows for p in parsed),
    )
    dropped = _dropped_lines(blocks, parsed)
    if explicit is not None and meta.nrows == 0 and any(line.endswith(_MISFIT) for line in dropped):
        _delete_chunks(kv, names, homes)
        raise SorError(
            f"schema {str(schema)!r} does not match: no line is a row of it ({'; '.join(dropped[:3])})"
        )
    try:
        kv.transport.put(key, meta)
    except BaseException:
        _delete_chunks(kv, names, homes)
        raise
    if meta.dropped_rows:
        warnings.warn(
            SorWarning(
                f"{meta.dropped_rows} line(s) dropped, not rows of schema {str(schema)!r} "
                f"({'; '.join(dropped[:3])})"
            ),
            stacklevel=2,
        )
    return kv.get(key)


_MISFIT = "does not fit its column's type"


@dataclass(frozen=True)
class _Parsed:
    rows: int
    nbytes: int
    lines: int
    dropped_rows: int
    dropped_lines: tuple


def _parse_on_node(block: _Block, schema: str, storage_options, name: str, home: int) -> _Parsed:
    """Parse one block on this worker and keep its chunk in this node's store."""
    source = open_source(block.url, storage_options)
    try:
        if block.length is None:
            data = source.read(0, source.size)
        else:
            data = lines_starting_in(source, block.offset, block.length)
        parsed = parse_block(data, schema)
    except (OSError, ValueError) as error:
        where = f"{block.url}" if block.length is None else f"{block.url} (block at byte {block.offset})"
        raise SorError(f"{where}: {error}") from error
    finally:
        source.close()
    table = pa.Table.from_batches([parsed.batch])
    get_worker().extensions[EXTENSION].store.put(Key.internal(name, home), table)
    return _Parsed(table.num_rows, table.nbytes, parsed.lines, parsed.dropped_rows, parsed.dropped_lines)


def _current_client() -> Client:
    try:
        return distributed.get_client()
    except ValueError:
        raise RuntimeError(
            "eau2_dask.read_sor needs a Dask cluster whose workers are eau2 nodes: pass client=, or start "
            "one with eau2_dask.embedded_cluster()"
        ) from None


def _expand(urlpath, storage_options) -> list[str]:
    fs, _, paths = fsspec.core.get_fs_token_paths(urlpath, mode="rb", storage_options=storage_options)
    if not paths:
        raise FileNotFoundError(f"no SoR file matches {urlpath}")
    return [fs.unstrip_protocol(path) for path in paths]


def _infer(url: str, storage_options) -> Schema:
    source = open_source(url, storage_options)
    try:
        return infer_schema_from_blocks(line_blocks(source, Window.of(source), 1 << 20))[0]
    finally:
        source.close()


def _blocks(url: str, blocksize: int, storage_options) -> list[_Block]:
    if fsspec.utils.infer_compression(url) is not None:
        return [_Block(url, 0, None)]
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    size = fs.size(path)
    return [_Block(url, offset, blocksize) for offset in range(0, max(size, 1), blocksize)]


def _dropped_lines(blocks: list[_Block], parsed: list[_Parsed]) -> list[str]:
    """The first dropped lines, as "FILE line N: reason", with line numbers over each file."""
    described = []
    first_line = {}
    for block, result in zip(blocks, parsed, strict=True):
        start = first_line.get(block.url, 1)
        for dropped in result.dropped_lines[: max(0, 10 - len(described))]:
            described.append(f"{block.url} {dataclasses.replace(dropped, line=dropped.line + start - 1)}")
        first_line[block.url] = start + result.lines
    return described


def _delete_chunks(kv, names: list[str], homes: list[int]) -> None:
    for name, home in zip(names, homes, strict=True):
        with contextlib.suppress(KeyError, OSError):
            kv.transport.delete(Key.internal(name, home))


def _show_progress(futures: list, blocks: list[_Block], progress: bool | None) -> None:
    """Wait for the blocks, telling on stderr how many are done (on a terminal, by default)."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        distributed.wait(futures)
        return
    started = time.monotonic()
    for done, _ in enumerate(distributed.as_completed(futures), start=1):
        rate = done / max(time.monotonic() - started, 1e-9)
        print(
            f"\reau2: parsed {done}/{len(blocks)} blocks ({rate:.1f}/s)", end="", file=sys.stderr, flush=True
        )
    print(file=sys.stderr)
