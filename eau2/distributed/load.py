"""Loading SoR files into the store, block by block, every chunk recording its block: the plan
and the finish both readers share (in this process, and in parallel on Dask nodes); they
differ only in where each block is parsed."""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass

import fsspec
import fsspec.utils
import pyarrow as pa

from eau2.checksums import CRC32, Checksum
from eau2.distributed.commit import FrameWriter
from eau2.errors import LineTooLong, SorError, SorWarning
from eau2.sor.block import (
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    DroppedLine,
    ParsedBlock,
    check_columns,
    check_columns_within,
    check_limits,
    given_schema,
    infer_schema_from_blocks,
    select_schema,
)
from eau2.sor.origin import BlockOrigin, fingerprint, read_block, with_checksum, without_secrets
from eau2.sor.reader import check_schema_fits
from eau2.sor.source import Window, line_blocks, open_source
from eau2.store.values import missing_columns
from eau2.types import Schema

BLOCK_BYTES = 64 << 20
"""Default bytes per block a load parses as one chunk."""

_DROPPED_SHOWN = 3


@dataclass(frozen=True)
class BlockResult:
    """What parsing one block gave: the nodes holding its chunk, its size, and its dropped lines."""

    holders: tuple[int, ...]
    rows: int
    nbytes: int
    lines: int
    checksum: int
    dropped_rows: int
    dropped_lines: tuple[DroppedLine, ...]
    missing: tuple[int, ...]
    checksum_kind: str = CRC32
    """The kind of `checksum`, as the parsing node summed the block (CRC-32 from an eau2
    that did not say)."""

    @classmethod
    def of(
        cls, holders: tuple[int, ...], table: pa.Table, parsed: ParsedBlock, summed: Checksum
    ) -> BlockResult:
        return cls(
            holders,
            table.num_rows,
            table.nbytes,
            parsed.lines,
            summed.value,
            parsed.dropped_rows,
            parsed.dropped_lines,
            missing_columns(table),
            summed.kind,
        )


@dataclass(frozen=True)
class LoadPlan:
    """The blocks of one load, in row order, the schema they are parsed with (of the whole
    line), and the columns kept of it (all when None)."""

    where: str
    schema: Schema
    explicit: bool
    origins: list[BlockOrigin]
    columns: tuple[int, ...] | None = None

    @classmethod
    def make(
        cls,
        urlpath: str | os.PathLike | list,
        blocksize: int,
        schema: Schema | str | None = None,
        storage_options: dict | None = None,
        *,
        columns: list[int | str] | None = None,
        max_columns: int = MAX_COLUMNS,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> LoadPlan:
        """The plan to read `urlpath` in blocks of `blocksize` bytes, keeping `columns` (see
        `eau2.read_sor`). A line longer than `max_line_bytes`, or more than `max_columns`
        columns, is a `SorError` naming the file and the line (by its number, or its byte in
        a block read in parallel); so is a position of `columns` past the schema's columns."""
        if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 1:
            raise ValueError(f"blocksize must be a number of bytes >= 1, not {blocksize!r}")
        check_limits(max_columns=max_columns, max_line_bytes=max_line_bytes)
        explicit = given_schema(schema, max_columns)
        columns = check_columns(columns)
        urls = _expand(urlpath, storage_options)
        chosen = explicit or _infer(urls[0], storage_options, max_columns, max_line_bytes)
        check_columns_within(columns, chosen, str(urlpath) if explicit else urls[0])
        limits = {"max_columns": max_columns, "max_line_bytes": max_line_bytes, "columns": columns}
        origins = [
            origin for url in urls for origin in _blocks(url, blocksize, str(chosen), storage_options, limits)
        ]
        return cls(str(urlpath), chosen, explicit is not None, origins, columns)

    def homes(self, writer: FrameWriter) -> list[int]:
        """The node each block is parsed on, whose chunk it keeps: runs of consecutive
        blocks of about equal bytes on each node (see `in_runs`)."""
        return writer.homes([origin.span for origin in self.origins])

    def finish(self, writer: FrameWriter, results: list[BlockResult]) -> None:
        """Record every chunk with its checked block, check the schema, commit the frame,
        and warn of dropped lines."""
        for index, (origin, result) in enumerate(zip(self.origins, results, strict=True)):
            origin = with_checksum(origin, Checksum(result.checksum, result.checksum_kind))
            writer.stored(index, result.holders, result.rows, result.nbytes, origin, result.missing)
        dropped = self._dropped_lines(results)
        if self.explicit:
            check_schema_fits(self.where, self.schema, sum(r.rows for r in results), [d for _, d in dropped])
        dropped_rows = sum(result.dropped_rows for result in results)
        kept, names = select_schema(self.schema, self.columns)
        writer.commit(str(kept), names, dropped_rows)
        if dropped_rows:
            shown = "; ".join(f"{url} {line}" for url, line in dropped[:_DROPPED_SHOWN])
            warnings.warn(
                SorWarning(
                    f"{dropped_rows} line(s) dropped, not rows of schema {str(self.schema)!r} ({shown})"
                ),
                stacklevel=3,
            )

    def _dropped_lines(self, results: list[BlockResult]) -> list[tuple[str, DroppedLine]]:
        """The first dropped lines with their files, numbered over each file."""
        described = []
        first_line: dict[str, int] = {}
        for origin, result in zip(self.origins, results, strict=True):
            start = first_line.get(origin.url, 1)
            for dropped in result.dropped_lines[: max(0, 10 - len(described))]:
                described.append((origin.url, dataclasses.replace(dropped, line=dropped.line + start - 1)))
            first_line[origin.url] = start + result.lines
        return described


def parse_chunk(origin: BlockOrigin, storage_options: dict | None) -> tuple[pa.Table, ParsedBlock, Checksum]:
    """One block parsed: its chunk, what parsing said, and the checksum of its bytes."""
    parsed, summed = read_block(origin, storage_options)
    return pa.Table.from_batches([parsed.batch]), parsed, summed


def _expand(urlpath, storage_options) -> list[str]:
    given = [urlpath] if isinstance(urlpath, (str, os.PathLike)) else list(urlpath)
    if not given or any(os.fspath(path) == "" for path in given):
        raise ValueError(f"no SoR file given: {'an empty path' if given else 'an empty list of paths'}")
    try:
        fs, _, paths = fsspec.core.get_fs_token_paths(urlpath, mode="rb", storage_options=storage_options)
    except (ValueError, ImportError) as error:  # an unknown protocol, or one not installed; no path at all
        raise ValueError(f"{urlpath}: {error}") from None
    if not paths:
        raise FileNotFoundError(f"no SoR file matches {urlpath}")
    return [fs.unstrip_protocol(path) for path in paths]


def _infer(url: str, storage_options, max_columns: int, max_line_bytes: int) -> Schema:
    source = open_source(url, storage_options)
    try:
        blocks = line_blocks(source, Window.of(source), 1 << 20, max_line_bytes)
        return infer_schema_from_blocks(blocks, max_columns=max_columns, keep_bytes=0)[0]
    except LineTooLong:
        raise
    except SorError as error:
        raise SorError(f"{url}: {error}") from None
    finally:
        source.close()


def _blocks(url: str, blocksize: int, schema: str, storage_options, limits: dict) -> list[BlockOrigin]:
    printed = fingerprint(url, storage_options)
    options = without_secrets(storage_options)
    if fsspec.utils.infer_compression(url) is not None:
        return [BlockOrigin(url, 0, None, schema, options, printed, **limits)]
    size = int(printed.get("size", 0))
    return [
        BlockOrigin(url, offset, blocksize, schema, options, printed, **limits)
        for offset in range(0, max(size, 1), blocksize)
    ]
