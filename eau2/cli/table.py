"""Aligned columns, as `hdfs dfs -ls` and `ray memory` print them."""

from __future__ import annotations

from collections.abc import Sequence

from dask.utils import format_bytes


def table(headers: Sequence[str], rows: Sequence[Sequence], right: Sequence[int] = ()) -> str:
    """`rows` under `headers`, each column as wide as its widest cell, two spaces apart;
    the columns numbered in `right` are aligned right (numbers), the others left."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def size(nbytes: int | None) -> str:
    """Bytes as Dask shows them (``1.21 MiB``); ``-`` for none."""
    return "-" if nbytes is None else format_bytes(nbytes)


def count(number: int, what: str) -> str:
    """``1 key``, ``3 keys``, with thousands separated."""
    return f"{number:,} {what}" if number == 1 else f"{number:,} {what}s"
