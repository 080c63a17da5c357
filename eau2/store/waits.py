"""Waiting for a key to be put: woken by the put itself, by a timeout, or by a cancelled run."""

from __future__ import annotations

import threading
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

    def check(self) -> None:
        """`RunCancelled` if the run was cancelled."""
        if self._reason is not None:
            raise RunCancelled(self._reason)


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
