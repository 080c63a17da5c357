"""`eau2 generate`: synthetic inputs at full size."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def generate() -> None:
    """Write synthetic inputs: a Linus extract, or Zipf-distributed text."""


@generate.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for the three .ltgt files."
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Share of the 2020 extract's rows (1.0: 125.5 M projects, 32.4 M users, 117.9 M commits).",
)
@click.option("--seed", type=int, default=0, show_default=True)
def linus(out: str, scale: float, seed: int) -> None:
    """A Linus extract of the 2020 shape: projects.ltgt, users.ltgt, commits.ltgt."""
    from eau2.examples.generate import generate_linus

    rows = generate_linus(out, scale=scale, seed=seed, progress=sys.stderr.isatty())
    click.echo(", ".join(f"{name} {count:,}" for name, count in rows.items()) + f" rows written to {out}")


@generate.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The text file to write.")
@click.option("--size", default="1GB", show_default=True, help="About how many bytes.")
@click.option("--seed", type=int, default=0, show_default=True)
def text(out: str, size: str, seed: int) -> None:
    """Text of words drawn from a Zipf law."""
    from dask.utils import parse_bytes

    from eau2.examples.generate import generate_text

    written = generate_text(out, parse_bytes(size), seed=seed, progress=sys.stderr.isatty())
    click.echo(f"{written:,} bytes written to {out}")
