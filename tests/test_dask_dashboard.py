"""eau2 in the Dask dashboard and on Prometheus' /metrics: over HTTP, on a real cluster, the
figures shown are those of what was stored (and of each node's own account of itself)."""

from __future__ import annotations

import gc
import time
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import eau2_dask
from eau2 import DataFrame, Key
from eau2_dask import metrics
from eau2_dask.node import EXTENSION
from tests.dask_clusters import assert_no_new_processes, children

TRIPS = 60_000
STATIONS = 500


@pytest.fixture(scope="module")
def cluster():
    """3 worker processes with a 256 kB budget each (so frames spill), two frames and a
    value stored, and the big frame read once through dask."""
    before = children()
    with eau2_dask.embedded_cluster(3, budget="256kB", quiet=True) as client:
        kv = eau2_dask.connect(client)
        kv.chunk_bytes = 100_000
        rng = np.random.default_rng(1)
        trips = pa.table({"id": np.arange(TRIPS), "fare": rng.random(TRIPS) * 60})
        kv.put(Key("trips"), DataFrame.from_arrow(trips), replicas=2)
        stations = pa.table({"id": np.arange(STATIONS), "lat": rng.random(STATIONS)})
        kv.put(Key("stations", 1), DataFrame.from_arrow(stations))
        kv.put(Key("calibration", 2), np.arange(100.0))
        assert kv.get(Key("trips")).to_dask()["id"].sum().compute() == TRIPS * (TRIPS - 1) // 2
        yield client, kv
    assert_no_new_processes(before)


def url(client, path: str) -> str:
    return client.dashboard_link.rsplit("/", 1)[0] + path


def fetch(address: str) -> tuple[str, str]:
    with urllib.request.urlopen(address, timeout=30) as response:
        assert response.status == 200
        return response.headers["Content-Type"], response.read().decode()


def node_status(client) -> dict[str, dict]:
    """Each node's own figures, by worker address."""
    return client.run(lambda dask_worker: dask_worker.extensions[EXTENSION].status())


def samples(text: str) -> dict[tuple, float]:
    """An exposition's eau2 samples: (name, sorted labels) → value; each series once."""
    found: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("eau2_"):
                series = (sample.name, tuple(sorted(sample.labels.items())))
                assert series not in found, f"{series} reported twice"
                found[series] = sample.value
    return found


def value(found: dict[tuple, float], metric: str, /, **labels) -> float:
    matches = [v for (n, ls), v in found.items() if n == metric and labels.items() <= dict(ls).items()]
    assert len(matches) == 1, f"{metric}{labels}: {len(matches)} series in {sorted(found)}"
    return matches[0]


class Tables(HTMLParser):
    """The text of each cell of each table row (headers included) of an HTML page."""

    def __init__(self, page: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(page: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the table whose first header is `first_header`, as dicts by header."""
    rows = Tables(page).rows
    start = next(i for i, row in enumerate(rows) if row and row[0] == first_header)
    header, found = rows[start], []
    for row in rows[start + 1 :]:
        if row and row[0] in ("Key", "Node"):
            break
        found.append(dict(zip(header, row, strict=False)))
    return found


def test_page_shows_the_nodes_and_keys_as_stored(cluster):
    client, kv = cluster
    kind, page = fetch(url(client, "/eau2"))
    assert kind.startswith("text/html")
    assert 'href="eau2"' in page  # in the navigation bar, with Dask's own pages
    assert 'href="status"' in page

    keys = {row["Key"]: row for row in table(page, "Key")}
    assert set(keys) == {"trips", "stations", "calibration"}
    trips = kv.get(Key("trips")).meta
    assert len(trips.chunks) > 1
    assert keys["trips"]["Rows"] == f"{TRIPS:,}"
    assert keys["trips"]["Chunks"] == str(len(trips.chunks))
    assert keys["trips"]["Home"] == "0"
    assert keys["trips"]["Copies"] == "2 of 2"
    assert keys["trips"]["Status"] == "ok"
    assert keys["stations"]["Rows"] == f"{STATIONS:,}"
    assert keys["stations"]["Home"] == "1"
    assert keys["stations"]["Copies"] == "1 of 1"
    assert keys["calibration"]["Kind"] == "ndarray"
    assert keys["calibration"]["Rows"] == ""

    from dask.utils import format_bytes

    assert keys["trips"]["Bytes"] == format_bytes(trips.nbytes)

    status = node_status(client)
    directory = eau2_dask.ensure_ready(client)
    nodes = table(page, "Node")
    assert [row["Node"] for row in nodes] == ["0", "1", "2"]
    for row, address in zip(nodes, directory, strict=True):
        own = status[address]
        assert address in row["Worker"]
        assert row["Budget"] == format_bytes(own["budget"])
        assert row["In memory"] == format_bytes(own["memory_bytes"])
        assert row["Spilled"] == format_bytes(own["spilled_bytes"])
        assert row["On disk"] == format_bytes(own["disk_bytes"])
        assert row["Kept for dask"] == format_bytes(own["view_cache_bytes"])
        assert row["Values"] == str(own["values"])
        assert row["Reads local"] == str(own["reads_local"])
        assert row["Reads remote"] == str(own["reads_remote"])
    assert sum(s["spilled_bytes"] for s in status.values()) > 0  # the small budgets made them spill
    kept = sum(s["view_cache_bytes"] for s in status.values())
    assert kept > 0 and f"{format_bytes(kept)} kept for dask partitions" in page
    reads = sum(s["reads_local"] + s["reads_remote"] for s in status.values())
    assert reads == len(trips.chunks)  # one read of each chunk, by the sum above
    assert f"chunk reads: {sum(s['reads_local'] for s in status.values())} local" in page


def test_dashboard_pages_link_to_the_page(cluster):
    client, _ = cluster
    _, page = fetch(url(client, "/status"))
    assert 'href="eau2"' in page


def test_scheduler_metrics_report_the_nodes_and_keys_as_stored(cluster):
    client, kv = cluster
    # A scrape reports the scheduler's last look and starts a new one if it is old.
    deadline = time.monotonic() + 30
    while True:
        found = samples(fetch(url(client, "/metrics"))[1])
        if ("eau2_frame_rows", (("home", "0"), ("key", "trips"))) in found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    trips = kv.get(Key("trips")).meta
    assert value(found, "eau2_frame_rows", key="trips", home="0") == TRIPS
    assert value(found, "eau2_frame_rows", key="stations", home="1") == STATIONS
    assert value(found, "eau2_key_chunks", key="trips") == len(trips.chunks)
    assert value(found, "eau2_key_bytes", key="trips", kind="frame") == trips.nbytes
    assert value(found, "eau2_key_bytes", key="calibration", kind="ndarray") == 800
    assert value(found, "eau2_key_replicas", key="trips") == 2
    assert value(found, "eau2_key_copies", key="trips") == 2
    assert value(found, "eau2_key_status", key="trips", status="ok") == 1
    assert value(found, "eau2_key_status", key="trips", status="degraded") == 0
    assert value(found, "eau2_nodes", state="live") == 3
    assert value(found, "eau2_nodes", state="gone") == 0
    assert abs(value(found, "eau2_survey_timestamp_seconds") - time.time()) < 60

    status = node_status(client)
    kept = 0
    for number, address in enumerate(eau2_dask.ensure_ready(client)):
        own, labels = status[address], {"node": str(number), "worker": address}
        kept += value(found, "eau2_node_view_cache_bytes", **labels)
        assert value(found, "eau2_node_view_cache_bytes", **labels) == own["view_cache_bytes"]
        assert value(found, "eau2_node_memory_bytes", **labels) == own["memory_bytes"]
        assert value(found, "eau2_node_spilled_bytes", **labels) == own["spilled_bytes"]
        assert value(found, "eau2_node_disk_bytes", **labels) == own["disk_bytes"]
        assert value(found, "eau2_node_budget_bytes", **labels) == own["budget"]
        assert value(found, "eau2_node_values", **labels) == own["values"]
        assert value(found, "eau2_node_chunk_reads_total", locality="local", **labels) == own["reads_local"]
        assert value(found, "eau2_node_chunk_reads_total", locality="remote", **labels) == own["reads_remote"]
        assert value(found, "eau2_node_info", name=str(number), **labels) == 1
    assert kept > 0  # the fixture's read through dask joined chunks' ids somewhere


def test_worker_metrics_report_their_own_node(cluster):
    client, _ = cluster
    status = node_status(client)
    workers = client.scheduler_info(n_workers=-1)["workers"]
    for number, address in enumerate(eau2_dask.ensure_ready(client)):
        port = workers[address]["services"]["dashboard"]
        found = samples(fetch(f"http://127.0.0.1:{port}/metrics")[1])
        own, labels = status[address], {"node": str(number), "worker": address}
        assert {dict(labels)["worker"] for _, labels in found} == {address}  # its node only
        assert value(found, "eau2_node_memory_bytes", **labels) == own["memory_bytes"]
        assert value(found, "eau2_node_spilled_bytes", **labels) == own["spilled_bytes"]
        assert value(found, "eau2_node_disk_bytes", **labels) == own["disk_bytes"]
        assert value(found, "eau2_node_values", **labels) == own["values"]
        assert value(found, "eau2_node_view_cache_bytes", **labels) == own["view_cache_bytes"]
        reads = value(found, "eau2_node_chunk_reads_total", locality="local", **labels)
        assert reads == own["reads_local"]
        assert not [name for name, _ in found if name.startswith(("eau2_key_", "eau2_frame_"))]


def test_a_deleted_key_leaves_the_page_and_the_metrics(cluster):
    client, kv = cluster
    kv.put(Key("scratch"), DataFrame.from_arrow(pa.table({"x": np.arange(10)})))
    assert "scratch" in {row["Key"] for row in table(fetch(url(client, "/eau2"))[1], "Key")}
    kv.delete(Key("scratch"))
    assert "scratch" not in {row["Key"] for row in table(fetch(url(client, "/eau2"))[1], "Key")}
    deadline = time.monotonic() + 30
    while any(
        dict(labels).get("key") == "scratch" for _, labels in samples(fetch(url(client, "/metrics"))[1])
    ):
        assert time.monotonic() < deadline, "the deleted key stays in the scheduler's metrics"
        time.sleep(0.2)


class _Closing:
    """A node whose worker still says running but whose store is gone."""

    class worker:  # stands for a Worker
        from distributed.core import Status

        status = Status.running

    def status(self):
        raise RuntimeError("closing")


def test_a_closing_node_does_not_fail_the_scrape(cluster):
    client, _ = cluster
    fetch(url(client, "/eau2"))  # the scheduler has a look to report
    closing = _Closing()
    metrics._here()[0].add(closing)
    try:
        text = generate_latest(REGISTRY).decode()  # no exception
        assert "eau2_node_memory_bytes" in text  # the scheduler's figures are still there
    finally:
        metrics._here()[0].discard(closing)


def test_one_collector_per_process_and_none_inherited_by_a_fork(cluster, monkeypatch):
    metrics.export_cluster(next(iter(metrics._here()[1])))  # registering again is no error
    ours = [c for c in list(REGISTRY._collector_to_names) if type(c).__module__ == metrics.__name__]
    assert len(ours) == 1
    assert metrics._here()[1]  # the cluster's scheduler runs in this process
    monkeypatch.setattr(metrics.os, "getpid", lambda: -2)  # as in a forked child
    assert [len(s) for s in metrics._here()] == [0, 0]
    monkeypatch.undo()
    gc.collect()


def test_several_nodes_in_one_process(cluster):
    """Workers sharing a process (and its Prometheus registry) each report their own node,
    and each series once."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as local,
        Client(local) as client,
    ):
        kv = eau2_dask.connect(client)
        kv.put(Key("inprocess"), DataFrame.from_arrow(pa.table({"x": np.arange(7)})))
        workers = client.scheduler_info(n_workers=-1)["workers"]
        directory = eau2_dask.ensure_ready(client)
        port = workers[directory[0]]["services"]["dashboard"]
        found = samples(fetch(f"http://127.0.0.1:{port}/metrics")[1])
        status = node_status(client)
        for number, address in enumerate(directory):
            labels = {"node": str(number), "worker": address}
            assert value(found, "eau2_node_values", **labels) == status[address]["values"]
        _, page = fetch(url(client, "/eau2"))
        assert "inprocess" in {row["Key"] for row in table(page, "Key")}


def test_page_shows_gone_and_silent_nodes_and_unhealthy_keys():
    """Rendered from figures made up here: no cluster needed for the states a cluster
    seldom shows (a lost worker, a node that does not answer, a degraded or lost frame)."""
    from eau2.store.values import KeyInfo
    from eau2_dask.dashboard import Figures, render

    alive = {
        "node": 0,
        "address": "tcp://127.0.0.1:1",
        "name": "a",
        "budget": None,
        "durable": True,
        "directory": "/data/eau2/a",
        "values": 3,
        "memory_bytes": 2048,
        "spilled_bytes": 0,
        "disk_bytes": 4096,
        "reads_local": 3,
        "reads_remote": 1,
    }
    nodes = [
        alive,
        {"node": 1, "address": None},
        {"node": 2, "address": "tcp://127.0.0.1:3", "name": "c", "error": "timed out"},
    ]
    keys = [
        KeyInfo(Key("half"), "frame", 1000, 4, 2, 1, "degraded", rows=40),
        KeyInfo(Key("gone", 1), "frame", 500, 2, 1, 0, "lost", rows=20),
        KeyInfo(Key("writing"), "frame", 300, 3, 1, 0, "partial"),
    ]
    page = render(Figures(time.time(), nodes, keys), scheduler=object())
    rows = table(page, "Node")
    assert rows[0]["Budget"] == "unbounded"
    assert rows[0]["Values kept in"] == "/data/eau2/a"
    assert rows[0]["Kept for dask"] == "0 B"  # a node of an older eau2 does not say
    assert rows[1]["Budget"] == "gone its worker is gone"
    assert rows[2]["Budget"] == "silent did not answer: timed out"
    keys_shown = {row["Key"]: row for row in table(page, "Key")}
    assert keys_shown["half"]["Status"] == "degraded"
    assert keys_shown["half"]["Copies"] == "1 of 2"
    assert keys_shown["gone"]["Status"] == "lost"
    assert keys_shown["writing"]["Rows"] == ""
    assert "2 of 3 nodes live" in page  # the silent one has a worker
    assert "chunk reads: 3 local, 1 remote (75% local)" in page
