"""A node's spill tier: one file per value in a directory, read back memory-mapped."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from eau2.store.values import FrameMeta


class SpillDirectory(MutableMapping):
    """Values by name as files in `directory`: Arrow IPC for tables and arrays, ``.npy`` for
    numpy arrays, raw bytes otherwise. Tables and arrays come back memory-mapped (no copy).

    File names are hashes of the value names, so no name can reach outside `directory`.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._paths: dict[str, Path] = {}

    def __setitem__(self, name: str, value) -> None:
        stem = self.directory / hashlib.sha1(name.encode()).hexdigest()
        if isinstance(value, pa.Table):
            path = _write_ipc(stem.with_suffix(".table"), value)
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            path = _write_ipc(stem.with_suffix(".array"), pa.table({"values": value}))
        elif isinstance(value, np.ndarray):
            path = stem.with_suffix(".npy")
            np.save(path, value, allow_pickle=False)
        elif isinstance(value, FrameMeta):
            path = stem.with_suffix(".meta")
            path.write_bytes(value.to_bytes())
        else:
            path = stem.with_suffix(".bytes")
            path.write_bytes(value)
        self._paths[name] = path

    def __getitem__(self, name: str):
        path = self._paths[name]
        if path.suffix in (".table", ".array"):
            table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            if path.suffix == ".table":
                return table
            column = table.column(0)
            return column.chunk(0) if column.num_chunks == 1 else column
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if path.suffix == ".meta":
            return FrameMeta.from_bytes(path.read_bytes())
        return path.read_bytes()

    def __delitem__(self, name: str) -> None:
        self._paths.pop(name).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def _write_ipc(path: Path, table: pa.Table) -> Path:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path
