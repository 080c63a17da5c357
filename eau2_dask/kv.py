"""The store from a client: read and write eau2 values from outside the nodes."""

from __future__ import annotations

from distributed import Client

from eau2.distributed.kv import KVStore
from eau2_dask import config
from eau2_dask.install import ensure_ready
from eau2_dask.transport import DaskTransport


def connect(client: Client, *, node: int | None = None) -> KVStore:
    """A `KVStore` on the eau2 nodes behind `client`, used from this (client) process.

    `node` only sets what `this_node()` answers (and so which chunks `local_map` visits);
    every value is reached over the network.
    """
    directory = ensure_ready(client)
    transport = DaskTransport(client.loop, client.rpc, client.scheduler, node=node, directory=directory)
    return KVStore(
        transport,
        chunk_bytes=config.byte_setting("chunk-bytes"),
        cache_bytes=config.byte_setting("cache-bytes"),
    )
