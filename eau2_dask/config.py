"""eau2's settings in Dask's configuration, under ``eau2.*`` (defaults in eau2.yaml)."""

from __future__ import annotations

from pathlib import Path

import dask.config
import yaml
from dask.utils import parse_bytes, parse_timedelta

with open(Path(__file__).with_name("eau2.yaml")) as defaults:
    dask.config.update_defaults(yaml.safe_load(defaults))


def get(name: str):
    """The setting ``eau2.<name>``."""
    return dask.config.get(f"eau2.{name}")


def byte_setting(name: str) -> int:
    return parse_bytes(get(name))


def budget_bytes(budget: str | int | None, memory_limit: int | None) -> int | None:
    """A node's budget in bytes: `budget` ("4GB", "40%", bytes) or the ``eau2.budget`` setting.

    A share needs the worker's memory limit; without one there is no budget.
    """
    return _bytes_or_share("budget", get("budget") if budget is None else budget, memory_limit)


def view_cache_bytes(memory_limit: int | None) -> int:
    """Bytes of converted columns a node keeps for dask partitions (``eau2.view-cache``);
    a share of a worker without a memory limit is a share of 8 GiB."""
    return _bytes_or_share("view-cache", get("view-cache"), memory_limit or 8 << 30, allow_zero=True)


def _bytes_or_share(name: str, setting, memory_limit: int | None, allow_zero: bool = False) -> int | None:
    try:
        if isinstance(setting, str) and setting.strip().endswith("%"):
            share = float(setting.strip()[:-1])
            if not 0 <= share <= 100 or (share == 0 and not allow_zero):
                raise ValueError
            return int(memory_limit * share / 100) if memory_limit else None
        size = parse_bytes(setting)
        if size < 0:
            raise ValueError
        return size
    except (ValueError, TypeError, AttributeError):  # parse_bytes(None) is an AttributeError
        raise ValueError(
            f'the eau2 {name} {setting!r} is neither a size ("4GB") nor a share of the '
            f'worker\'s memory limit ("40%")'
        ) from None


def seconds_setting(name: str) -> float:
    return parse_timedelta(get(name), default="seconds")
