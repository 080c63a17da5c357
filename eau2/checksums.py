"""Checksums of the bytes eau2 keeps and checks later (a block of a loaded file, a value's
file on disk), each recorded with its kind, so bytes are checked again the way they were
summed: CRC-32C (google-crc32c, about 4x zlib's CRC-32 here) where that library has
compiled code for this machine, else zlib's CRC-32, which records made before CRC-32C
was used also name."""

from __future__ import annotations

import zlib

import google_crc32c
import numpy as np

CRC32 = "crc32"
CRC32C = "crc32c"
KINDS = (CRC32C, CRC32)

KIND = CRC32C if google_crc32c.implementation == "c" else CRC32
"""The kind new checksums are: CRC-32C, unless only google-crc32c's Python code is here."""


def checksum(data, kind: str = KIND, start: int = 0) -> int:
    """The checksum of kind `kind` of the bytes-like `data`, continuing from `start` (the
    checksum of the bytes before it); `ValueError` for a kind this version does not know."""
    if kind == CRC32C:
        return google_crc32c.extend(start, np.frombuffer(data, np.uint8))  # no copy
    if kind == CRC32:
        return zlib.crc32(data, start)
    raise ValueError(f"unknown checksum kind {kind!r} (this version of eau2 knows {', '.join(KINDS)})")
