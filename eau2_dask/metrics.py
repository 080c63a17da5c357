"""eau2's figures as Prometheus metrics, on the ``/metrics`` page Dask serves on each worker
and on the scheduler (it needs ``prometheus_client``; without it there is nothing to add to).

A worker reports its own node, live. The scheduler reports every node and every stored key
from its `Overview`: the figures of its last look at the cluster, which a scrape renews in
the background when they are older than `MAX_AGE` seconds (a scrape cannot wait for the
look: Dask serves ``/metrics`` on the event loop the look needs). Every name starts with
``eau2_``; see docs/dashboard.md for the list.

One collector serves a whole process, whatever number of nodes and schedulers it holds:
Prometheus' registry is global, and two collectors naming the same metric would make
every scrape fail.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator

from distributed.core import Status

from eau2_dask.dashboard import STATUSES, Figures, Overview

logger = logging.getLogger("eau2")

MAX_AGE = 5.0
"""A scrape of the scheduler's metrics starts a new look when the last is older than this."""

_SERVING = (Status.running, Status.paused, Status.closing_gracefully)

_lock = threading.Lock()
_registered = False  # a forked child inherits this with the registry it describes
_sources: tuple[int, weakref.WeakSet, weakref.WeakSet] = (-1, weakref.WeakSet(), weakref.WeakSet())


def export_node(node) -> None:
    """Report `node` (an `Eau2Node`) on this process's ``/metrics`` while it lives."""
    if _register():
        _here()[0].add(node)


def export_cluster(overview: Overview) -> None:
    """Report the nodes and keys of `overview`'s cluster on this process's ``/metrics``."""
    if _register():
        _here()[1].add(overview)


def forget_cluster(overview: Overview) -> None:
    """Stop reporting `overview` (its scheduler's eau2 plugin is closing)."""
    _here()[1].discard(overview)


def _here() -> tuple[weakref.WeakSet, weakref.WeakSet]:
    """The nodes and overviews of this process: a process forked from one holding some
    (a worker of the embedded cluster) starts with none."""
    global _sources
    with _lock:
        if _sources[0] != os.getpid():
            _sources = (os.getpid(), weakref.WeakSet(), weakref.WeakSet())
        return _sources[1], _sources[2]


def _register() -> bool:
    """Add eau2's collector to Prometheus' registry, once per process; False without
    ``prometheus_client``."""
    global _registered
    try:
        import prometheus_client
    except ModuleNotFoundError:
        return False
    with _lock:
        if not _registered:
            prometheus_client.REGISTRY.register(_Collector())
            _registered = True
    return True


class _Collector:
    """Prometheus' view of this process's eau2 nodes and schedulers."""

    def describe(self) -> list:
        return []  # names vary with what the process holds: the registry asks collect()

    def collect(self) -> Iterator:
        metrics = _Metrics()
        nodes, overviews = _here()
        for node in list(nodes):
            try:
                if node.worker.status in _SERVING:
                    metrics.node(node.status())
            except Exception:  # a node closing as it is asked: one scrape without it
                logger.debug("eau2: no metrics from a node", exc_info=True)
        for overview in list(overviews):
            try:
                if overview.scheduler.status in _SERVING:
                    overview.refresh_soon(MAX_AGE)
                    if overview.latest is not None:
                        metrics.cluster(overview.latest)
            except Exception:
                logger.debug("eau2: no metrics from a scheduler", exc_info=True)
        yield from metrics.families()


_NODE = ["node", "worker"]
_KEY = ["key", "home", "kind"]


class _Metrics:
    """The families of one scrape; a series reported twice (a node seen both live and in
    a scheduler's look, when they share a process) is reported once, the first time."""

    def __init__(self) -> None:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        self._families = {
            family.name: family
            for family in (
                InfoMetricFamily(
                    "eau2_node",
                    "An eau2 node: its worker's name, and where it keeps its values",
                    labels=[*_NODE, "name", "durable", "directory"],
                ),
                gauge(
                    "eau2_node_budget_bytes", "Bytes a node keeps in memory before it spills", labels=_NODE
                ),
                gauge("eau2_node_memory_bytes", "Bytes of values a node holds in memory", labels=_NODE),
                gauge("eau2_node_spilled_bytes", "Bytes of values a node has spilled to disk", labels=_NODE),
                gauge("eau2_node_disk_bytes", "Bytes of a node's files on disk", labels=_NODE),
                gauge(
                    "eau2_node_values", "Values (chunks, frame metadata, others) a node holds", labels=_NODE
                ),
                gauge(
                    "eau2_node_view_cache_bytes",
                    "Bytes of columns a node converted for dask partitions and keeps (eau2.view-cache)",
                    labels=_NODE,
                ),
                counter(
                    "eau2_node_chunk_reads",
                    "Chunks read by dask partitions on a node's worker, held there (local) or not (remote)",
                    labels=[*_NODE, "locality"],
                ),
                gauge("eau2_nodes", "eau2 nodes by state: live, or gone (no worker)", labels=["state"]),
                gauge(
                    "eau2_key_bytes", "Bytes of a stored key's value (a frame: of its chunks)", labels=_KEY
                ),
                gauge("eau2_key_chunks", "Chunks of a stored frame", labels=_KEY),
                gauge(
                    "eau2_key_replicas", "Copies asked for of a key's value, or of each chunk", labels=_KEY
                ),
                gauge("eau2_key_copies", "Copies there are (of a frame's least copied chunk)", labels=_KEY),
                gauge(
                    "eau2_key_status",
                    "A stored key's health: 1 for its status "
                    "(ok, degraded, lost, partial, unknown), 0 for the others",
                    labels=[*_KEY, "status"],
                ),
                gauge("eau2_frame_rows", "Rows of a stored frame", labels=["key", "home"]),
                gauge(
                    "eau2_survey_timestamp_seconds",
                    "When the scheduler last looked at the cluster (its eau2_nodes and eau2_key_* figures)",
                ),
            )
        }
        self._seen: set[tuple] = set()

    def _add(self, name: str, labels: list[str], value) -> None:
        if value is None or (name, *labels) in self._seen:
            return
        self._seen.add((name, *labels))
        self._families[name].add_metric(labels, value)

    def node(self, figures: dict, number: int | None = None) -> None:
        """One node's figures (`Eau2Node.status`); `number` as the scheduler has it."""
        number = figures["node"] if number is None else number
        labels = ["" if number is None else str(number), figures["address"]]
        directory = figures["directory"] or ""
        durable = "true" if figures["durable"] else "false"
        self._add("eau2_node", [*labels, figures["name"], durable, directory], {})
        self._add("eau2_node_budget_bytes", labels, figures["budget"])
        for figure in ("memory", "spilled", "disk"):
            self._add(f"eau2_node_{figure}_bytes", labels, figures[f"{figure}_bytes"])
        self._add("eau2_node_values", labels, figures["values"])
        self._add("eau2_node_view_cache_bytes", labels, figures.get("view_cache_bytes"))  # absent: older node
        for locality in ("local", "remote"):
            self._add("eau2_node_chunk_reads", [*labels, locality], figures[f"reads_{locality}"])

    def cluster(self, figures: Figures) -> None:
        """A scheduler's look: every node that answered, and every key."""
        for node in figures.nodes:
            if "memory_bytes" in node:
                self.node(node, node["node"])
        live = sum(node["address"] is not None for node in figures.nodes)
        self._add("eau2_nodes", ["live"], live)
        self._add("eau2_nodes", ["gone"], len(figures.nodes) - live)
        for key in figures.keys:
            labels = [key.key.name, str(key.key.home), key.kind]
            self._add("eau2_key_bytes", labels, key.nbytes)
            if key.kind == "frame":
                self._add("eau2_key_chunks", labels, key.nchunks)
                self._add("eau2_frame_rows", labels[:2], key.rows)
            self._add("eau2_key_replicas", labels, key.replicas)
            self._add("eau2_key_copies", labels, key.copies)
            for status in STATUSES:
                self._add("eau2_key_status", [*labels, status], int(key.status == status))
        self._add("eau2_survey_timestamp_seconds", [], figures.taken)

    def families(self) -> Iterator:
        return (family for family in self._families.values() if family.samples)
