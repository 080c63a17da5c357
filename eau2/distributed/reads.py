"""Reading a chunk from whichever copy is there: its holders (this node first), any live
node that has it, or its file read again; `DataLost` when none of these is left. A frame
deleted or written again since its reader looked it up is never read from its file."""

from __future__ import annotations

import contextlib
import time

import pyarrow as pa

from eau2.distributed.placement import holders, spread
from eau2.distributed.survey import holds, survey
from eau2.errors import DataLost, KeyExistsError, NodeLost, SorError
from eau2.store.key import Key
from eau2.store.transport import Transport
from eau2.store.values import FrameMeta, StoredChunk, frame_of_chunk

_GONE = (KeyError, NodeLost)
_CONFIRMED_SECONDS = 2.0
_confirmed: dict[tuple[Key, str], float] = {}  # (frame, write tag) -> when it was last found stored


def read_chunk(transport: Transport, frame: Key, index: int, chunk: StoredChunk) -> pa.Table:
    """Chunk `index` of the frame under `frame`, from a live copy, rebuilt if it has none.
    A holder that does not answer (hung) is read around, from another copy or else rebuilt
    from the file on a node that answers (any copy of a chunk is the same: a chunk is
    written once); it is waited for only when there is no other way to the data."""
    here = transport.this_node()
    live = transport.live_nodes()
    hung: list[int] = []
    recorded = sorted(chunk.holders, key=lambda node: node != here)
    for node in recorded:
        if node not in live:
            continue
        if not transport.answering(node):
            hung.append(node)
            continue
        try:
            return transport.get(node, chunk.key, impatient=len(live) > 1)
        except KeyError:
            continue
        except NodeLost:
            if node in transport.live_nodes():
                hung.append(node)
    answering = [node for node in live if node not in hung and transport.answering(node)]
    # Not where the metadata says: repair or a rebuild may have put it elsewhere.
    for node in answering:
        if node not in recorded and holds(transport, node, chunk.key):
            try:
                return transport.get(node, chunk.key)
            except _GONE:
                continue
    if not live:
        raise NodeLost(chunk.holders[0], "no node is left: every worker left the cluster")
    if chunk.origin is not None and answering:
        _check_still_stored(transport, frame, chunk)
        return _rebuild(transport, frame, index, chunk, _builder(here, answering, index))
    if hung:  # no other way to the data: wait for its holders, unless the frame is gone
        with contextlib.suppress(NodeLost):  # its metadata cannot be checked: wait all the same
            _check_still_stored(transport, frame, chunk)
    for node in hung:
        with contextlib.suppress(*_GONE):
            return transport.get(node, chunk.key)
    _check_still_stored(transport, frame, chunk)
    if chunk.origin is None:
        raise DataLost(frame, [index], list(chunk.holders), "it was not loaded from a file, so no rebuild")
    return _rebuild(transport, frame, index, chunk, _builder(here, live, index))


def _builder(here: int | None, nodes: list[int], index: int) -> int:
    """The node to rebuild chunk `index` on: this one if it is among `nodes`, else one of them in turn."""
    return here if here in nodes else spread(nodes, index, 1)[0]


def find_value(transport: Transport, key: Key, wait_for_hung_home: bool = True, ask_hung_home: bool = True):
    """The value under `key` from its home node, or from any live node holding a copy;
    `KeyError` if none has it. A home node that does not answer (hung) is waited for only
    if no other node has a copy, and then only if `wait_for_hung_home`. The home is asked
    first (a copy elsewhere may be older), even one found hung moments ago unless not
    `ask_hung_home`: then such a home (not `transport.answering`) is read around at once."""
    live = transport.live_nodes()
    first = holders(live, key.home, 1)[0]
    hung = not ask_hung_home and not transport.answering(first)
    with contextlib.suppress(KeyError):
        try:
            if not hung:
                return transport.get(first, key, impatient=len(live) > 1)
        except NodeLost:
            hung = first in transport.live_nodes()
    for node in live:
        if node != first and holds(transport, node, key):
            with contextlib.suppress(KeyError, NodeLost):
                return transport.get(node, key)
    if hung and wait_for_hung_home:
        with contextlib.suppress(KeyError, NodeLost):
            return transport.get(first, key)
        live = transport.live_nodes()  # Dask may have given up on it meanwhile
    gone = "" if key.home in live else f" (its home node {key.home} is gone)"
    raise KeyError(f"no value under key {key.name!r}{gone}")


def _check_still_stored(transport: Transport, frame: Key, chunk: StoredChunk) -> None:
    """`KeyError` if the frame under `frame` is no longer the write `chunk` is of (deleted,
    written again, or its metadata lost with the nodes that held it, since the reader looked
    it up): its chunks are then not to be read again from their file, which a node
    restarted since would do and keep. A write found stored is not asked about again for
    `_CONFIRMED_SECONDS`, so a node's lost chunks cost one look at the metadata, not one each."""
    written = frame_of_chunk(chunk.name)
    if written is None:
        return
    now = time.monotonic()
    confirmed = _confirmed.get(written)
    if confirmed is not None and now - confirmed < _CONFIRMED_SECONDS:
        return
    try:  # a hung home is read around at once: every lost chunk of the frame asks
        meta = find_value(transport, frame, wait_for_hung_home=False, ask_hung_home=False)
    except KeyError:
        home = holders(transport.live_nodes(), frame.home, 1)[0]  # its metadata's first holder
        if not transport.answering(home):
            raise NodeLost(
                home,
                f"frame {frame.name!r}: its lost chunks are not read again from their file while "
                f"its metadata cannot be checked: node {home}, which holds it, does not answer (hung)",
            ) from None
        raise KeyError(
            f"frame {frame.name!r} is no longer stored: deleted since this reader looked it up, "
            "or its metadata lost with the nodes that held it"
        ) from None
    if not isinstance(meta, FrameMeta) or (meta.tag and meta.tag != written[1]):  # untagged: cannot tell
        raise KeyError(
            f"frame {frame.name!r} was written again since this reader looked it up: "
            "get it again for its new data"
        )
    if len(_confirmed) > 1024:
        _confirmed.clear()
    _confirmed[written] = now


def every_lost_chunk(transport: Transport, frame: Key, meta: FrameMeta, first: DataLost) -> DataLost:
    """`first`, widened to every chunk of the frame that has no copy on a live node and no
    file to be read again from."""
    found = survey(transport)
    chunks, nodes = set(first.chunks), set(first.nodes)
    for index, chunk in enumerate(meta.chunks):
        if index not in chunks and chunk.origin is None and not found.held.get(chunk.key):
            chunks.add(index)
            nodes.update(chunk.holders)
    return DataLost(frame, sorted(chunks), sorted(nodes), first.why)


def _rebuild(transport: Transport, frame: Key, index: int, chunk: StoredChunk, node: int) -> pa.Table:
    try:
        transport.rebuild(node, chunk.key, chunk.origin)
    except KeyExistsError:
        pass  # another reader rebuilt it there first
    except SorError as error:
        raise DataLost(frame, [index], list(chunk.holders), str(error)) from None
    except KeyError:
        raise KeyError(f"frame {frame.name!r} was deleted while it was being read") from None
    return transport.get(node, chunk.key)
