"""Waiting for a key to be put: woken by the put itself, by a timeout, or by a cancelled run."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from eau2.errors import RunCancelled
from eau2.store.key import Key
from eau2.store.node import NodeStore


class Cancellation:
    """Wakes every wait registered with it, at once, when a run is cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._wakers: list[Callable[[], None]] = []

    def register(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake()` on cancellation; returns a function that unregisters it."""
        with self._lock:
            self.check()
            self._wakers.append(wake)

        def unregister() -> None:
            with self._lock:
                if wake in self._wakers:
                    self._wakers.remove(wake)

        return unregister

    def cancel(self, reason: str) -> None:
        with self._lock:
            self._reason = reason
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    @property
    def cancelled(self) -> bool:
        return self._reason is not None

    def check(self) -> None:
        """`RunCancelled` if the run was cancelled."""
        if self._reason is not None:
            raise RunCancelled(self._reason)


RUNS_KEPT = 1024
"""Runs a node keeps a record of (the most recent): enough for every run under way."""

RUN_ID_CHARS = 64
"""The longest run id a node accepts."""


class Runs:
    """The runs a node has seen, by id: each one's `Cancellation`, and the writes its rank
    on this node made (for the run to take back if it fails). At most `RUNS_KEPT`
    records, the least recently used dropped first, cancelled runs' last: a record outlives
    its rank, so that a cancelled run's puts from other nodes are still refused here."""

    def __init__(self, kept: int = RUNS_KEPT) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._records: OrderedDict[str, tuple[Cancellation, list]] = OrderedDict()

    def cancellation(self, run_id: str) -> Cancellation:
        return self._record(run_id)[0]

    def wrote(self, run_id: str, write) -> None:
        """Note a write of the run's rank here (what it is is the caller's: a key, a tag)."""
        self._record(run_id)[1].append(write)

    def forget_writes(self, run_id: str) -> None:
        """Let go of the writes noted for `run_id` (it finished: none is taken back)."""
        with self._lock:
            record = self._records.get(run_id)
            if record is not None:
                record[1].clear()

    def writes(self, run_id: str) -> list:
        """The writes noted for `run_id` (none for a run this node has no record of)."""
        with self._lock:
            record = self._records.get(run_id)
            return [] if record is None else list(record[1])

    def _least_needed(self, keep: str) -> str:
        """The run whose record goes first, other than `keep`: the least recently used that
        was not cancelled (a cancelled run's record is what refuses its late puts), else
        the least recently used."""
        others = [run for run in self._records if run != keep]
        return next((run for run in others if not self._records[run][0].cancelled), others[0])

    def _record(self, run_id: str) -> tuple[Cancellation, list]:
        if not isinstance(run_id, str) or not 0 < len(run_id) <= RUN_ID_CHARS:
            raise ValueError(f"a run id is a string of 1 to {RUN_ID_CHARS} characters, not {run_id!r}")
        with self._lock:
            record = self._records.get(run_id)
            if record is None:
                record = self._records[run_id] = (Cancellation(), [])
                if len(self._records) > self._kept:
                    self._records.pop(self._least_needed(keep=run_id))
            else:
                self._records.move_to_end(run_id)
            return record


def wait_for(store: NodeStore, key: Key, timeout: float | None, cancellation: Cancellation | None = None):
    """The value under `key` in `store`, blocking this thread until it is put (or timeout, or cancel)."""
    event = threading.Event()
    unregister = cancellation.register(event.set) if cancellation else (lambda: None)
    stop_waiting = store.when_put(key, event.set)
    try:
        event.wait(timeout)
    finally:
        stop_waiting()
        unregister()
    if key in store:
        return store.get(key)
    if cancellation:
        cancellation.check()
    raise TimeoutError(f"key {key.name!r} was not put within {timeout} s")
