"""Cut a table into row chunks of about a given size in bytes."""

from __future__ import annotations

import pyarrow as pa

CHUNK_BYTES = 32 << 20
"""Default size of a stored frame's row chunks."""


def row_chunks(table: pa.Table, chunk_bytes: int = CHUNK_BYTES) -> list[pa.Table]:
    """Consecutive row slices of `table` of about `chunk_bytes` each (at least one row each).

    A table with no rows gives one empty chunk, so that its schema is kept.
    """
    if table.num_rows == 0:
        return [table]
    bytes_per_row = max(1, table.nbytes // table.num_rows)
    rows = max(1, chunk_bytes // bytes_per_row)
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]
