"""What the scheduler plugin recognises in a task: a dask partition of a stored frame (which
chunk, and the nodes that hold it), or a parse task of `read_sor`."""

from __future__ import annotations

from dataclasses import dataclass

from eau2.store.values import StoredChunk

PARSE_TASK_PREFIX = "eau2-read-"
"""Keys of `read_sor`'s parse tasks start so: the scheduler plugin keeps work stealing off
them, so each block is parsed, and its chunk kept, on the node the load chose."""


@dataclass(frozen=True)
class ChunkRef:
    """Chunk `index` of the frame under (`frame`, `home`), as a dask partition reads it, its
    columns named `columns`, of which those in `missing` (all when None) may lack values
    in some chunk. The scheduler plugin pins the task holding it to the workers of the
    chunk's live holders."""

    frame: str
    home: int
    index: int
    chunk: StoredChunk
    columns: tuple[str, ...]
    missing: frozenset[int] | None
