"""Compiled SoR kernels: scan fields, classify and convert values in one pass over raw bytes.

Everything here works on a ``uint8`` array of whole lines and writes into arrays the
caller allocates, so the results become Arrow buffers without copies. Type codes are
``ColumnType.code``: BOOL 0, INT 1, FLOAT 2, STRING 3; ``MISSING`` marks an empty field.

The first read after an install compiles these functions with numba, which caches them
for later processes, so they are written to compile quickly: helpers are compiled once
each, not inlined into every caller; each entry point has one signature, whatever kind of
array it is given; and only the entry points a process calls are compiled. Until then, an
entry point runs its Python source on small inputs, up to `INTERPRETED_BYTES` in all: for
a small file that is quicker than compiling the kernel, or even than loading it from the
cache. Both ways give the same results (``tests/test_sor_kernel.py``). numba is imported
only to compile.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np

BOOL, INT, FLOAT, STRING = 0, 1, 2, 3
MISSING = -1

# Why a line is not a row (codes stored in the dropped-line report).
OK = 0
TEXT_OUTSIDE_FIELD = 1
UNTERMINATED_FIELD = 2
BAD_VALUE = 3
NOT_UTF8 = 4
TOO_MANY_FIELDS = 5
DOES_NOT_FIT = 6

# Why `parse` stopped.
DONE = 0
FULL = 1
LINE_TOO_LONG = 2

INTERPRETED_BYTES = 256 << 10
"""Input bytes a process gives the entry points' Python source (a few tenths of a second's
work) before it compiles them or loads them from numba's cache: a process's first small
reads need no compiled code; past this, or for a larger input, the kernel is compiled."""

_NL, _LT, _GT, _QUOTE = 10, 60, 62, 34
_PLUS, _MINUS, _DOT, _ZERO = 43, 45, 46, 48
_MAX_SIGNIFICANT = 19  # decimal digits that always fit in a uint64
_EXACT_MANTISSA = 1 << 53
_INT64_MAX = (1 << 63) - 1
_POW10 = np.array([10.0**k for k in range(23)])  # every one exact in binary64

# The code below is numba's subset of Python, and runs as plain Python too: there `buf` is
# `bytes` (its items Python ints, as numba's are int64), and uint64 arithmetic wraps around
# as numba's does, without numpy's overflow warnings.

_HELPERS: list[Callable] = []
_interpreted = 0
_lock = threading.Lock()


def _helper(function: Callable) -> Callable:
    """A function the entry points call: compiled into them, or run as Python with them."""
    _HELPERS.append(function)
    return function


def _signatures(t) -> dict[str, tuple]:
    """The one signature of each entry point, in numba's types `t`. Arrays a function only
    reads are typed read-only, so that writable ones convert to them rather than compile
    another version; C-contiguous, as `as_bytes_array` and the parse buffers are."""
    i1, i4, i8, u1, f8 = t.int8, t.int32, t.int64, t.uint8, t.float64

    def array(dtype, ndim: int = 1, readonly: bool = False, layout: str = "C"):
        return t.Array(dtype, ndim, layout, readonly=readonly)

    text = array(u1, readonly=True)
    return {
        "count_lines": (text,),
        "first_newline": (text,),
        "last_line_end": (text,),
        "classify_text": (text,),
        "infer_types": (text, i8, i8),
        "parse": (
            *(text, i8, i8, i8, i8),  # buf, i, row, lines, n_dropped
            *(array(i8, 2), i8),  # slow, n_slow
            *(array(i1, readonly=True), array(i8, readonly=True)),  # types, slots
            *(array(i8, 2), array(f8, 2), array(u1, 2), array(u1, 2)),  # ints, floats, bools, valid
            *(array(i4, 2), array(i4, 2), array(u1)),  # str_offsets, str_starts, arena
            *(array(i8, 2), i8),  # dropped, max_line_bytes
        ),
        "gather_strings": (
            *(array(u1, readonly=True), array(i4, 2, readonly=True)),  # arena, str_offsets
            *(array(i4, 2, readonly=True), i8),  # str_starts, rows
        ),
        "gather": (  # buf, starts, lengths (columns of `parse`'s slow queue), offsets
            *(text, array(i8, readonly=True, layout="A"), array(i8, readonly=True, layout="A")),
            array(i8, readonly=True),
        ),
    }


class _EntryPoint:
    """An entry point of the kernel (a decorator), called with its input bytes first:
    compiled on first use, unless the input is small enough to run its Python source."""

    def __init__(self, function: Callable):
        functools.update_wrapper(self, function)
        self._python = function
        self._compiled: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, buf, *args):
        compiled = self._compiled
        if compiled is None:
            if _interpret(len(buf)):
                with np.errstate(over="ignore"):
                    return self._python(bytes(buf), *args)
            compiled = self.compiled()
        return compiled(buf, *args)

    def compiled(self) -> Callable:
        """The compiled function (compiling it, or loading it from numba's cache, once)."""
        with self._lock:
            if self._compiled is None:
                numba = _numba()
                signature = _signatures(numba.types)[self.__name__]
                options = {"cache": True, "nogil": True, "no_cfunc_wrapper": True}
                self._compiled = numba.njit([signature], **options)(self._python)
            return self._compiled


def _numba():
    """numba, with the helpers registered (once) for the compiled entry points to call."""
    import numba
    from numba.extending import register_jitable

    with _lock:
        while _HELPERS:  # only ever called from compiled code: no wrappers to call them otherwise
            register_jitable(no_cpython_wrapper=True, no_cfunc_wrapper=True)(_HELPERS.pop())
    return numba


def _interpret(size: int) -> bool:
    """Whether to run an entry point's Python source on `size` input bytes (counted if so)."""
    global _interpreted
    with _lock:
        if _interpreted + size > INTERPRETED_BYTES:
            return False
        _interpreted += size
        return True


@_helper
def _is_space(c):
    return c <= 32 and (c == 32 or (9 <= c <= 13 and c != _NL))


@_helper
def _is_digit(c):
    return 48 <= c <= 57


@_helper
def _skip_spaces(buf, i, end):
    while i < end and _is_space(buf[i]):
        i += 1
    return i


@_EntryPoint
def count_lines(buf):
    """Number of lines in `buf`: its newlines, plus one for a last line without one."""
    n = 0
    for c in buf:
        if c == _NL:
            n += 1
    if len(buf) > 0 and buf[len(buf) - 1] != _NL:
        n += 1
    return n


@_EntryPoint
def first_newline(buf):
    """Offset of the first newline in `buf`, or -1."""
    for i in range(len(buf)):
        if buf[i] == _NL:
            return i
    return -1


@_EntryPoint
def last_line_end(buf):
    """Offset just past the last newline in `buf`, or 0 when it has none."""
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] == _NL:
            return i + 1
    return 0


@_helper
def _scan_field(buf, i, end):
    """Scan the field whose ``<`` is at `i`, in one pass.

    Returns ``(status, value_start, value_end, quoted, next_offset, ascii)``: the value is
    the trimmed text inside the brackets (inside the quotes for a quoted string), and
    `ascii` tells that it has no byte above 0x7F, so it needs no UTF-8 check.
    """
    i = _skip_spaces(buf, i + 1, end)
    high = 0
    if i < end and buf[i] == _QUOTE:
        start = i + 1
        j = start
        while j < end:
            c = buf[j]
            if c == _QUOTE or c == _NL:
                break
            high |= c
            j += 1
        if j >= end or buf[j] == _NL:
            return UNTERMINATED_FIELD, 0, 0, True, j, True
        stop = j
        j = _skip_spaces(buf, j + 1, end)
        if j >= end or buf[j] == _NL:
            return UNTERMINATED_FIELD, 0, 0, True, j, True
        if buf[j] != _GT:
            return BAD_VALUE, 0, 0, True, j, True
        return OK, start, stop, True, j + 1, high < 0x80
    start = i
    j = i
    low = 255
    while j < end:
        c = buf[j]
        if c == _GT or c == _NL:
            break
        high |= c
        low = min(low, c)
        j += 1
    if j >= end or buf[j] == _NL:
        return UNTERMINATED_FIELD, 0, 0, False, j, True
    stop = j
    if low <= 32:  # whitespace may be inside: trim the end, refuse any left inside
        while stop > start and _is_space(buf[stop - 1]):
            stop -= 1
        for k in range(start, stop):
            if _is_space(buf[k]):
                return BAD_VALUE, 0, 0, False, j + 1, True
    return OK, start, stop, False, j + 1, high < 0x80


@_helper
def _scan_number(buf, p, e):
    s = p
    negative = False
    c = buf[p]
    if c == _PLUS or c == _MINUS:
        negative = c == _MINUS
        p += 1
    mantissa = np.uint64(0)
    d0 = p
    while p < e:
        d = np.uint64(buf[p]) - np.uint64(_ZERO)
        if d > np.uint64(9):
            break
        mantissa = mantissa * np.uint64(10) + d
        p += 1
    n_int = p - d0
    has_dot = p < e and buf[p] == _DOT
    n_frac = 0
    if has_dot:
        p += 1
        f0 = p
        while p < e:
            d = np.uint64(buf[p]) - np.uint64(_ZERO)
            if d > np.uint64(9):
                break
            mantissa = mantissa * np.uint64(10) + d
            p += 1
        n_frac = p - f0
    if n_int + n_frac > 18:
        return _scan_number_careful(buf, s, e)
    if n_int + n_frac == 0:
        return STRING, np.int64(0), 0.0, False, p
    has_exponent = p < e and (buf[p] == 101 or buf[p] == 69)
    if has_exponent:
        return _scan_number_careful(buf, s, e)
    m = np.int64(mantissa)
    if not has_dot:
        if negative:
            return INT, -m, -np.float64(m), True, p
        if p - s == 1 and m <= 1:
            return BOOL, m, np.float64(m), True, p
        return INT, m, np.float64(m), True, p
    value = np.float64(m)
    if n_frac > 0:
        value = value / _POW10[n_frac]
    if negative:
        value = -value
    return FLOAT, np.int64(0), value, m <= _EXACT_MANTISSA, p


@_helper
def _scan_number_careful(buf, p, e):
    """Read the longest BOOL, INT or FLOAT literal that starts at `p` (and ends by `e`).

    Returns ``(type, int_value, float_value, float_is_exact, next_offset)``; the type is
    STRING when no number starts at `p`. A float is exact when the fast path (mantissa
    at most 2**53, power of ten at most 22) applies; otherwise the caller converts the
    text with a correctly rounding parser.
    """
    s = p
    negative = False
    if buf[p] == _PLUS or buf[p] == _MINUS:
        negative = buf[p] == _MINUS
        p += 1
    mantissa = np.uint64(0)
    significant = 0
    lost_digits = False
    n_digits = 0
    scale = 0  # fraction digits folded into the mantissa
    while p < e and _is_digit(buf[p]):
        d = np.uint64(buf[p]) - np.uint64(_ZERO)
        if significant < _MAX_SIGNIFICANT:
            mantissa = mantissa * np.uint64(10) + d
            if mantissa != np.uint64(0):
                significant += 1
        else:
            lost_digits = True
        n_digits += 1
        p += 1
    has_dot = p < e and buf[p] == _DOT
    if has_dot:
        p += 1
        while p < e and _is_digit(buf[p]):
            d = np.uint64(buf[p]) - np.uint64(_ZERO)
            if significant < _MAX_SIGNIFICANT:
                mantissa = mantissa * np.uint64(10) + d
                if mantissa != np.uint64(0):
                    significant += 1
                scale += 1
            elif d != 0:
                lost_digits = True
            n_digits += 1
            p += 1
    if n_digits == 0:
        return STRING, np.int64(0), 0.0, False, p
    exponent = 0
    has_exponent = p < e and (buf[p] == 101 or buf[p] == 69)  # e, E
    if has_exponent:
        p += 1
        exponent_negative = False
        if p < e and (buf[p] == _PLUS or buf[p] == _MINUS):
            exponent_negative = buf[p] == _MINUS
            p += 1
        if p >= e or not _is_digit(buf[p]):
            return STRING, np.int64(0), 0.0, False, p
        while p < e and _is_digit(buf[p]):
            if exponent < 100000:
                exponent = exponent * 10 + (buf[p] - _ZERO)
            p += 1
        if exponent_negative:
            exponent = -exponent
    exact = not lost_digits and mantissa <= np.uint64(_EXACT_MANTISSA)
    value = np.float64(mantissa)
    power = exponent - scale
    if mantissa == np.uint64(0) and not lost_digits:
        value = 0.0
    elif exact and 0 <= power <= 22:
        value = value * _POW10[power]
    elif exact and -22 <= power < 0:
        value = value / _POW10[-power]
    else:
        exact = False
    if negative:
        value = -value

    if has_dot or has_exponent:
        return FLOAT, np.int64(0), value, exact, p
    if lost_digits or mantissa > np.uint64(_INT64_MAX) + np.uint64(negative):
        return FLOAT, np.int64(0), value, False, p  # does not fit in 64 bits
    if negative:
        return INT, -np.int64(mantissa - np.uint64(1)) - np.int64(1), value, exact, p
    if p - s == 1 and mantissa <= np.uint64(1):
        return BOOL, np.int64(mantissa), value, True, p
    return INT, np.int64(mantissa), value, exact, p


@_helper
def _classify(buf, s, e):
    """Type and value of the unquoted, non-empty literal ``buf[s:e]`` (see `_scan_number`)."""
    kind, int_value, float_value, exact, p = _scan_number(buf, s, e)
    if p != e:
        return STRING, np.int64(0), 0.0, False
    return kind, int_value, float_value, exact


@_helper
def _is_utf8(buf, s, e):
    """Whether ``buf[s:e]`` is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)."""
    i = s
    while i < e:
        c = buf[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            n, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
            n, lo, hi = 2, 0x80, 0xBF
        elif c == 0xED:
            n, lo, hi = 2, 0x80, 0x9F
        elif c == 0xF0:
            n, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            n, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            n, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if i + n >= e:
            return False
        if not lo <= buf[i + 1] <= hi:
            return False
        for k in range(i + 2, i + 1 + n):
            if not 0x80 <= buf[k] <= 0xBF:
                return False
        i += 1 + n
    return True


@_EntryPoint
def infer_types(buf, max_lines, max_columns):
    """Column types of the rows among the first `max_lines` lines of `buf`.

    Returns ``(types, lines_read, wide_line)``: one code per column, MISSING for a column
    with no value, over the rows only (lines that are not rows are ignored). A row with
    more than `max_columns` fields stops the scan: `wide_line` is its number (else 0).
    Memory is bounded by `max_columns`, whatever the lines hold.
    """
    end = len(buf)
    capacity = min(end // 2 + 1, max_columns)
    types = np.empty(capacity, np.int8)
    for c in range(capacity):
        types[c] = MISSING
    line_types = np.empty(capacity, np.int8)
    n_columns = 0
    lines = 0
    i = 0
    while i < end and lines < max_lines:
        lines += 1
        col = 0
        status = OK
        while True:
            i = _skip_spaces(buf, i, end)
            if i >= end or buf[i] == _NL:
                break
            if buf[i] != _LT:
                status = TEXT_OUTSIDE_FIELD
                break
            # Read as for a BOOL column: a value that does not fit it still has its type.
            status, kind, _, _, _, s, e, i = _read_value(buf, i, end, BOOL)
            if status == DOES_NOT_FIT:
                status = OK
            if status != OK:
                break
            if kind == STRING and not _is_utf8(buf, s, e):
                status = NOT_UTF8
                break
            if col < capacity:
                line_types[col] = kind
            col += 1
        while i < end and buf[i] != _NL:
            i += 1
        i += 1
        if status != OK:
            continue
        if col > max_columns:
            return types[:n_columns].copy(), lines, lines
        for c in range(col):
            if line_types[c] > types[c]:
                types[c] = line_types[c]
        n_columns = max(n_columns, col)
    return types[:n_columns].copy(), lines, 0


@_helper
def _read_value(buf, lt, end, column_type):
    """Read the field whose ``<`` is at `lt` as a value of `column_type`.

    Returns ``(status, kind, int_value, float_value, exact, start, stop, next_offset)``,
    where kind is MISSING for an empty field. Numbers are read straight after the
    ``<``; anything else goes through the general field scanner.
    """
    i = _skip_spaces(buf, lt + 1, end)
    if column_type != STRING and i < end and buf[i] != _QUOTE:
        kind, int_value, float_value, exact, p = _scan_number(buf, i, end)
        if kind != STRING:
            q = _skip_spaces(buf, p, end)
            if q < end and buf[q] == _GT:
                if kind > column_type:
                    return DOES_NOT_FIT, kind, int_value, float_value, exact, i, p, q + 1
                return OK, kind, int_value, float_value, exact, i, p, q + 1
    status, s, e, quoted, next_offset, ascii = _scan_field(buf, lt, end)
    if status != OK:
        return status, STRING, np.int64(0), 0.0, False, s, e, next_offset
    if e == s and not quoted:
        return OK, MISSING, np.int64(0), 0.0, False, s, e, next_offset
    if column_type != STRING:
        return DOES_NOT_FIT, STRING, np.int64(0), 0.0, False, s, e, next_offset
    if not ascii and not _is_utf8(buf, s, e):
        return NOT_UTF8, STRING, np.int64(0), 0.0, False, s, e, next_offset
    return OK, STRING, np.int64(0), 0.0, False, s, e, next_offset


@_helper
def _queue_slow(slow, n_slow, slot, row, start, stop):
    """Append a float to convert exactly later, growing the queue when full; returns the queue."""
    if n_slow == len(slow):
        grown = np.empty((2 * len(slow), 4), np.int64)
        for r in range(n_slow):
            for k in range(4):
                grown[r, k] = slow[r, k]
        slow = grown
    slow[n_slow, 0] = slot
    slow[n_slow, 1] = row
    slow[n_slow, 2] = start
    slow[n_slow, 3] = stop
    return slow


@_EntryPoint
def parse(
    buf,
    i,
    row,
    lines,
    n_dropped,
    slow,
    n_slow,
    types,
    slots,
    ints,
    floats,
    bools,
    valid,
    str_offsets,
    str_starts,
    arena,
    dropped,
    max_line_bytes,
):
    """Parse the whole lines of `buf` from offset `i` into rows of the given column types.

    `slots[c]` is column c's row in the output array of its type: `ints`, `floats`,
    `bools`, or, for strings, Arrow's `str_offsets` (set up to row `row`): the strings of
    every column go into `arena` in the order they are read, `str_starts` telling where
    each begins, for `gather_strings` to sort them out by column (so that strings never
    need more room than the block's size, however many string columns there are);
    `valid[c, r]` is 0 for a missing value. The first ``len(dropped)`` dropped lines go
    into `dropped` as ``(line, reason, column)``; `slow` queues ``(slot, row, start, end)``
    for floats to convert exactly. `row`, `lines`, `n_dropped` and `n_slow` are the
    counts so far, so that a parse can resume where it stopped.

    Returns ``(stop, i, row, lines, n_dropped, slow, n_slow)``: `stop` is DONE at the end
    of `buf`; FULL when the arrays have no room for another row (grow them and call
    again from `i`); LINE_TOO_LONG when a line has more than `max_line_bytes` bytes (`i`
    is where it starts and `lines` its number).
    """
    end = len(buf)
    n_columns = len(types)
    capacity = valid.shape[1]
    str_fill = np.empty(len(str_offsets), np.int64)
    arena_fill = 0
    for slot in range(len(str_offsets)):
        str_fill[slot] = str_offsets[slot, row]
        arena_fill += str_fill[slot]
    while i < end:
        if row == capacity:
            return FULL, i, row, lines, n_dropped, slow, n_slow
        lines += 1
        line_start = i
        col = 0
        status = OK
        slow_at_line_start = n_slow
        arena_at_line_start = arena_fill
        has_field = False
        while True:
            i = _skip_spaces(buf, i, end)
            if i >= end or buf[i] == _NL:
                break
            if buf[i] != _LT:
                status = TEXT_OUTSIDE_FIELD
                break
            if col >= n_columns:
                status = _scan_field(buf, i, end)[0]
                if status == OK:
                    status = TOO_MANY_FIELDS
                break
            column_type = types[col]
            slot = slots[col]
            has_field = True
            # Fast paths, written out here because this loop is the reader's whole cost: a
            # bare number right between the brackets, or a quoted ASCII string. Anything
            # else (whitespace, exponents, long mantissas, misfits) takes _read_value.
            if i + 1 < end and column_type != STRING:
                c = buf[i + 1]
                signed = c == _PLUS or c == _MINUS
                negative = c == _MINUS
                k = i + 2 if signed else i + 1
                digits_start = k
                mantissa = np.uint64(0)
                while k < end:
                    d = np.uint64(buf[k]) - np.uint64(_ZERO)
                    if d > np.uint64(9):
                        break
                    mantissa = mantissa * np.uint64(10) + d
                    k += 1
                n_int = k - digits_start
                if k < end and 0 < n_int <= 18 and buf[k] == _GT:
                    value = -np.int64(mantissa) if negative else np.int64(mantissa)
                    stored = True
                    if column_type == INT:
                        ints[slot, row] = value
                    elif column_type == FLOAT and mantissa <= np.uint64(_EXACT_MANTISSA):
                        as_float = np.float64(mantissa)
                        floats[slot, row] = -as_float if negative else as_float
                    elif column_type == BOOL and n_int == 1 and not signed and mantissa <= np.uint64(1):
                        bools[slot, row] = value
                    else:
                        stored = False
                    if stored:
                        valid[col, row] = 1
                        col += 1
                        i = k + 1
                        continue
                elif k < end and 0 < n_int <= 18 and buf[k] == _DOT and column_type == FLOAT:
                    k += 1
                    fraction_start = k
                    while k < end:
                        d = np.uint64(buf[k]) - np.uint64(_ZERO)
                        if d > np.uint64(9):
                            break
                        mantissa = mantissa * np.uint64(10) + d
                        k += 1
                    n_frac = k - fraction_start
                    if k < end and buf[k] == _GT and n_int + n_frac <= 18:
                        if mantissa <= np.uint64(_EXACT_MANTISSA):
                            as_float = np.float64(mantissa) / _POW10[n_frac]
                            floats[slot, row] = -as_float if negative else as_float
                        else:
                            slow = _queue_slow(slow, n_slow, slot, row, i + 1, k)
                            n_slow += 1
                        valid[col, row] = 1
                        col += 1
                        i = k + 1
                        continue
            elif i + 1 < end and buf[i + 1] == _QUOTE:
                # Copy while looking for the closing quote; kept only if the string ends
                # in '">' and is ASCII.
                fill = arena_fill
                high = 0
                k = i + 2
                while k < end:
                    c = buf[k]
                    if c == _QUOTE or c == _NL:
                        break
                    high |= c
                    arena[fill] = c
                    fill += 1
                    k += 1
                if k + 1 < end and buf[k] == _QUOTE and buf[k + 1] == _GT and high < 0x80:
                    str_starts[slot, row] = arena_fill
                    str_fill[slot] += fill - arena_fill
                    arena_fill = fill
                    valid[col, row] = 1
                    col += 1
                    i = k + 2
                    continue
            status, kind, int_value, float_value, exact, s, e, i = _read_value(buf, i, end, column_type)
            if status != OK:
                break
            if kind == MISSING:
                valid[col, row] = 0
                col += 1
                continue
            if column_type == STRING:
                str_starts[slot, row] = arena_fill
                for k in range(e - s):
                    arena[arena_fill + k] = buf[s + k]
                arena_fill += e - s
                str_fill[slot] += e - s
            elif column_type == INT:
                ints[slot, row] = int_value
            elif column_type == FLOAT:
                floats[slot, row] = float_value
                if not exact:
                    slow = _queue_slow(slow, n_slow, slot, row, s, e)
                    n_slow += 1
            else:
                bools[slot, row] = int_value
            valid[col, row] = 1
            col += 1
        if status != OK:
            while i < end and buf[i] != _NL:
                i += 1
        if i - line_start > max_line_bytes:
            return LINE_TOO_LONG, line_start, row, lines, n_dropped, slow, n_slow
        if status != OK:
            if n_dropped < len(dropped):
                dropped[n_dropped, 0] = lines
                dropped[n_dropped, 1] = status
                dropped[n_dropped, 2] = col
            n_dropped += 1
            n_slow = slow_at_line_start
            arena_fill = arena_at_line_start
            for slot in range(len(str_fill)):
                str_fill[slot] = str_offsets[slot, row]
        elif has_field:
            for c in range(col, n_columns):
                valid[c, row] = 0
            for slot in range(len(str_fill)):
                str_offsets[slot, row + 1] = str_fill[slot]
            row += 1
        i += 1
    return DONE, i, row, lines, n_dropped, slow, n_slow


@_EntryPoint
def gather_strings(arena, str_offsets, str_starts, rows):
    """The bytes of every string column, one after another, out of the `arena` of `parse`.

    Returns ``(data, bases)``: column slot k's bytes are ``data[bases[k]:bases[k+1]]``,
    laid out as its ``str_offsets[k, :rows + 1]`` say.
    """
    n = len(str_offsets)
    bases = np.zeros(n + 1, np.int64)
    for slot in range(n):
        bases[slot + 1] = bases[slot] + str_offsets[slot, rows]
    data = np.empty(bases[n], np.uint8)
    for slot in range(n):
        base = bases[slot]
        for r in range(rows):
            at = base + str_offsets[slot, r]
            size = str_offsets[slot, r + 1] - str_offsets[slot, r]
            start = str_starts[slot, r]
            for k in range(size):
                data[at + k] = arena[start + k]
    return data, bases


@_EntryPoint
def gather(buf, starts, lengths, offsets):
    """Concatenate the spans ``buf[starts[k]:starts[k]+lengths[k]]``; `offsets` are their cumulative ends."""
    out = np.empty(offsets[-1], np.uint8)
    for k in range(len(starts)):
        for j in range(lengths[k]):
            out[offsets[k] + j] = buf[starts[k] + j]
    return out


@_EntryPoint
def classify_text(buf):
    """Type code of the whole of `buf` read as an unquoted, non-empty value."""
    return _classify(buf, 0, len(buf))[0]
