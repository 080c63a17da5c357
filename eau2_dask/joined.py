"""A partition's numbers joined once: the stored chunks then hold their slices of the join,
so the joined column costs no memory beside them and is found again without a copy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from eau2.store.key import Key
from eau2.store.node import NodeStore
from eau2.store.values import writable_buffers

NUMBERS = (pa.int64(), pa.float64())


def joined_in_place(columns: list[pa.ChunkedArray]) -> np.ndarray | None:
    """The values of a partition's chunks' `columns` as one read-only array, without a
    copy, where they lie end to end in memory (chunks that share a join); else None."""
    arrays = [column.chunk(0) for column in columns if column.num_chunks == 1]
    if len(arrays) < 2 or len(arrays) != len(columns):
        return None
    kind = arrays[0].type
    if kind not in NUMBERS or any(array.type != kind or array.null_count for array in arrays):
        return None
    arrays = [array for array in arrays if len(array)]  # an empty chunk's memory is anywhere
    if not arrays:
        return None
    start = end = _address(arrays[0])
    for array in arrays:
        if _address(array) != end:
            return None
        end += len(array) * kind.byte_width
    memory = pa.foreign_buffer(start, end - start, base=tuple(arrays))  # keeps them alive
    return np.frombuffer(memory, dtype=kind.to_pandas_dtype())


def share_join(
    store: NodeStore, keys: list[Key], stored: list[pa.Table], position: int, values: np.ndarray
) -> bool:
    """Hold column `position` of each of the chunks `stored` under `keys` as its slice of
    `values`, their join, so that both share memory; False where the chunks are not all
    held in memory here (then nothing changes), or `values` are not numbers that no code
    can change (numpy's own memory, which its owner can make writable again, is not)."""
    if values.dtype.kind not in "if" or _could_be_written(values):
        return False
    replacements = {}
    start = 0
    for key, table in zip(keys, stored, strict=True):
        field = table.schema.field(position)
        end = start + table.num_rows
        if field.type not in NUMBERS or table.column(position).null_count:
            return False
        part = pa.array(values[start:end], type=field.type)  # no copy: numpy's own memory
        replacements[key] = (table, table.set_column(position, field, part))
        start = end
    return start == len(values) and store.share(replacements)


def _could_be_written(values: np.ndarray) -> bool:
    """Whether some code could write to `values`' memory: they are writable, or an array
    they view owns its memory (numpy lets its owner make it writable again), or that memory
    is a writable buffer or Arrow array (the memory of Arrow's `to_pandas` is neither)."""
    owner = values
    while isinstance(owner, np.ndarray):
        if owner.flags.writeable or owner.flags.owndata:
            return True
        owner = owner.base
    if isinstance(owner, pa.ChunkedArray):
        return any(writable_buffers(chunk) for chunk in owner.chunks)
    if isinstance(owner, pa.Array):
        return writable_buffers(owner)
    try:
        return not memoryview(owner).readonly
    except TypeError:  # no buffer to write through
        return False


def _address(array: pa.Array) -> int:
    return array.buffers()[1].address + array.offset * array.type.byte_width
