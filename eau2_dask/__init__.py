"""eau2 on Dask: nodes inside Dask workers, applications run on all of them at once.

``dask worker SCHEDULER --preload eau2`` makes a worker an eau2 node; `run` runs an
application on every node; `embedded_cluster` starts a local cluster of nodes.
"""

from eau2_dask import config as _config  # noqa: F401 - registers eau2's settings with Dask
from eau2_dask.cluster import embedded_cluster
from eau2_dask.install import Eau2WorkerPlugin, ensure_ready
from eau2_dask.kv import DaskKVStore, connect
from eau2_dask.partitions import from_dask
from eau2_dask.read import read_sor
from eau2_dask.run import run
from eau2_dask.scheduler import Eau2SchedulerPlugin
from eau2_dask.transport import DaskTransport

__all__ = [
    "DaskKVStore",
    "DaskTransport",
    "Eau2SchedulerPlugin",
    "Eau2WorkerPlugin",
    "connect",
    "embedded_cluster",
    "ensure_ready",
    "from_dask",
    "read_sor",
    "run",
]
