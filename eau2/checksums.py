"""Checksums of the blocks of loaded files, kept to check a block read again, each with its
kind: CRC-32C (google-crc32c, about 4x zlib's CRC-32 here) where that library has
compiled code for this machine, else zlib's CRC-32, which frames loaded before CRC-32C
was used also name."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import google_crc32c
import numpy as np

logger = logging.getLogger("eau2")

CRC32 = "crc32"
CRC32C = "crc32c"
KINDS = (CRC32C, CRC32)

COMPILED = google_crc32c.implementation == "c"
KIND = CRC32C if COMPILED else CRC32
"""The kind this machine sums new blocks with: CRC-32C, unless only google-crc32c's
Python code is here (a thousand times slower)."""


@dataclass(frozen=True)
class Checksum:
    """A checksum and its kind."""

    value: int
    kind: str


def checksum(data, kind: str = KIND) -> int:
    """The checksum of kind `kind` of the bytes-like `data`; `ValueError` for a kind this
    version does not know."""
    if kind == CRC32C:
        if not COMPILED:
            _say_slow()
            return google_crc32c.value(bytes(data))
        return google_crc32c.value(np.frombuffer(data, np.uint8))  # no copy
    if kind == CRC32:
        return zlib.crc32(data)
    raise ValueError(f"unknown checksum kind {kind!r} (this version of eau2 knows {', '.join(KINDS)})")


_said = False


def _say_slow() -> None:
    global _said
    if not _said:
        _said = True
        logger.warning(
            "eau2 is checking a CRC-32C in Python (about 0.2 s a MB): google-crc32c has no compiled "
            "code for this machine; blocks loaded here use zlib's CRC-32"
        )
