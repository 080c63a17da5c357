"""Checksums of loaded blocks: each kind the same over every buffer a block comes in."""

import logging
import mmap
import zlib

import google_crc32c
import numpy as np
import pyarrow as pa
import pytest

from eau2 import checksums
from eau2.checksums import CRC32, CRC32C, checksum

DATA = bytes(range(256)) * 1000


@pytest.mark.parametrize(
    "buffer",
    [
        lambda: DATA,
        lambda: memoryview(bytearray(DATA))[7:],
        lambda: pa.py_buffer(DATA),
        lambda: np.frombuffer(DATA, np.uint8),
    ],
    ids=["bytes", "memoryview slice", "arrow buffer", "numpy"],
)
def test_each_kind_is_the_same_over_every_buffer(buffer):
    data = buffer()
    assert checksum(data, CRC32C) == google_crc32c.value(bytes(data))
    assert checksum(data, CRC32) == zlib.crc32(bytes(data))


def test_a_mapped_file_closes_after_its_checksum(tmp_path):
    path = tmp_path / "block"
    path.write_bytes(DATA)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert checksum(mapped, CRC32C) == google_crc32c.value(DATA)


def test_an_unknown_kind_is_named():
    known = r"\(this version of eau2 knows crc32c, crc32\)"
    with pytest.raises(ValueError, match=rf"unknown checksum kind 'xxh3' {known}"):
        checksum(DATA, "xxh3")


def test_crc32c_without_compiled_code_is_right_and_says_it_is_slow(monkeypatch, caplog):
    monkeypatch.setattr(checksums, "COMPILED", False)
    monkeypatch.setattr(checksums, "_said", False)
    with caplog.at_level(logging.WARNING, logger="eau2"):
        assert checksum(memoryview(DATA)[:1000], CRC32C) == google_crc32c.value(DATA[:1000])
        assert checksum(DATA[:1000], CRC32C) == google_crc32c.value(DATA[:1000])
    said = [record.message for record in caplog.records]
    assert len(said) == 1 and "checking a CRC-32C in Python" in said[0]
