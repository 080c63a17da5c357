"""Keys: a name and the node the value lives on."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=+-]{0,199}")

NAME_RULE = "1 to 200 of letters, digits and _ . : = + -, starting with a letter, digit or _"
"""What a key name may be; names of this form never leave a node's spill directory."""

CHUNK_MARK = "#"
"""Separates a frame's name from its chunk numbers in chunk keys; user names never contain it."""

_CHUNK_PREFIX = re.compile(
    rf"{_NAME.pattern}{CHUNK_MARK}[0-9]{{1,9}}{CHUNK_MARK}[0-9A-Za-z]{{1,32}}{CHUNK_MARK}"
)  # a frame's name, home node, write tag
_CHUNK_INDEX = re.compile("[0-9]{1,12}")


@dataclass(frozen=True, order=True)
class Key:
    """A name and its home node: the value under it lives on that node.

    Examples:
        >>> Key("data")
        Key('data', home=0)
        >>> Key("../etc", 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: key name '../etc' is not valid: 1 to 200 of letters, digits and _ . : = + -, starting ...
    """

    name: str
    home: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"key name {self.name!r} is not valid: {NAME_RULE}")
        if not isinstance(self.home, int) or isinstance(self.home, bool) or self.home < 0:
            raise ValueError(f"key {self.name!r}: home node must be an int >= 0, not {self.home!r}")

    @classmethod
    def internal(cls, name: str, home: int) -> Key:
        """A key in eau2's own namespace (chunks of frames), which user keys cannot reach."""
        key = object.__new__(cls)
        object.__setattr__(key, "name", name)
        object.__setattr__(key, "home", home)
        return key

    @classmethod
    def received(cls, name, home) -> Key:
        """A key as a message named it: a user key, or a chunk's (``name#home#tag#index``,
        home 0); `ValueError` saying what is wrong with it otherwise."""
        if isinstance(name, str) and CHUNK_MARK in name:
            prefix, _, index = name.rpartition(CHUNK_MARK)
            if not (is_chunk_prefix(prefix + CHUNK_MARK) and _CHUNK_INDEX.fullmatch(index)) or home != 0:
                raise ValueError(f"{name!r}@{home!r} is not a chunk's key (name#home#tag#index, home 0)")
            return cls.internal(name, 0)
        return cls(name, home)

    @property
    def is_internal(self) -> bool:
        return CHUNK_MARK in self.name

    def __repr__(self) -> str:
        return f"Key({self.name!r}, home={self.home})"

    def __str__(self) -> str:
        return f"{self.name}@{self.home}"


def is_chunk_prefix(prefix) -> bool:
    """Whether `prefix` is what the chunk names of one write of a frame start with."""
    return isinstance(prefix, str) and _CHUNK_PREFIX.fullmatch(prefix) is not None
