"""The admin commands on a running cluster: `eau2 ls`, `eau2 info`, `eau2 rm`, `eau2 nodes`
(and `eau2 load`, in `eau2.cli.load`), each with ``--json``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import click

from eau2.cli.connection import node_client, scheduler_params
from eau2.cli.errors import OneLineCommand, message, one_line_errors
from eau2.cli.keys import KeyOrPattern, KeyType, key_text, matches
from eau2.cli.table import count, size, table
from eau2.store.key import Key
from eau2.store.values import FrameMeta, KeyInfo

STATUS_SECONDS = 10.0
"""How long a node has to report its figures to `eau2 nodes`."""

SHOWN_COLUMNS = 20
"""Columns of a frame `eau2 info` names (``--json`` names all)."""

CONTEXT = {"help_option_names": ["-h", "--help"]}


def admin_command(function: Callable) -> click.Command:
    """`function` as a command whose errors are one line, with ``--scheduler``,
    ``--scheduler-file`` and ``--json`` after its own options."""
    command = click.command(cls=OneLineCommand, context_settings=CONTEXT)(one_line_errors(function))
    command.params += [
        *scheduler_params(),
        click.Option(
            ["--json", "as_json"], is_flag=True, help="Print one JSON document on standard output instead."
        ),
    ]
    return command


def echo_json(document) -> None:
    click.echo(json.dumps(document, indent=2))


def key_record(info: KeyInfo) -> dict:
    """A key's line of `eau2 ls`, as JSON."""
    return {
        "key": key_text(info.key),
        "name": info.key.name,
        "home": info.key.home,
        "kind": info.kind,
        "rows": info.rows,
        "bytes": info.nbytes,
        "chunks": info.nchunks,
        "replicas": info.replicas,
        "copies": info.copies,
        "status": info.status,
    }


def _selected(key: Key, arguments: tuple) -> bool:
    return not arguments or any(key == a if isinstance(a, Key) else matches(key, a) for a in arguments)


@admin_command
@click.argument("selection", nargs=-1, type=KeyOrPattern(), metavar="[KEY|PATTERN]...")
def ls(selection, scheduler, scheduler_file, as_json) -> None:
    """List the stored keys: kind, size, chunks, copies and health.

    REPLICAS is the copies asked for (of each chunk, for a frame); COPIES the copies on
    live nodes (of the least-replicated chunk); STATUS is ok, degraded (fewer copies than
    asked, or chunks to be read again from their files), lost (a chunk with no copy and no
    file), partial (chunks without a committed frame: a load under way, or interrupted) or
    unknown (copies or the frame's metadata may be on a node that does not answer).

    With arguments, only those keys: NAME (homed on node 0), NAME@N (homed on node N),
    or shell-style patterns over them ('wc-*', '*@2').
    """
    import eau2_dask

    with node_client(scheduler, scheduler_file) as client:
        listing = [info for info in eau2_dask.connect(client).keys() if _selected(info.key, selection)]
    if as_json:
        echo_json({"keys": [key_record(info) for info in listing]})
        return
    if not listing:
        click.echo("no keys" if not selection else "no keys match")
        return
    rows = [
        [
            key_text(info.key),
            info.kind,
            "-" if info.rows is None else f"{info.rows:,}",
            size(info.nbytes),
            info.nchunks if info.kind == "frame" else "-",
            info.replicas,
            info.copies,
            info.status,
        ]
        for info in listing
    ]
    click.echo(
        table(
            ["KEY", "KIND", "ROWS", "SIZE", "CHUNKS", "REPLICAS", "COPIES", "STATUS"],
            rows,
            right=(2, 3, 4, 5, 6),
        )
    )
    total = sum(info.nbytes for info in listing)
    click.echo(f"{count(len(listing), 'key')}, {size(total)}")


@admin_command
@click.argument("key", type=KeyType())
def info(key, scheduler, scheduler_file, as_json) -> None:
    """Show a key's size, copies, health, and a frame's chunks.

    KEY is NAME (homed on node 0) or NAME@N (homed on node N). For a frame, each chunk's
    rows, size, the nodes holding it and the block of the file it was read from.
    """
    import eau2_dask

    with node_client(scheduler, scheduler_file) as client:
        kv = eau2_dask.connect(client)
        found = next((entry for entry in kv.keys() if entry.key == key), None)
        if found is None:
            raise click.ClickException(f"no key {key_text(key)} (eau2 ls lists the keys)")
        meta = (
            kv.get(key).meta if found.kind == "frame" and found.status not in ("partial", "unknown") else None
        )
    record = key_record(found) | (_frame_record(meta) if meta else {})
    if as_json:
        echo_json(record)
        return
    lines = [
        ["key", record["key"]],
        ["kind", record["kind"]],
        ["status", record["status"]],
        ["size", f"{size(found.nbytes)} ({found.nbytes:,} bytes)"],
        ["replicas", f"{found.replicas} asked, {found.copies} on live nodes"],
    ]
    if meta:
        dropped = f" ({count(meta.dropped_rows, 'line')} dropped)" if meta.dropped_rows else ""
        shown = [f"{column['name']} {column['type']}" for column in record["columns"][:SHOWN_COLUMNS]]
        more = len(record["columns"]) - len(shown)
        lines += [
            ["rows", f"{meta.nrows:,}{dropped}"],
            ["columns", f"{len(meta.names)}: {', '.join(shown)}" + (f", and {more} more" if more else "")],
            ["chunks", f"{len(meta.chunks):,}"],
        ]
    click.echo("\n".join(f"{name:<10}{value}" for name, value in lines))
    if meta and meta.chunks:
        rows = [
            [i, f"{chunk.rows:,}", size(chunk.nbytes), ",".join(map(str, chunk.holders)), chunk.origin or "-"]
            for i, chunk in enumerate(meta.chunks)
        ]
        click.echo()
        click.echo(table(["CHUNK", "ROWS", "SIZE", "NODES", "SOURCE"], rows, right=(0, 1, 2)))


def _frame_record(meta: FrameMeta) -> dict:
    """What `eau2 info --json` adds for a frame."""
    from eau2.types import Schema

    schema = Schema.parse(meta.schema)
    return {
        "rows": meta.nrows,
        "dropped_rows": meta.dropped_rows,
        "schema": meta.schema,
        "columns": [{"name": name, "type": schema[i].name} for i, name in enumerate(meta.names)],
        "chunk_details": [
            {
                "chunk": i,
                "rows": chunk.rows,
                "bytes": chunk.nbytes,
                "nodes": list(chunk.holders),
                "source": None if chunk.origin is None else str(chunk.origin),
            }
            for i, chunk in enumerate(meta.chunks)
        ],
    }


@admin_command
@click.argument("selection", nargs=-1, required=True, type=KeyOrPattern(), metavar="KEY|PATTERN...")
@click.option(
    "--force",
    "-f",
    is_flag=True,
    help="Do not fail on a key that is not there, or a pattern that matches none.",
)
def rm(selection, force, scheduler, scheduler_file, as_json) -> None:
    """Remove keys and free their values on every node.

    Each argument is NAME (homed on node 0), NAME@N (homed on node N), or a shell-style
    pattern over them ('wc-*', '*@2'). A frame goes with all its chunks, whatever its
    status. A key that is not there, or a pattern that matches none, is an error after
    the others are removed, unless --force. A key that cannot be removed is an error
    after the others are removed, even with --force: a line each.
    """
    import eau2_dask

    deleted: list[str] = []
    missing: list[str] = []  # the arguments for which nothing was there
    why: list[str] = []
    failed: list[dict] = []  # the keys there that could not be removed, and why
    with node_client(scheduler, scheduler_file) as client:
        kv = eau2_dask.connect(client)
        listing = [entry.key for entry in kv.keys()] if any(isinstance(a, str) for a in selection) else []
        done: set[Key] = set()
        for argument in selection:
            if isinstance(argument, str) and not any(matches(key, argument) for key in listing):
                missing.append(argument)
                why.append(f"no key matches {argument}")
            keys = [argument] if isinstance(argument, Key) else [k for k in listing if matches(k, argument)]
            for key in keys:
                if key in done:
                    continue
                done.add(key)
                try:
                    kv.delete(key)
                except KeyError:
                    missing.append(key_text(key))
                    why.append(f"no key {key_text(key)}")
                    continue
                except Exception as error:  # go on with the others; said at the end
                    failed.append({"key": key_text(key), "error": message(error)})
                    continue
                deleted.append(key_text(key))
                if not as_json:
                    click.echo(f"deleted {key_text(key)}")
    if as_json:
        echo_json({"deleted": deleted, "missing": missing, "failed": failed})
    problems = [f"cannot remove {f['key']}: {f['error']}" for f in failed]
    if missing and not force:
        problems.append(f"{'; '.join(why)} (eau2 ls lists the keys)")
    for problem in problems[:-1]:
        click.echo(f"Error: {problem}", err=True)
    if problems:
        raise click.ClickException(problems[-1])


@admin_command
def nodes(scheduler, scheduler_file, as_json) -> None:
    """List the nodes: worker, budget, memory and disk use, reads.

    For each node: its worker's name and address, its budget (memory for values before
    they spill), bytes held in memory, spilled to disk and in its files, values held
    (each chunk, frame's metadata and other value counts one), whether its directory
    keeps them over restarts (durable), and the chunk reads of its Dask tasks that found
    the chunk on this node (local) or
    fetched it from another (remote).
    """
    import eau2_dask

    with node_client(scheduler, scheduler_file) as client:
        directory = eau2_dask.ensure_ready(client)
        reports = client.sync(_statuses, client, directory)
    if as_json:
        echo_json({"nodes": reports})
        return
    rows = [_node_row(report) for report in reports]
    headers = ["NODE", "NAME", "WORKER", "BUDGET", "MEMORY", "SPILLED", "DISK", "VALUES", "DURABLE"]
    headers += ["LOCAL READS", "REMOTE READS", "DIRECTORY"]
    click.echo(table(headers, rows, right=(0, 3, 4, 5, 6, 7, 9, 10)))
    up = [report for report in reports if report["up"]]
    totals = ", ".join(
        f"{size(sum(report[field] for report in up))} {what}"
        for field, what in [
            ("memory_bytes", "in memory"),
            ("spilled_bytes", "spilled"),
            ("disk_bytes", "on disk"),
        ]
    )
    click.echo(f"{count(len(reports), 'node')}, {len(up)} up: {totals}")


async def _statuses(client, directory: list[str | None]) -> list[dict]:
    """Each node's figures (`eau2_status`), asked of all at once; a gone or failing node's
    record says so (``"up": false`` and ``"problem"``)."""
    from eau2_dask.node import raise_reply

    async def one(number: int, address: str | None) -> dict:
        if address is None:
            return {"node": number, "address": None, "up": False, "problem": "gone: no worker has its number"}
        try:
            reply = await asyncio.wait_for(client.rpc(address).eau2_status(), STATUS_SECONDS)
            raise_reply(reply)
        except Exception as error:
            return {"node": number, "address": address, "up": False, "problem": message(error)}
        return {**reply, "node": number, "up": True}

    return list(await asyncio.gather(*(one(n, address) for n, address in enumerate(directory))))


def _node_row(report: dict) -> list:
    if not report["up"]:
        return [report["node"], "-", report["address"] or "-", *["-"] * 8, report["problem"]]
    return [
        report["node"],
        report["name"],
        report["address"],
        "unlimited" if report["budget"] is None else size(report["budget"]),
        size(report["memory_bytes"]),
        size(report["spilled_bytes"]),
        size(report["disk_bytes"]),
        f"{report['values']:,}",
        "yes" if report["durable"] else "no",
        f"{report['reads_local']:,}",
        f"{report['reads_remote']:,}",
        report["directory"] or "-",
    ]
