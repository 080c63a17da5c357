"""Arguments users pass to the store, checked once with a message that says what is wanted."""

from __future__ import annotations

import math


def check_replicas(replicas) -> int:
    """`replicas` if it is a whole number >= 1; a clear error otherwise."""
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise TypeError(f"replicas is a whole number >= 1, not {replicas!r}")
    if replicas < 1:
        raise ValueError(f"replicas is a whole number >= 1, not {replicas}")
    return replicas


def check_timeout(timeout) -> float | None:
    """`timeout` if it is None or a number of seconds >= 0; a clear error otherwise."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"a timeout is a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"a timeout is a number of seconds >= 0 or None, not {timeout}")
    return None if math.isinf(timeout) else float(timeout)
