"""`eau2 load FILE... --key NAME`: SoR files parsed on a running cluster's nodes and
stored as one frame."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import click

from eau2.cli.admin import admin_command, echo_json, key_record
from eau2.cli.connection import node_client
from eau2.cli.generate import ByteSize
from eau2.cli.keys import PATTERN_MARKS, KeyType, key_text
from eau2.cli.paths import input_file, is_url
from eau2.cli.table import count, size
from eau2.errors import KeyExistsError
from eau2.store.values import KeyInfo


def _positions(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        positions = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of column positions (such as 0,3)") from None
    if any(position < 0 for position in positions):
        raise click.BadParameter(f"{value!r}: column positions count from 0")
    return positions


def _schema(ctx, param, value: str | None) -> str | None:
    from eau2.types import Schema

    if value is None:
        return None
    try:
        return str(Schema.parse(value))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@admin_command
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--key",
    required=True,
    type=KeyType(),
    help="Store the frame under this key: NAME (homed on node 0) or NAME@N (homed on node N).",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=None,
    help="Copies of each chunk, on as many nodes [default: the eau2.replicas setting, 1].",
)
@click.option(
    "--blocksize",
    type=ByteSize(),
    default="64MiB",
    show_default=True,
    help="Bytes of input per block; each node parses a block at a time and keeps it as one chunk.",
)
@click.option(
    "--schema",
    default=None,
    metavar="LETTERS",
    callback=_schema,
    help="Column types, a letter each (B, I, F, S), such as IIS [default: inferred from the first "
    "500 lines].",
)
@click.option(
    "--columns",
    default=None,
    callback=_positions,
    metavar="POSITIONS",
    help="Keep only these columns, by position, in this order (such as 0,3) [default: all].",
)
def load(files, key, replicas, blocksize, schema, columns, scheduler, scheduler_file, as_json) -> None:
    """Read SoR files into one frame stored on the nodes.

    FILEs are paths, globs or fsspec URLs, read in order. The nodes parse blocks of them
    in parallel, each keeping the chunks it parsed. Paths are resolved here, and the
    workers must see them at the same place (a shared file system). Progress shows on
    standard error when it is a terminal.
    """
    import eau2_dask

    paths = [input_file(file) for file in files]
    matched = [name for path in paths for name in _matched(path)]  # the files read, for the report
    started = time.monotonic()
    with node_client(scheduler, scheduler_file) as client:
        try:
            frame = eau2_dask.read_sor(
                paths,
                key=key,
                client=client,
                blocksize=blocksize,
                schema=schema,
                columns=columns,
                replicas=replicas,
            )
        except KeyExistsError:
            name = key_text(key)
            raise click.ClickException(
                f"key {name} already has a value: values are write-once (eau2 rm {name} removes it)"
            ) from None
        if frame.nrows == 0:
            frame.kv.delete(frame.key)
            empty = "it is empty" if len(files) == 1 else "they are empty"
            why = f"every line ({frame.dropped_rows:,}) was dropped" if frame.dropped_rows else empty
            raise click.ClickException(f"no rows in {' '.join(files)}: {why}; nothing stored")
    seconds = time.monotonic() - started
    meta = frame.meta
    if as_json:
        echo_json(
            key_record(
                KeyInfo(
                    frame.key,
                    "frame",
                    meta.nbytes,
                    len(meta.chunks),
                    meta.replicas,
                    _copies(meta),
                    rows=meta.nrows,
                )
            )
            | {
                "files": matched,
                "rows": frame.nrows,
                "dropped_rows": meta.dropped_rows,
                "schema": meta.schema,
            }
            | {"seconds": round(seconds, 3)}
        )
        return
    dropped = f" ({count(meta.dropped_rows, 'line')} dropped)" if meta.dropped_rows else ""
    made = _copies(meta)
    copies = "1 copy" if made == 1 else f"{made} copies"
    if made < meta.replicas:
        copies += f" ({meta.replicas} asked, more than the nodes)"
    click.echo(
        f"loaded {key_text(frame.key)} from {count(len(matched), 'file')} in {seconds:.1f} s: "
        f"{frame.nrows:,} rows{dropped}, {count(frame.ncols, 'column')} ({meta.schema}), "
        f"{count(frame.nchunks, 'chunk')} of {copies}, {size(meta.nbytes)}"
    )


def _copies(meta) -> int:
    """Copies of the least-replicated chunk, as stored."""
    return min((len(chunk.holders) for chunk in meta.chunks), default=0)


def _matched(path: str) -> list[str]:
    """The files `path` names: those a local glob matches (in the order read, sorted), else
    `path` itself."""
    if is_url(path) or not any(mark in path for mark in PATTERN_MARKS):
        return [path]
    return sorted(name for name in glob.glob(path) if Path(name).is_file())
