"""Helpers for tests that run the installed `eau2` command as a process and signal it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

EAU2 = shutil.which("eau2")
"""The installed command (None where it is not installed: such tests skip)."""


def start(*arguments: str) -> subprocess.Popen:
    """The `eau2` command in a session of its own: a signal to its group is what a
    terminal's Ctrl-C (or ``timeout``, or a closed terminal) sends."""
    return subprocess.Popen(
        [EAU2, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def end(command: subprocess.Popen, number: int) -> tuple[float, str]:
    """Send signal `number` to every process of the command; seconds until it ended, its errors."""
    sent = time.monotonic()
    os.killpg(command.pid, number)
    _, err = command.communicate(timeout=30)
    return time.monotonic() - sent, err


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)
