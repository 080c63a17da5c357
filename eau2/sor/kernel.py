"""Compiled SoR kernels: scan fields, classify and convert values in one pass over raw bytes.

Everything here works on a ``uint8`` array of whole lines and writes into arrays the
caller allocates, so the results become Arrow buffers without copies. Type codes are
``ColumnType.code``: BOOL 0, INT 1, FLOAT 2, STRING 3; ``MISSING`` marks an empty field.

An install ships these functions compiled (setup.py), where numba's cache finds them
(`_place_shipped_code`). Where numba cannot use that code (another numba version or CPU),
the first read compiles them, and numba caches them for later processes, so they are
written to compile quickly: helpers are compiled once each, not inlined into every caller;
each entry point has one signature, whatever kind of array it is given; and only the
entry points a process calls are compiled. Until then, an
entry point runs its Python source on small inputs, up to `INTERPRETED_BYTES` in all: for
a small file that is quicker than compiling the kernel, or even than loading it from the
cache. Both ways give the same results (``tests/test_sor_kernel.py``). numba is imported
only to compile. A few helpers (`_native`) are single machine instructions numba's Python
subset cannot spell (a 64x64->128-bit product, unaligned 8-byte loads): compiled code
emits those instructions in place, the Python source does the same arithmetic on ints.

Floats are converted exactly, as Python's ``float()`` would: by Clinger's fast path when
the decimal mantissa fits in 53 bits and the power of ten is at most 22; else, up to 19
significant digits, by the Eisel-Lemire method (`_decimal_to_float`); longer mantissas
and the rare case Eisel-Lemire cannot decide are queued for the caller's correctly
rounding parser (``slow`` in `parse`). Digits and quoted strings are read eight bytes at
a time (SWAR), which keeps the scan free of a branch a byte.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

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
_MIN_POWER_OF_TEN, _MAX_POWER_OF_TEN = -342, 308  # past these, any 64-bit mantissa gives 0 or inf


def _truncated_powers_of_five() -> np.ndarray:
    """5**q for q in [-342, 308] to 128 bits, top bit set, as (high, low) uint64 pairs: the
    table of the Eisel-Lemire method (Lemire, "Number Parsing at a Gigabyte per Second",
    2021), built as fast_float builds it. For q >= 0, 5**q truncated (exact up to q = 55);
    for q < 0, 2**k / 5**-q within one (its floor plus one for q >= -27)."""
    table = np.empty(2 * (_MAX_POWER_OF_TEN - _MIN_POWER_OF_TEN + 1), np.uint64)
    for q in range(_MIN_POWER_OF_TEN, _MAX_POWER_OF_TEN + 1):
        power = 5 ** abs(q)
        if q >= 0:
            value = power << max(0, 128 - power.bit_length()) >> max(0, power.bit_length() - 128)
        elif q >= -27:
            value = (1 << (power.bit_length() + 127)) // power + 1
        else:
            value = (1 << (2 * power.bit_length() + 128)) // power + 1
            value >>= value.bit_length() - 128
        index = 2 * (q - _MIN_POWER_OF_TEN)
        table[index], table[index + 1] = value >> 64, value & 0xFFFFFFFFFFFFFFFF
    return table


_POW5 = _truncated_powers_of_five()
_U1, _U32, _U52, _U63 = np.uint64(1), np.uint64(32), np.uint64(52), np.uint64(63)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_POW10_INT = np.array([10**k for k in range(9)], np.uint64)
_ZEROS8 = np.uint64(0x3030303030303030)  # "00000000"
_ADD_118 = np.uint64(0x7676767676767676)  # sets a byte's top bit when it is 10 or more
_HIGH_BITS = np.uint64(0x8080808080808080)
_ONES8 = np.uint64(0x0101010101010101)
_QUOTES8 = np.uint64(0x2222222222222222)
_NEWLINES8 = np.uint64(0x0A0A0A0A0A0A0A0A)
_PAIRS = np.uint64(0x000000FF000000FF)
_SCALE_HIGH = np.uint64(100 + (1000000 << 32))
_SCALE_LOW = np.uint64(1 + (10000 << 32))
_LOW9 = np.uint64(0x1FF)

# The code below is numba's subset of Python, and runs as plain Python too: there `buf` is
# `bytes` (its items Python ints, as numba's are int64), and uint64 arithmetic wraps around
# as numba's does, without numpy's overflow warnings.

logger = logging.getLogger("eau2")

COMPILE_NOTICE_SECONDS = 1.0
"""How long loading an entry point may take before the process says it is compiling."""

_HELPERS: list[Callable] = []
_placed = False  # whether `_place_shipped_code` has run
_said = False  # whether `_say_compiling` has said so
_interpreted = 0
_lock = threading.Lock()


_NATIVE: dict[Callable, Callable] = {}


def _helper(function: Callable) -> Callable:
    """A function the entry points call: compiled into them, or run as Python with them."""
    _HELPERS.append(function)
    return function


def _native(instructions: Callable) -> Callable:
    """A helper (a decorator) of a few machine instructions numba's Python subset cannot
    spell: compiled code calls it as numba's builtins are called, as
    ``instructions(t, ir)`` makes it, given numba's types `t` and llvmlite's `ir`: its
    result type and a function ``(context, builder, signature, args)`` emitting it."""

    def decorate(function: Callable) -> Callable:
        _NATIVE[function] = instructions
        return _helper(function)

    return decorate


def _multiply_instructions(t, ir):
    """`_multiply`: one 64x64->128-bit multiplication."""

    def emit(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        low = builder.trunc(product, ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (high, low))

    return t.UniTuple(t.uint64, 2), emit


def _normalize_instructions(t, ir):
    """`_normalize`: a count of leading zeros, and a shift."""

    def emit(context, builder, signature, args):
        n = builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
        return context.make_tuple(builder, signature.return_type, (builder.shl(args[0], n), n))

    return t.Tuple((t.uint64, t.int64)), emit


def _trailing_zeros_instructions(t, ir):
    """`_trailing_zeros`: a count of trailing zeros."""

    def emit(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return t.int64, emit


def _from_bits_instructions(t, ir):
    """`_from_bits`: a bitcast."""

    def emit(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return t.float64, emit


def _eight_bytes_at(context, builder, signature, args, ir):
    """A pointer to the 64 bits at ``args[0][args[1]]``, the first a uint8 array."""
    data = context.make_array(signature.args[0])(context, builder, args[0]).data
    return builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())


def _load8_instructions(t, ir):
    """`_load8`: one unaligned 64-bit load."""

    def emit(context, builder, signature, args):
        return builder.load(_eight_bytes_at(context, builder, signature, args, ir), align=1)

    return t.uint64, emit


def _store8_instructions(t, ir):
    """`_store8`: one unaligned 64-bit store."""

    def emit(context, builder, signature, args):
        builder.store(args[2], _eight_bytes_at(context, builder, signature, args, ir), align=1)
        return context.get_dummy_value()

    return t.none, emit


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
                notice = threading.Timer(COMPILE_NOTICE_SECONDS, _say_compiling)
                notice.start()
                try:
                    self._compiled = numba.njit([signature], **options)(self._python)
                finally:
                    notice.cancel()
            return self._compiled


def _say_compiling() -> None:
    """Say, once a process, that the kernel is being compiled: not loaded from the code an
    install ships, or from numba's cache, so the first read takes several seconds more."""
    global _said
    if not _said:
        _said = True
        logger.warning(
            "eau2 is compiling its SoR parser for this machine, once (about 10 s): the install "
            "did not ship it compiled for this CPU, Python and numba, or it is not on its path"
        )


def compile_all() -> None:
    """Compile every entry point now, or load it from numba's cache (``__pycache__`` beside
    this file): what a build of the package runs, so that an install ships it compiled."""
    for name in _signatures(_numba().types):
        globals()[name].compiled()


def _numba():
    """numba, with the helpers registered (once) for the compiled entry points to call."""
    import numba
    from llvmlite import ir
    from numba.extending import lower_builtin, register_jitable, type_callable

    global _placed
    with _lock:
        if not _placed:
            _place_shipped_code()
            _placed = True
        while _HELPERS:  # only ever called from compiled code: no wrappers to call them otherwise
            function = _HELPERS.pop()
            if function in _NATIVE:
                result, emit = _NATIVE[function](numba.types, ir)
                type_callable(function)(_typer(function, result))
                lower_builtin(function, numba.types.VarArg(numba.types.Any))(emit)
            else:
                register_jitable(no_cpython_wrapper=True, no_cfunc_wrapper=True)(function)
    return numba


def _place_shipped_code() -> None:
    """Copy the compiled code an install ships beside this file (``__pycache__``, see
    setup.py) to where numba caches this file's functions, when that is elsewhere: numba
    caches beside the file only where it can write (not in a read-only install), and
    under ``NUMBA_CACHE_DIR`` when that is set. A function's files are copied when missing
    there or older than the shipped ones (each file whole, by a rename, for processes
    loading them at the same time); numba then loads what it can use, as from its own cache."""
    from numba.core.caching import FunctionCache

    shipped = Path(__file__).with_name("__pycache__")
    try:
        target = Path(FunctionCache(count_lines._python).cache_path)
        if not shipped.is_dir() or target.resolve() == shipped.resolve():
            return
        for index in shipped.glob("kernel.*.nbi"):
            there = target / index.name
            if there.exists() and there.stat().st_mtime >= index.stat().st_mtime:
                continue
            for data in shipped.glob(f"{index.stem}.*.nbc"):
                _copy_whole(data, target / data.name)
            _copy_whole(index, there)  # last: it names the data files
    except (OSError, RuntimeError):  # nowhere to cache (numba says so when it compiles), or read-only
        return


def _copy_whole(source: Path, target: Path) -> None:
    """Copy `source` to `target`, which readers see whole or not at all."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _typer(function: Callable, result) -> Callable:
    """numba's typing of a call of the native helper `function`: its `result` type."""

    def typer(*args):
        return result

    typer.__signature__ = inspect.signature(function)
    return lambda context: typer


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
    for start in range(0, len(buf), 4096):  # counted in 16 bits a run: vector code, twice as fast
        run = np.uint16(0)
        for i in range(start, min(start + 4096, len(buf))):
            run = np.uint16(run + (buf[i] == _NL))
        n += run
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


@_native(_multiply_instructions)
def _multiply(a, b):
    """The 128-bit product of two uint64s as ``(high, low)``."""
    product = int(a) * int(b)
    return np.uint64(product >> 64), np.uint64(product & 0xFFFFFFFFFFFFFFFF)


@_native(_normalize_instructions)
def _normalize(w):
    """``(w << n, n)`` for the n that sets the top bit of the nonzero uint64 `w`."""
    n = 64 - int(w).bit_length()
    return w << np.uint64(n), n


@_native(_load8_instructions)
def _load8(buf, k):
    """``buf[k:k+8]`` as a little-endian uint64 (eau2 runs on little-endian machines)."""
    return np.uint64(int.from_bytes(buf[k : k + 8], "little"))


@_native(_store8_instructions)
def _store8(out, k, v):
    """Write the uint64 `v` to ``out[k:k+8]``, little-endian."""
    out[k : k + 8] = np.frombuffer(int(v).to_bytes(8, "little"), np.uint8)


@_native(_trailing_zeros_instructions)
def _trailing_zeros(x):
    """The number of trailing zero bits of the uint64 `x` (64 for 0)."""
    return (int(x) & -int(x)).bit_length() - 1 if x else 64


@_native(_from_bits_instructions)
def _from_bits(bits):
    """The double whose IEEE 754 bits are the uint64 `bits`."""
    return np.uint64(bits).view(np.float64)


@_helper
def _decimal_to_float(w, q):
    """``(w * 10**q, exact)``: the uint64 `w` times a power of ten, rounded to the nearest
    double (ties to even) by the Eisel-Lemire method, as fast_float does it; `exact` is
    False in the rare case the 128-bit product cannot tell which way to round, for the
    caller's correctly rounding fallback."""
    if w == np.uint64(0) or q < _MIN_POWER_OF_TEN:
        return 0.0, True
    if q > _MAX_POWER_OF_TEN:
        return np.inf, True
    w, lz = _normalize(w)
    index = 2 * (q - _MIN_POWER_OF_TEN)
    high, low = _multiply(w, _POW5[index])
    if high & _LOW9 == _LOW9:  # the bits kept may depend on the lower half of the power
        more = _multiply(w, _POW5[index + 1])[0]
        low = low + more
        if more > low:
            high = high + _U1
        if low == _ALL_ONES and (q < -27 or q > 55):
            return 0.0, False
    upper = 1 if high >> _U63 else 0
    shift = np.uint64(upper + 9)
    mantissa = high >> shift  # 54 bits: 53 and one to round
    exponent = ((217706 * q) >> 16) + 63 + upper - lz + 1023  # floor(log2(w * 10**q)), biased
    if exponent <= 0:  # subnormal (or rounding up to the smallest normal)
        if 1 - exponent >= 64:
            return 0.0, True
        mantissa = mantissa >> np.uint64(1 - exponent)
        mantissa = (mantissa + (mantissa & _U1)) >> _U1
        return _from_bits(mantissa), True  # 2**52 (after rounding up) is the smallest normal
    # Exactly halfway (only possible where the product is exact): round to even.
    if low <= _U1 and -4 <= q <= 23 and mantissa & np.uint64(3) == _U1 and mantissa << shift == high:
        mantissa = mantissa - _U1
    mantissa = (mantissa + (mantissa & _U1)) >> _U1  # 53 bits, or 2**53 if rounding carried
    if exponent >= 2047:
        return np.inf, True
    # The mantissa's leading bit adds one to the exponent field, or two when rounding carried.
    return _from_bits((np.uint64(exponent - 1) << _U52) + mantissa), True


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
    exact = True
    if m <= _EXACT_MANTISSA:
        value = np.float64(m) / _POW10[n_frac]
    else:
        value, exact = _decimal_to_float(mantissa, -n_frac)
    if negative:
        value = -value
    return FLOAT, np.int64(0), value, exact, p


@_helper
def _scan_number_careful(buf, p, e):
    """Read the longest BOOL, INT or FLOAT literal that starts at `p` (and ends by `e`).

    Returns ``(type, int_value, float_value, float_is_exact, next_offset)``; the type is
    STRING when no number starts at `p`. A float is converted exactly when it has at most
    19 significant digits: by Clinger's fast path (mantissa at most 2**53, power of ten
    at most 22), else by `_decimal_to_float`. Otherwise (more digits, or the rare case
    `_decimal_to_float` cannot decide) it is not exact, and the caller converts the text
    with a correctly rounding parser.
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
    exact = not lost_digits
    value = np.float64(mantissa)  # when digits were lost: the caller converts the text
    power = exponent - scale
    clinger = exact and mantissa <= np.uint64(_EXACT_MANTISSA) and -22 <= power <= 22
    if clinger and power >= 0:
        value = value * _POW10[power]
    elif clinger:
        value = value / _POW10[-power]
    elif exact:
        value, exact = _decimal_to_float(mantissa, power)
    if negative:
        value = -value

    if has_dot or has_exponent:
        return FLOAT, np.int64(0), value, exact, p
    if lost_digits or mantissa > np.uint64(_INT64_MAX) + np.uint64(negative):
        return FLOAT, np.int64(0), value, exact, p  # does not fit in 64 bits
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
    if not ascii and not _is_utf8(buf, s, e):  # no value of any type: the line is no row
        return NOT_UTF8, STRING, np.int64(0), 0.0, False, s, e, next_offset
    if column_type != STRING:
        return DOES_NOT_FIT, STRING, np.int64(0), 0.0, False, s, e, next_offset
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


@_helper
def _rest_of_line(buf, i, end):
    """OK if the rest of the line from `i` on is fields (of any type), else what makes
    one of them no field, as it makes `infer_types` ignore the line: a line with a value
    that does not fit, or more values than columns, is then no row at all, not a misfit."""
    while True:
        i = _skip_spaces(buf, i, end)
        if i >= end or buf[i] == _NL:
            return OK
        if buf[i] != _LT:
            return TEXT_OUTSIDE_FIELD
        status, s, e, _, i, ascii = _scan_field(buf, i, end)
        if status != OK:
            return status
        if not ascii and not _is_utf8(buf, s, e):
            return NOT_UTF8


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
                status = _rest_of_line(buf, i, end)
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
                dot = -1
                mantissa = np.uint64(0)
                while True:
                    # The digits from k on: eight bytes at a time while there are eight to
                    # read, their leading digits found and converted with a few 64-bit
                    # operations (as fast_float does), else one at a time.
                    while k + 8 <= end:
                        t = _load8(buf, k) - _ZEROS8
                        n = _trailing_zeros(((t + _ADD_118) | t) & _HIGH_BITS) >> 3
                        if n == 0:
                            break
                        t = t << np.uint64(64 - 8 * n)  # the digits, most significant lowest
                        t = t * np.uint64(10) + (t >> np.uint64(8))  # pairs of digits
                        t = (t & _PAIRS) * _SCALE_HIGH + ((t >> np.uint64(16)) & _PAIRS) * _SCALE_LOW
                        mantissa = mantissa * _POW10_INT[n] + (t >> _U32)
                        k += n
                        if n < 8:
                            break
                    else:
                        while k < end:
                            d = np.uint64(buf[k]) - np.uint64(_ZERO)
                            if d > np.uint64(9):
                                break
                            mantissa = mantissa * np.uint64(10) + d
                            k += 1
                    if dot < 0 and column_type == FLOAT and k < end and buf[k] == _DOT:
                        dot = k
                        k += 1
                    else:
                        break
                if dot < 0:
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
                else:
                    n_int, n_frac = dot - digits_start, k - dot - 1
                    if k < end and buf[k] == _GT and n_int > 0 and n_int + n_frac <= _MAX_SIGNIFICANT:
                        if mantissa <= np.uint64(_EXACT_MANTISSA):
                            as_float = np.float64(mantissa) / _POW10[n_frac]
                        else:
                            as_float, exact = _decimal_to_float(mantissa, -n_frac)
                            if not exact:
                                slow = _queue_slow(slow, n_slow, slot, row, i + 1, k)
                                n_slow += 1
                        floats[slot, row] = -as_float if negative else as_float
                        valid[col, row] = 1
                        col += 1
                        i = k + 1
                        continue
            elif i + 1 < end and buf[i + 1] == _QUOTE:
                # Copy up to the first quote, newline or byte above 0x7F, eight bytes at a
                # time while there are eight to read and room to write them; kept only if
                # the string ends in '">' (so it is ASCII).
                fill = arena_fill
                k = i + 2
                while k + 8 <= end and fill + 8 <= len(arena):
                    v = _load8(buf, k)
                    _store8(arena, fill, v)
                    quote, newline = v ^ _QUOTES8, v ^ _NEWLINES8
                    stops = ((quote - _ONES8) & ~quote | (newline - _ONES8) & ~newline | v) & _HIGH_BITS
                    n = _trailing_zeros(stops) >> 3
                    k += n
                    fill += n
                    if n < 8:
                        break
                else:
                    while k < end:
                        c = buf[k]
                        if c == _QUOTE or c == _NL or c >= 0x80:
                            break
                        arena[fill] = c
                        fill += 1
                        k += 1
                if k + 1 < end and buf[k] == _QUOTE and buf[k + 1] == _GT:
                    str_starts[slot, row] = arena_fill
                    str_fill[slot] += fill - arena_fill
                    arena_fill = fill
                    valid[col, row] = 1
                    col += 1
                    i = k + 2
                    continue
            status, kind, int_value, float_value, exact, s, e, i = _read_value(buf, i, end, column_type)
            if status == DOES_NOT_FIT:
                rest = _rest_of_line(buf, i, end)
                status = DOES_NOT_FIT if rest == OK else rest
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
