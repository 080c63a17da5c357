"""Paths given on the command line, resolved where the command runs: so that the nodes
read the same file (on a shared file system), and a missing one is an error before any
connection or cluster starts. URLs (``s3://...``) are left to the nodes."""

from __future__ import annotations

import glob
from pathlib import Path

import click

from eau2.cli.keys import PATTERN_MARKS


def is_url(path: str) -> bool:
    return "://" in path


def here(path: str, what: str) -> str:
    """`path` made absolute here; a one-line error if nothing is there."""
    if is_url(path):
        return path
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as error:  # a symbolic link loop (RuntimeError before Python 3.13)
        raise click.ClickException(f"{path} cannot be resolved: {error}") from None
    if not resolved.exists():
        raise click.ClickException(f"no such {what}: {path}")
    return str(resolved)


def input_file(path: str) -> str:
    """An input file, or a glob of them (``data/*.sor``), made absolute here; a one-line
    error if it is missing, a folder, or a glob that matches no file."""
    if is_url(path):
        return path
    if any(mark in path for mark in PATTERN_MARKS):
        pattern = str(Path(path).expanduser().absolute())
        if not any(Path(match).is_file() for match in glob.glob(pattern)):
            raise click.ClickException(f"no file matches {path}")
        return pattern
    resolved = here(path, "file")
    if Path(resolved).is_dir():
        raise click.ClickException(f"{path} is a folder, not a file")
    return resolved
