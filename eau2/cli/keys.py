"""Keys on the command line: ``NAME`` is the key homed on node 0, ``NAME@N`` the one homed
on node N, as `eau2 ls` shows them; a pattern (``wc-*``) matches keys as they are shown."""

from __future__ import annotations

import fnmatch

import click

from eau2.store.key import Key

PATTERN_MARKS = "*?["
"""Characters no key name holds, that make an argument a pattern."""


def key_text(key: Key) -> str:
    """How a key is written on the command line and shown: ``data``, ``counts@2``."""
    return key.name if key.home == 0 else f"{key.name}@{key.home}"


def parse_key(text: str) -> Key:
    """The key written as `text` (``NAME`` or ``NAME@N``); `ValueError` saying what is wrong."""
    name, at, home = text.rpartition("@") if "@" in text else (text, "", "")
    if at and not home.isdigit():
        raise ValueError(f"{text!r} is not a key: after '@' comes the home node's number (NAME@N)")
    return Key(name, int(home) if at else 0)


def is_pattern(text: str) -> bool:
    return any(mark in text for mark in PATTERN_MARKS)


def matches(key: Key, pattern: str) -> bool:
    """Whether `key`, written as `key_text` writes it or as ``NAME@N`` (``users@0`` too, as
    it is accepted), matches the shell-style `pattern`."""
    return fnmatch.fnmatchcase(key_text(key), pattern) or fnmatch.fnmatchcase(
        f"{key.name}@{key.home}", pattern
    )


class KeyType(click.ParamType):
    """A key: ``NAME`` (home node 0) or ``NAME@N``."""

    name = "key"

    def convert(self, value, param, ctx) -> Key:
        if isinstance(value, Key):
            return value
        try:
            return parse_key(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class KeyOrPattern(click.ParamType):
    """A key (see `KeyType`), or a shell-style pattern over keys (``wc-*``, ``*@2``)."""

    name = "key"

    def convert(self, value, param, ctx) -> Key | str:
        if isinstance(value, Key) or is_pattern(value):
            return value
        return KeyType().convert(value, param, ctx)
