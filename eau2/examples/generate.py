"""Synthetic inputs at full size: a Linus extract of the 2020 shape, and Zipf-distributed text.

Both are reproducible from a seed and written by compiled formatting kernels, in pieces,
so memory stays small whatever the size.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba as nb
import numpy as np

from eau2.examples.linus import LINUS

FULL_SIZE = {"projects": 125_486_231, "users": 32_411_734, "commits": 117_936_711}
"""Rows of the whole 2020 extract."""

_PIECE_ROWS = 2_000_000
_LINUS_RANK = 10  # Linus is the 11th most active user
_HEAVY_TAIL = 3.0  # ranks are N * u**3: a tenth of the draws fall in the top 0.1 %

_jit = nb.njit(cache=True, nogil=True)


@_jit
def _put_int(buf, pos, value):
    if value == 0:
        buf[pos] = 48
        return pos + 1
    digits = 0
    v = value
    while v > 0:
        digits += 1
        v //= 10
    end = pos + digits
    while value > 0:
        end -= 1
        buf[end] = 48 + value % 10
        value //= 10
    return pos + digits


@_jit
def _put(buf, pos, text):
    for c in text:
        buf[pos] = c
        pos += 1
    return pos


@_jit
def _format_ints(columns):
    """Lines ``<a><b>...`` of the non-negative int rows of `columns` (shape: fields x rows)."""
    fields, rows = columns.shape
    buf = np.empty(rows * fields * 22 + rows, np.uint8)
    pos = 0
    for r in range(rows):
        for f in range(fields):
            buf[pos] = 60
            pos = _put_int(buf, pos + 1, columns[f, r])
            buf[pos] = 62
            pos += 1
        buf[pos] = 10
        pos += 1
    return buf[:pos]


@_jit
def _format_named(ids, owners, with_owner):
    """Lines ``<id><"u{id}">`` (users) or ``<id><"u{owner}/p{id}">`` (projects)."""
    buf = np.empty(len(ids) * 60, np.uint8)
    pos = 0
    for r in range(len(ids)):
        buf[pos] = 60
        pos = _put_int(buf, pos + 1, ids[r])
        pos = _put(buf, pos, np.array([62, 60, 34, 117], np.uint8))  # ><"u
        if with_owner:
            pos = _put_int(buf, pos, owners[r])
            pos = _put(buf, pos, np.array([47, 112], np.uint8))  # /p
        pos = _put_int(buf, pos, ids[r])
        pos = _put(buf, pos, np.array([34, 62, 10], np.uint8))  # ">\n
    return buf[:pos]


@_jit
def _format_words(vocabulary, offsets, ranks, words_per_line):
    """The words of `ranks`, separated by spaces, `words_per_line` to a line."""
    size = 0
    for r in ranks:
        size += offsets[r + 1] - offsets[r] + 1
    buf = np.empty(size, np.uint8)
    pos = 0
    for i in range(len(ranks)):
        r = ranks[i]
        for k in range(offsets[r], offsets[r + 1]):
            buf[pos] = vocabulary[k]
            pos += 1
        buf[pos] = 10 if (i + 1) % words_per_line == 0 else 32
        pos += 1
    return buf


class _HeavyTailedIds:
    """Ids 0..n-1 drawn so that a few are very common, scattered over the id range by a
    fixed bijection (and with `pinned` given to rank `pinned_rank`, if it is an id)."""

    def __init__(self, n: int, pinned: int | None = None, pinned_rank: int = 0):
        self.n = n
        self.step = next(
            a for a in range(2_654_435_761 % n or 1, 2_654_435_761 % n + n + 2) if math.gcd(a, n) == 1
        )
        self.offset = 12345 % n
        self.pinned = pinned if pinned is not None and pinned < n else None
        self.pinned_rank = min(pinned_rank, n - 1)

    def of_ranks(self, ranks: np.ndarray) -> np.ndarray:
        ids = (ranks * self.step + self.offset) % self.n
        if self.pinned is not None:
            displaced = (self.pinned_rank * self.step + self.offset) % self.n
            ids[ranks == self.pinned_rank] = self.pinned
            ids[(ids == self.pinned) & (ranks != self.pinned_rank)] = displaced
        return ids

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        ranks = np.minimum((self.n * rng.random(count) ** _HEAVY_TAIL).astype(np.int64), self.n - 1)
        return self.of_ranks(ranks)


def generate_linus(out: str | os.PathLike, scale: float = 1.0, seed: int = 0, progress: bool = False) -> dict:
    """Write projects.ltgt, users.ltgt and commits.ltgt to `out` at `scale` of the 2020 size.

    Ids equal line numbers; project sizes and user activity are heavy-tailed; Linus
    (user 4967) is among the most active users. Returns the rows written per file.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {name: max(1, round(count * scale)) for name, count in FULL_SIZE.items()}
    rows["users"] = max(rows["users"], LINUS + 1)
    rng = np.random.default_rng(seed)
    users = _HeavyTailedIds(rows["users"], pinned=LINUS, pinned_rank=_LINUS_RANK)
    projects = _HeavyTailedIds(rows["projects"])
    report = _Progress(sum(rows.values()), progress)

    def users_piece(start: int, stop: int) -> np.ndarray:
        ids = np.arange(start, stop, dtype=np.int64)
        return _format_named(ids, ids, False)

    def projects_piece(start: int, stop: int) -> np.ndarray:
        return _format_named(np.arange(start, stop, dtype=np.int64), users.draw(rng, stop - start), True)

    def commits_piece(start: int, stop: int) -> np.ndarray:
        count = stop - start
        authors = users.draw(rng, count)
        committers = np.where(rng.random(count) < 0.8, authors, users.draw(rng, count))
        return _format_ints(np.stack([projects.draw(rng, count), authors, committers]))

    for name, piece in (("users", users_piece), ("projects", projects_piece), ("commits", commits_piece)):
        _write(out / f"{name}.ltgt", rows[name], piece, report)
    report.done()
    return rows


def generate_text(
    out: str | os.PathLike,
    size: int,
    seed: int = 0,
    vocabulary: int = 200_000,
    exponent: float = 1.1,
    progress: bool = False,
) -> int:
    """Write about `size` bytes of words drawn from a Zipf law over `vocabulary` words."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 13, vocabulary)
    letters = rng.integers(97, 123, int(lengths.sum()), dtype=np.uint8)
    offsets = np.zeros(vocabulary + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    weights = 1.0 / np.arange(1, vocabulary + 1) ** exponent
    mean_word = float((weights / weights.sum() * (lengths + 1)).sum())
    words = int(size / mean_word)
    report = _Progress(words, progress)
    # Ranks by inverting the continuous Zipf law's distribution function: no search per word.
    top = vocabulary ** (1 - exponent) - 1

    def piece(start: int, stop: int) -> np.ndarray:
        ranks = (top * rng.random(stop - start) + 1) ** (1 / (1 - exponent))
        ranks = np.minimum(ranks.astype(np.int64) - 1, vocabulary - 1)
        return _format_words(letters, offsets, ranks, 12)

    written = _write(Path(out), words, piece, report)
    report.done()
    return written


def _write(path: Path, rows: int, piece: Callable[[int, int], np.ndarray], report: _Progress) -> int:
    written = 0
    with open(path, "wb") as sink:
        for start in range(0, rows, _PIECE_ROWS):
            stop = min(rows, start + _PIECE_ROWS)
            data = piece(start, stop)
            sink.write(memoryview(data))
            written += len(data)
            report.advance(stop - start, len(data))
    return written


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.done_rows, self.bytes, self.started = 0, 0, time.monotonic()

    def advance(self, rows: int, nbytes: int) -> None:
        self.done_rows += rows
        self.bytes += nbytes
        if self.enabled:
            rate = self.bytes / 1e6 / max(time.monotonic() - self.started, 1e-9)
            share = 100 * self.done_rows / self.total
            print(f"\reau2: {share:5.1f} % written, {rate:6.0f} MB/s", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
