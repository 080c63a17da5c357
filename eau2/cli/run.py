"""`eau2 run ...`: the example applications on an embedded local cluster or a running one."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import click

from eau2.cli.connection import cluster_client, resolve, scheduler_options
from eau2.cli.errors import one_line_errors
from eau2.cli.paths import here
from eau2.errors import NodeLost

_WITHIN = re.compile(r"within [0-9.e+-]+ s")
"""How a time-out names the seconds it waited."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def run() -> None:
    """Run an example application on every eau2 node.

    On the scheduler named by --scheduler, else --scheduler-file, else
    $DASK_SCHEDULER_ADDRESS; with none, each starts a local cluster of worker processes
    (on 127.0.0.1, one eau2 node each), shows its dashboard address, and closes it
    afterwards.
    """


def _cluster_options(default_nodes: int, exactly: bool = False) -> Callable:
    """The options every example shares; with `exactly`, it runs on `default_nodes` nodes
    only, and a different --nodes is refused before any cluster starts."""
    needs = f" (this example needs exactly {_nodes(default_nodes)})" if exactly else ""

    options = [
        click.option(
            "--nodes",
            type=click.IntRange(default_nodes, default_nodes) if exactly else click.IntRange(min=1),
            default=default_nodes,
            show_default=True,
            help=f"Nodes of the local cluster started when no scheduler is named{needs}.",
        ),
        scheduler_options,
        click.option("--json", "as_json", is_flag=True, help="End with one line of JSON: the results."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="SECONDS",
            help="Cancel the run if it takes longer than this.",
        ),
        click.option(
            "--keep-on-failure",
            is_flag=True,
            help="If the run fails, times out or is interrupted, keep what it stored on the "
            "cluster (by default it is removed), to look at with eau2 ls and eau2 info.",
        ),
    ]

    def decorate(command: Callable) -> Callable:
        decorated = one_line_errors(command)
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def _client(nodes: int, scheduler: str | None, scheduler_file: str | None):
    """A client of the scheduler the user named, or of an embedded cluster of `nodes`."""
    return cluster_client(resolve(scheduler, scheduler_file), nodes)


def _report(name: str, results: list, summary: dict, as_json: bool, started: float) -> None:
    summary = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in summary.items()}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        shown = {k: v for k, v in summary.items() if not isinstance(v, list)}
        if summary.get("stages"):
            last = summary["stages"][-1]
            shown = {"projects": last["projects"], "users": last["users"], "after stage": last["stage"]}
        details = ", ".join(f"{k} {v}" for k, v in shown.items())
        click.echo(
            f"{name} finished on {_nodes(len(results))} in {time.monotonic() - started:.1f} s: {details}"
        )


def _merged(results: list) -> dict:
    merged: dict = {}
    for result in results:
        if isinstance(result, dict):
            merged.update(result)
    return merged


def _run_example(
    name: str,
    nodes: int,
    scheduler: str | None,
    scheduler_file: str | None,
    as_json: bool,
    timeout: float | None,
    keep_on_failure: bool,
) -> None:
    """Run the example application `name` (one that takes no arguments) and report it."""
    import eau2_dask
    from eau2 import examples

    app_cls = getattr(examples, name.capitalize())
    started = time.monotonic()
    with _client(nodes, scheduler, scheduler_file) as client:
        results = eau2_dask.run(app_cls, client=client, timeout=timeout, keep_on_failure=keep_on_failure)
    _report(name, results, _merged(results), as_json, started)


@run.command()
@_cluster_options(default_nodes=1)
def trivial(nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure) -> None:
    """Store a million floats on node 0 and check their sum read back."""
    _run_example("trivial", nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure)


@run.command()
@_cluster_options(default_nodes=3, exactly=True)
def demo(nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure) -> None:
    """Node 0 stores the numbers 0..99,999 and their sum, node 1 reads and adds them up,
    node 2 checks the two sums agree: frames passed between nodes through the store."""
    _run_example("demo", nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure)


@run.command()
@click.argument("file")
@click.option(
    "--top", type=click.IntRange(min=0), default=10, show_default=True, help="How many words to show."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="Write every word's count here (TSV)."
)
@_cluster_options(default_nodes=3)
def wordcount(file, top, out, nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure) -> None:
    """Count the words of a text FILE (a path or fsspec URL)."""
    import eau2_dask
    from eau2.examples import WordCount

    given, file = file, here(file, "file")
    if Path(file).is_dir():  # a URL is left to the nodes
        raise click.ClickException(f"{given} is a folder, not a file")
    started = time.monotonic()
    with _client(nodes, scheduler, scheduler_file) as client:
        results = eau2_dask.run(
            WordCount, file, top=top, client=client, timeout=timeout, keep_on_failure=keep_on_failure
        )
    counts = results[0].pop("counts")
    words, numbers = (counts.column(name).to_pylist() for name in ("word", "count"))
    if out:
        with open(out, "w", encoding="utf-8") as sink:
            sink.writelines(f"{word}\t{count}\n" for word, count in zip(words, numbers, strict=True))
    summary = {**results[0], "top": [[w, c] for w, c in zip(words[:top], numbers[:top], strict=True)]}
    _report("wordcount", results, summary, as_json, started)


@run.command()
@click.option(
    "--data",
    "folder",
    required=True,
    metavar="DIR",
    help="Folder (or URL) with projects.ltgt, users.ltgt, commits.ltgt.",
)
@click.option(
    "--degrees",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="How many steps of collaboration to follow from the start user.",
)
@click.option(
    "--linus", "linus_id", type=int, default=4967, show_default=True, help="The id of the user to start from."
)
@click.option(
    "--compat",
    is_flag=True,
    help="Treat project and user ids past the end of their table as members of every set "
    "(by default, of none); this changes the counts on data with such ids.",
)
@_cluster_options(default_nodes=2)
def linus(
    folder, degrees, linus_id, compat, nodes, scheduler, scheduler_file, as_json, timeout, keep_on_failure
) -> None:
    """Find who is within --degrees steps of collaboration of a user (Linus Torvalds by
    default) in the projects, users and commits of a Linus data set (`eau2 generate linus`
    writes one)."""
    import eau2_dask
    from eau2.examples import Linus
    from eau2.examples.linus import COLUMNS

    folder = here(folder, "folder")
    started = time.monotonic()

    def left() -> float | None:
        """What is left of --timeout, which bounds the reads and the run together."""
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - started))

    with _client(nodes, scheduler, scheduler_file) as client:
        kv = eau2_dask.connect(client)
        frames = {}
        failed = True
        try:
            for name in ("projects", "users", "commits"):
                url = (
                    str(Path(folder) / f"{name}.ltgt")
                    if "://" not in folder
                    else f"{folder.rstrip('/')}/{name}.ltgt"
                )
                frames[name] = eau2_dask.read_sor(url, client=client, columns=COLUMNS[name], timeout=left())
                if frames[name].nrows == 0:
                    dropped = frames[name].dropped_rows
                    why = f"every line ({dropped}) was dropped" if dropped else "it is empty"
                    raise click.ClickException(f"{url} has no rows: {why}")
            keys = [frames[name].key for name in ("projects", "users", "commits")]
            results = eau2_dask.run(
                Linus,
                *keys,
                degrees=degrees,
                linus=linus_id,
                compat=compat,
                client=client,
                timeout=left(),
                keep_on_failure=keep_on_failure,
            )
            failed = False
        except TimeoutError as error:
            # The reads and the run each had what was left of --timeout: say the user's.
            raise TimeoutError(_WITHIN.sub(f"within {timeout:g} s", str(error), count=1)) from None
        finally:
            if not (failed and keep_on_failure):
                for frame in frames.values():
                    with contextlib.suppress(NodeLost):  # removed from every node that answers
                        kv.delete(frame.key)
    _report("linus", results, _merged(results), as_json, started)
