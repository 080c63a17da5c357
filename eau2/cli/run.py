"""`eau2 run APP`: an example application on an embedded local cluster or a running one."""

from __future__ import annotations

import json
import time

import click

from eau2.app.application import ApplicationError
from eau2.examples import APPLICATIONS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app", type=click.Choice(sorted(APPLICATIONS)))
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    default=None,
    help="Nodes of the embedded cluster (default: what APP needs).",
)
@click.option(
    "--scheduler", default=None, metavar="ADDRESS", help="Run on this Dask scheduler's workers instead."
)
@click.option("--json", "as_json", is_flag=True, help="End with one line of JSON holding the results.")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Give up after this long.")
def run(app: str, nodes: int | None, scheduler: str | None, as_json: bool, timeout: float | None) -> None:
    """Run the example application APP on every eau2 node.

    Without --scheduler, starts a local cluster of worker processes (on 127.0.0.1, one
    eau2 node each), shows its dashboard address, and closes it afterwards.
    """
    from distributed import Client

    import eau2_dask

    app_cls = APPLICATIONS[app]
    started = time.monotonic()
    try:
        if scheduler:
            with Client(scheduler, timeout="30s") as client:
                results = eau2_dask.run(app_cls, client=client, timeout=timeout)
        else:
            with eau2_dask.embedded_cluster(nodes or app_cls.nodes) as client:
                results = eau2_dask.run(app_cls, client=client, timeout=timeout)
    except (ApplicationError, TimeoutError, OSError) as error:
        raise click.ClickException(str(error)) from None
    summary = _summary(results)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        details = ", ".join(f"{name} {value}" for name, value in summary.items())
        click.echo(f"{app} finished on {len(results)} nodes in {time.monotonic() - started:.1f} s: {details}")


def _summary(results: list) -> dict:
    """The nodes' result dictionaries merged; whole floats shown as integers."""
    merged: dict = {}
    for result in results:
        if isinstance(result, dict):
            merged.update(result)
    return {name: int(v) if isinstance(v, float) and v.is_integer() else v for name, v in merged.items()}
