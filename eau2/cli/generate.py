"""`eau2 generate`: synthetic inputs, small by default, at full size when asked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


class ByteSize(click.ParamType):
    """A number of bytes written as Dask writes them: ``300MB``, ``1.5GiB``, ``4096``."""

    name = "size"

    def convert(self, value, param, ctx) -> int:
        from dask.utils import parse_bytes

        try:
            size = value if isinstance(value, int) else parse_bytes(value)
        except (ValueError, TypeError):
            self.fail(f"{value!r} is not a size (examples: 300MB, 1.5GiB, 4096)", param, ctx)
        if size < 1:
            self.fail(f"{value!r} is not a size of at least 1 byte", param, ctx)
        return size


def _writable_folder(folder: Path, what: str, *, make: bool) -> None:
    """A one-line error unless `folder` exists (or, with `make`, can be made) and can be
    written to."""
    if not make and not folder.is_dir():
        raise click.ClickException(f"cannot write {what}: there is no folder {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = error.strerror
        raise click.ClickException(f"cannot create the folder {folder} for {what}: {why}") from None
    if not os.access(folder, os.W_OK):
        raise click.ClickException(f"cannot write {what} to {folder}: permission denied")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def generate() -> None:
    """Write synthetic inputs: Linus data, or text."""


@generate.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for the three .ltgt files."
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=0.01,
    show_default=True,
    help="Size, as a share of the full data set: 0.01 writes about 86 MB; 1.0, the full "
    "size, 8.6 GB (125.5 M projects, 32.4 M users, 117.9 M commits).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random rows.")
def linus(out: str, scale: float, seed: int) -> None:
    """GitHub-like projects, users and commits for `eau2 run linus`.

    Writes projects.ltgt, users.ltgt and commits.ltgt: ids equal line numbers, project
    sizes and user activity are heavy-tailed, and user 4967 (Linus) is among the most
    active.
    """
    from eau2.examples.generate import generate_linus

    _writable_folder(Path(out), "the Linus extract", make=True)
    rows = generate_linus(out, scale=scale, seed=seed, progress=sys.stderr.isatty())
    click.echo(", ".join(f"{name} {count:,}" for name, count in rows.items()) + f" rows written to {out}")


@generate.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The text file to write.")
@click.option(
    "--size",
    type=ByteSize(),
    default="100MB",
    show_default=True,
    help="About how many bytes to write (300MB, 1.5GiB, ...).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random words.")
def text(out: str, size: int, seed: int) -> None:
    """Text of words drawn from a Zipf law."""
    from eau2.examples.generate import generate_text

    _writable_folder(Path(out).absolute().parent, "the text", make=False)
    written = generate_text(out, size, seed=seed, progress=sys.stderr.isatty())
    click.echo(f"{written:,} bytes written to {out}")
