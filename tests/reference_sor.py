"""A deliberately plain SoR reader written from the spec, line by line, to check the fast one against.

Slow and obvious on purpose: regular expressions for the literals, `float()` for
floats, Python loops for everything else.
"""

from __future__ import annotations

import re

WHITESPACE = b" \t\r\v\f"
BOOL, INT, FLOAT, STRING = range(4)
_BOOL = re.compile(rb"[01]")
_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


def fields(line: bytes) -> list[tuple[bool, bytes]] | None:
    """The (quoted, value) fields of a line, or None when the line is not a row."""
    found = []
    i = 0
    while True:
        while i < len(line) and line[i] in WHITESPACE:
            i += 1
        if i == len(line):
            return found
        if line[i : i + 1] != b"<":
            return None
        i += 1
        while i < len(line) and line[i] in WHITESPACE:
            i += 1
        if line[i : i + 1] == b'"':
            close = line.find(b'"', i + 1)
            if close < 0:
                return None
            value = line[i + 1 : close]
            i = close + 1
            while i < len(line) and line[i] in WHITESPACE:
                i += 1
            if line[i : i + 1] != b">":
                return None
            i += 1
            found.append((True, value))
        else:
            close = line.find(b">", i)
            if close < 0:
                return None
            value = line[i:close].rstrip(WHITESPACE)
            if any(c in WHITESPACE for c in value):
                return None
            i = close + 1
            found.append((False, value))


def literal_type(quoted: bool, value: bytes) -> int | None:
    """The type of a non-missing value; None for a missing one."""
    if quoted:
        return STRING
    if not value:
        return None
    if _BOOL.fullmatch(value):
        return BOOL
    if _INT.fullmatch(value):
        return INT if -(2**63) <= int(value) < 2**63 else FLOAT
    if _FLOAT.fullmatch(value):
        return FLOAT
    return STRING


def convert(column_type: int, value: bytes):
    if column_type == BOOL:
        return value == b"1"
    if column_type == INT:
        return int(value)
    if column_type == FLOAT:
        return float(value)
    return value.decode()


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def lines(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    return pieces[:-1] if pieces[-1] == b"" else pieces


def row_fields(line: bytes) -> list[tuple[bool, bytes]] | None:
    """A line's fields when it is a row with valid UTF-8 strings, [] when blank, else None."""
    found = fields(line)
    if found is None:
        return None
    for quoted, value in found:
        if literal_type(quoted, value) == STRING and not _is_utf8(value):
            return None
    return found


def infer(data: bytes, max_lines: int = 500) -> list[int]:
    types: list[int | None] = []
    for line in lines(data)[:max_lines]:
        found = row_fields(line)
        if found is None:
            continue
        types.extend([None] * (len(found) - len(types)))
        for col, (quoted, value) in enumerate(found):
            kind = literal_type(quoted, value)
            if kind is not None and (types[col] is None or kind > types[col]):
                types[col] = kind
    return [BOOL if t is None else t for t in types]


def read(data: bytes, schema: list[int] | None = None) -> tuple[list[int], list[tuple], int]:
    """(schema, rows, dropped) for `data` read whole."""
    schema = infer(data) if schema is None else schema
    rows, dropped = [], 0
    for line in lines(data):
        found = row_fields(line)
        if found == []:
            continue
        if found is None or len(found) > len(schema):
            dropped += 1
            continue
        row = []
        for (quoted, value), column_type in zip(found, schema, strict=False):
            kind = literal_type(quoted, value)
            if kind is None:
                row.append(None)
            elif kind > column_type:
                break
            else:
                row.append(convert(column_type, value))
        else:
            rows.append(tuple(row) + (None,) * (len(schema) - len(row)))
            continue
        dropped += 1
    return schema, rows, dropped


def window(data: bytes, start: int, length: int) -> bytes:
    """The whole lines of the window ``[start, start+length)``, by the spec's rules."""
    stop = min(len(data), start + length)
    begin = start
    if start > 0 and data[start - 1 : start] != b"\n":
        newline = data.find(b"\n", start, stop)
        begin = stop if newline < 0 else newline + 1
    end = stop
    if stop < len(data):
        end = data.rfind(b"\n", begin, stop) + 1 or begin
    return data[begin:end]
