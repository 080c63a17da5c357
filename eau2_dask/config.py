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
    budget = get("budget") if budget is None else budget
    if isinstance(budget, str) and budget.strip().endswith("%"):
        if not memory_limit:
            return None
        return int(memory_limit * float(budget.strip()[:-1]) / 100)
    return parse_bytes(budget)


def seconds_setting(name: str) -> float:
    return parse_timedelta(get(name), default="seconds")
