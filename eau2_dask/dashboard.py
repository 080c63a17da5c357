"""eau2's page on the scheduler's dashboard (``/eau2``, linked from Dask's navigation bar):
the nodes, the stored keys and the chunk reads served, as the cluster has them now.

The figures come from an `Overview`, one per scheduler, which also feeds the scheduler's
Prometheus metrics (see `eau2_dask.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import distributed
from dask.utils import format_bytes
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader
from tornado import web

from eau2.distributed.kv import KVStore
from eau2.store.values import KeyInfo
from eau2_dask.node import raise_reply
from eau2_dask.transport import DaskTransport

logger = logging.getLogger("eau2")

PAGE = "eau2"
"""The page's path under the dashboard's prefix, and its name in the navigation bar."""

STATUSES = ("ok", "degraded", "lost", "partial", "unknown")
"""A key's health, as `KVStore.keys` reports it."""

ASK_SECONDS = 5.0
"""How long a node has to report its figures before the page shows it as not answering."""

PAGE_SECONDS = 10.0
"""How long the page waits for a fresh look before it shows the last one."""

REFRESH_SECONDS = 10
"""The page reloads itself this often."""


@dataclass(frozen=True)
class Figures:
    """One look at an eau2 cluster."""

    taken: float
    """When (``time.time()``)."""
    nodes: list[dict]
    """By node number: the node's `Eau2Node.status` figures; only ``node`` and ``address``
    (None) for a number whose worker is gone; ``error`` for a node that did not answer."""
    keys: list[KeyInfo]
    problem: str | None = None
    """Why the keys could not be listed, if they could not."""


class Overview:
    """The figures of the eau2 cluster behind `scheduler`, taken when asked for: one look at
    a time, its keys listed in a thread (a listing blocks on the event loop it uses)."""

    def __init__(self, scheduler, directory: Callable[[], list[str | None]]):
        self.scheduler = scheduler
        self._directory = directory
        self.latest: Figures | None = None
        """The last look taken, if any."""
        self._taking: asyncio.Future | None = None

    async def fresh(self, max_age: float = 0.0) -> Figures:
        """Figures no older than `max_age` seconds (a look under way when asked counts)."""
        latest = self.latest
        if latest is not None and time.time() - latest.taken <= max_age:
            return latest
        if self._taking is None:
            self._taking = asyncio.ensure_future(self._take())
        return await asyncio.shield(self._taking)

    def refresh_soon(self, max_age: float) -> None:
        """Take a new look in the background if the last is older than `max_age` (from any thread)."""
        latest = self.latest
        if latest is None or time.time() - latest.taken > max_age:
            self.scheduler.loop.add_callback(self.fresh, max_age)

    async def _take(self) -> Figures:
        try:
            started = time.time()
            directory = list(self._directory())
            keys, problem = await self._keys()
            # After the listing, which reads each frame's metadata (and so may bring it back
            # from disk): the nodes' figures are as the listing left them.
            nodes = await self._nodes(directory)
            self.latest = Figures(started, nodes, keys, problem)
            return self.latest
        finally:
            self._taking = None

    async def _nodes(self, directory: list[str | None]) -> list[dict]:
        async def ask(number: int, address: str | None) -> dict:
            if address is None:
                return {"node": number, "address": None}
            try:
                reply = await asyncio.wait_for(self.scheduler.rpc(address).eau2_status(), ASK_SECONDS)
                raise_reply(reply)
            except Exception as error:  # a node that is leaving, or too busy to answer in time
                state = self.scheduler.workers.get(address)
                name = str(state.name) if state is not None else ""
                why = str(error) or type(error).__name__
                return {"node": number, "address": address, "name": name, "error": why}
            return {**reply, "node": number}

        return list(await asyncio.gather(*(ask(n, a) for n, a in enumerate(directory))))

    async def _keys(self) -> tuple[list[KeyInfo], str | None]:
        async def directory() -> list[str | None]:
            return self._directory()

        scheduler = self.scheduler
        try:
            return await _in_thread(_list_keys, scheduler.loop, scheduler.rpc, directory), None
        except Exception as error:  # a node lost during the listing, the cluster closing
            logger.debug("eau2: listing the keys for the dashboard failed", exc_info=True)
            return [], f"the keys could not be listed: {type(error).__name__}: {error}"


async def _in_thread(function: Callable, *args):
    """`function(*args)` in a daemon thread: a call it makes on the event loop never returns
    if the loop stops (the scheduler closing), and must not hold up the process's exit."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result, error) -> None:
        if not future.done():
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def run() -> None:
        try:
            outcome = (function(*args), None)
        except Exception as error:
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="eau2-dashboard", daemon=True).start()
    return await future


def _list_keys(loop, rpc, directory) -> list[KeyInfo]:
    """Every user key of the cluster (blocks: run it in a thread)."""
    return KVStore(DaskTransport(loop, rpc, directory)).keys()


# The page ------------------------------------------------------------------------------

_overviews: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Each scheduler's `Overview`, while eau2's plugin runs there."""

_routed: weakref.WeakSet = weakref.WeakSet()
"""The HTTP applications that have the page's route (tornado cannot remove one)."""


def add_page(scheduler, overview: Overview) -> None:
    """Serve ``/eau2`` (under the dashboard's prefix) from `scheduler`'s web server, and link
    it from the dashboard's navigation bar."""
    _overviews[scheduler] = overview
    application = getattr(scheduler, "http_application", None)
    if application is None:
        return
    if application not in _routed:
        path = _prefix(application) + PAGE
        application.add_handlers(r".*", [(path, Eau2Page, {"scheduler": scheduler})])
        _routed.add(application)
    pages = _navigation(scheduler)
    if pages is not None and PAGE not in pages:
        pages.append(PAGE)


def remove_page(scheduler) -> None:
    """Unlink the page; it answers 404 from now on."""
    _overviews.pop(scheduler, None)
    pages = _navigation(scheduler)
    if pages is not None and PAGE in pages:
        pages.remove(PAGE)


def _prefix(application) -> str:
    """The prefix of the server's pages ("/" unless ``--dashboard-prefix`` set one), read
    off the route of Dask's static files."""
    import tornado.routing

    for rule in application.wildcard_router.rules:
        if isinstance(rule.matcher, tornado.routing.PathMatches):
            pattern = rule.matcher.regex.pattern
            if pattern.endswith("statics/(.*)$"):
                return pattern[: -len("statics/(.*)$")]
    return "/"


def _dashboard(scheduler) -> bool:
    """Whether the scheduler serves Dask's dashboard (its Bokeh pages)."""
    application = getattr(scheduler, "http_application", None)
    return any(
        type(app).__name__.endswith("BokehTornado") for app in getattr(application, "applications", [])
    )


def _navigation(scheduler) -> list | None:
    """The variables Dask's dashboard pages render their navigation bar from (the same
    objects: a page added to their ``pages`` shows on every page); None without a dashboard."""
    if not _dashboard(scheduler):
        return None
    try:
        from distributed.dashboard.scheduler import template_variables
    except ImportError:
        return None
    return template_variables(scheduler)["pages"]


class Eau2Page(web.RequestHandler):
    """``GET /eau2``: the page, from a fresh look at the cluster."""

    def initialize(self, scheduler) -> None:
        self.scheduler = scheduler

    async def get(self) -> None:
        overview = _overviews.get(self.scheduler)
        if overview is None:
            raise web.HTTPError(404, reason="eau2 is not running on this scheduler")
        try:
            figures = await asyncio.wait_for(overview.fresh(), PAGE_SECONDS)
        except TimeoutError:
            figures = overview.latest
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(render(figures, self.scheduler))


def render(figures: Figures | None, scheduler) -> str:
    """The page's HTML: Dask's page frame (its navigation bar and styles) around eau2's tables."""
    if _dashboard(scheduler):
        from distributed.dashboard.scheduler import template_variables

        frame = template_variables(scheduler)
    else:
        frame = {"pages": [], "plots": [], "jupyter": False}
    return _TEMPLATES.get_template("eau2.html").render(
        **frame, **_page_variables(figures), refresh=REFRESH_SECONDS
    )


def _page_variables(figures: Figures | None) -> dict:
    if figures is None:
        return {"taken": None, "problem": "eau2 is still looking at the cluster", "nodes": [], "keys": []}
    nodes = [_node_row(node) for node in figures.nodes]
    answered = [node for node in figures.nodes if "memory_bytes" in node]
    local = sum(node["reads_local"] for node in answered)
    remote = sum(node["reads_remote"] for node in answered)
    frames = [key for key in figures.keys if key.kind == "frame"]
    live = sum(node["address"] is not None for node in figures.nodes)
    summary = [
        f"{live} of {_count(len(figures.nodes), 'node')} live",
        f"{_count(len(frames), 'frame')} and {_count(len(figures.keys) - len(frames), 'other value')}",
        f"{format_bytes(sum(n['memory_bytes'] for n in answered))} in memory, "
        f"{format_bytes(sum(n['spilled_bytes'] for n in answered))} spilled, "
        f"{format_bytes(sum(n['disk_bytes'] for n in answered))} on disk",
        f"{format_bytes(sum(n.get('view_cache_bytes', 0) for n in answered))} kept for dask partitions",
        f"chunk reads: {local:,} local, {remote:,} remote"
        + (f" ({100 * local / (local + remote):.0f}% local)" if local + remote else ""),
    ]
    return {
        "taken": time.strftime("%H:%M:%S", time.localtime(figures.taken)),
        "problem": figures.problem,
        "summary": summary,
        "nodes": nodes,
        "keys": [_key_row(key) for key in figures.keys],
    }


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _node_row(node: dict) -> dict:
    row = {"node": node["node"], "address": node["address"] or "", "name": node.get("name", "")}
    if node["address"] is None:
        return {**row, "state": "gone", "note": "its worker is gone"}
    if "error" in node:
        return {**row, "state": "silent", "note": f"did not answer: {node['error']}"}
    budget, memory = node["budget"], node["memory_bytes"]
    return {
        **row,
        "state": "live",
        "budget": "unbounded" if budget is None else format_bytes(budget),
        "memory": format_bytes(memory),
        "fill": None if not budget else min(100.0, 100 * memory / budget),
        "spilled": format_bytes(node["spilled_bytes"]),
        "disk": format_bytes(node["disk_bytes"]),
        "view_cache": format_bytes(node.get("view_cache_bytes", 0)),
        "held": f"{node['values']:,}",
        "local": f"{node['reads_local']:,}",
        "remote": f"{node['reads_remote']:,}",
        "kept": node["directory"] if node["durable"] else "memory (spills to local disk)",
    }


def _key_row(key: KeyInfo) -> dict:
    return {
        "name": key.key.name,
        "home": key.key.home,
        "kind": key.kind,
        "rows": "" if key.rows is None else f"{key.rows:,}",
        "chunks": f"{key.nchunks:,}" if key.kind == "frame" else "",
        "bytes": format_bytes(key.nbytes),
        "copies": key.copies,
        "replicas": key.replicas,
        "status": key.status,
    }


_PAGE_TEMPLATE = """{% extends "base.html" %}
{% block extra_resources %}
    <meta http-equiv="refresh" content="{{ refresh }}" />
    <style>
      .eau2 { font-size: 14px; color: #222; }
      .eau2 h1 { font-size: 22px; font-weight: normal; margin: 14px 0 4px 0; }
      .eau2 h2 { font-size: 17px; font-weight: normal; margin: 22px 0 6px 0; }
      .eau2 .summary { color: #555; margin: 0 0 4px 0; }
      .eau2 .summary span + span::before { content: " \\00b7  "; }
      .eau2 .problem { color: #a33; }
      .eau2 table { border-collapse: collapse; background: white; border: 1px solid #ddd; }
      .eau2 th { background: #EEE; font-weight: 600; text-align: left; padding: 6px 10px; }
      .eau2 td { padding: 5px 10px; border-top: 1px solid #eee; }
      .eau2 th, .eau2 td { white-space: nowrap; }
      .eau2 td.n, .eau2 th.n { text-align: right; font-variant-numeric: tabular-nums; }
      .eau2 .quiet { color: #888; font-size: 12px; }
      .eau2 .bar { width: 90px; height: 8px; background: #eee; display: inline-block; margin-left: 6px; }
      .eau2 .bar > div { height: 8px; background: rgba(31, 119, 180, 0.75); }
      .eau2 .status { padding: 1px 8px; border-radius: 9px; font-size: 12px; color: white; }
      .eau2 .ok { background: #4c9a4c; }
      .eau2 .degraded { background: rgb(234, 150, 80); }
      .eau2 .lost { background: #c0392b; }
      .eau2 .partial, .eau2 .unknown, .eau2 .gone, .eau2 .silent { background: #999; }
    </style>
{% endblock %}
{% block content %}
<div class="eau2">
  <h1>eau2</h1>
  {% if taken %}
  <p class="summary">{% for part in summary %}<span>{{ part }}</span>{% endfor %}</p>
  <p class="quiet">Figures taken at {{ taken }}; this page reloads every {{ refresh }} s.
    The same figures are on <a href="metrics">/metrics</a> (<code>eau2_*</code>).</p>
  {% endif %}
  {% if problem %}<p class="problem">{{ problem }}</p>{% endif %}

  <h2>Nodes</h2>
  <table>
    <tr><th class="n">Node</th><th>Worker</th><th class="n">Budget</th><th class="n">In memory</th>
      <th class="n">Spilled</th><th class="n">On disk</th><th class="n">Kept for dask</th>
      <th class="n">Values</th>
      <th class="n">Reads local</th><th class="n">Reads remote</th><th>Values kept in</th></tr>
    {% for node in nodes %}
    <tr>
      <td class="n">{{ node.node }}</td>
      <td>{{ node.name }} <span class="quiet">{{ node.address }}</span></td>
      {% if node.state == "live" %}
      <td class="n">{{ node.budget }}</td>
      <td class="n">{{ node.memory }}{% if node.fill is not none -%}
        <span class="bar" title="{{ '%.0f'|format(node.fill) }}% of the budget">
          <div style="width: {{ '%.1f'|format(node.fill) }}%"></div></span>
      {%- endif %}</td>
      <td class="n">{{ node.spilled }}</td>
      <td class="n">{{ node.disk }}</td>
      <td class="n">{{ node.view_cache }}</td>
      <td class="n">{{ node.held }}</td>
      <td class="n">{{ node.local }}</td>
      <td class="n">{{ node.remote }}</td>
      <td>{{ node.kept }}</td>
      {% else %}
      <td colspan="9"><span class="status {{ node.state }}">{{ node.state }}</span> {{ node.note }}</td>
      {% endif %}
    </tr>
    {% endfor %}
  </table>

  <h2>Keys</h2>
  {% if keys %}
  <table>
    <tr><th>Key</th><th class="n">Home</th><th>Kind</th><th class="n">Rows</th><th class="n">Chunks</th>
      <th class="n">Bytes</th><th class="n">Copies</th><th>Status</th></tr>
    {% for key in keys %}
    <tr>
      <td>{{ key.name }}</td>
      <td class="n">{{ key.home }}</td>
      <td>{{ key.kind }}</td>
      <td class="n">{{ key.rows }}</td>
      <td class="n">{{ key.chunks }}</td>
      <td class="n">{{ key.bytes }}</td>
      <td class="n">{{ key.copies }} of {{ key.replicas }}</td>
      <td><span class="status {{ key.status }}">{{ key.status }}</span></td>
    </tr>
    {% endfor %}
  </table>
  {% else %}
  <p class="quiet">No keys stored.</p>
  {% endif %}
</div>
{% endblock %}
"""

_TEMPLATES = Environment(
    loader=ChoiceLoader(
        [
            DictLoader({"eau2.html": _PAGE_TEMPLATE}),
            FileSystemLoader(Path(distributed.__file__).parent / "http" / "templates"),
        ]
    ),
    autoescape=True,
)
"""Dask's own ``base.html`` (its navigation bar) around eau2's page."""
