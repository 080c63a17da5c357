"""Helpers for tests that start Dask clusters: they close them and leave no process behind."""

from __future__ import annotations

import time

import psutil

# Helpers multiprocessing starts once and keeps for the life of this process: not leaks.
_LIFELONG = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True) if not _lifelong(child)}


def _lifelong(process: psutil.Process) -> bool:
    try:
        return any(helper in " ".join(process.cmdline()) for helper in _LIFELONG)
    except psutil.Error:
        return False


def assert_no_new_processes(before: set[int], grace: float = 15) -> None:
    """Fail if processes started since `before` are still alive after `grace` seconds."""
    deadline = time.monotonic() + grace
    while True:
        alive = [pid for pid in children() - before if psutil.pid_exists(pid) and _running(pid)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind: {alive}")
        time.sleep(0.2)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
