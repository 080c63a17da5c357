"""Values on the wire between nodes: Arrow data without copies, as out-of-band frames."""

from __future__ import annotations

import pickle

import pyarrow as pa
from distributed.protocol import dask_deserialize, dask_serialize, deserialize, to_serialize
from distributed.protocol.serialize import Serialized

from eau2.store.values import compact, immutable


class ArrowValue:
    """An Arrow table or array travelling between nodes."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


@dask_serialize.register(ArrowValue)
def _serialize(wrapped: ArrowValue) -> tuple[dict, list]:
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(compact(wrapped.value), protocol=5, buffer_callback=buffers.append)
    return {}, [head, *(buffer.raw() for buffer in buffers)]


@dask_deserialize.register(ArrowValue)
def _deserialize(header: dict, frames: list) -> ArrowValue:
    return ArrowValue(immutable(pickle.loads(frames[0], buffers=frames[1:])))  # frames may be writable


def wire(value):
    """`value` ready for an RPC message: Arrow and numpy data as frames, bytes as they are."""
    if isinstance(value, (pa.Table, pa.Array, pa.ChunkedArray)):
        return to_serialize(ArrowValue(value))
    if isinstance(value, bytes):
        return value
    return to_serialize(value)


def unwire(value):
    """The value `wire` sent (also where the receiving end does not deserialize, as on the
    scheduler, whose repairs read frame metadata)."""
    if isinstance(value, Serialized):
        value = deserialize(value.header, value.frames)
    return value.value if isinstance(value, ArrowValue) else value
