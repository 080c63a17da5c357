"""Where a block of an SoR file came from: the record a stored chunk keeps of its source,
and reading that block again, checked, when every copy of the chunk is lost."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import fsspec
import fsspec.utils
import pyarrow as pa

from eau2.checksums import CRC32, KIND, Checksum, checksum
from eau2.errors import LineTooLong, SorError
from eau2.sor.block import MAX_COLUMNS, MAX_LINE_BYTES, ParsedBlock, parse_block
from eau2.sor.source import ByteSource, fingerprint_of, lines_starting_in, open_source

_SAME_EVERYWHERE = ("size", "ETag", "etag")
"""Fingerprint fields that are the same for the same file, whichever machine asks."""
_SECRET = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)


@dataclass(frozen=True)
class BlockOrigin:
    """One block of an SoR file: the lines that start in ``[offset, offset + length)``
    (`length` None: the whole file, as compressed files are read), with the schema it
    was parsed with. `fingerprint` is what the file system said of the file at load
    (size, and ETag or modification time); `checksum` the checksum of the block's bytes,
    of kind `checksum_kind` (see `eau2.checksums`).
    `storage_options` never holds secrets: a node rebuilding a block uses its own.
    `max_columns` and `max_line_bytes` are the limits it was read with, and is read again
    with; `columns` the positions kept of each line (all when None), kept again."""

    url: str
    offset: int
    length: int | None
    schema: str
    storage_options: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)
    checksum: int | None = None
    checksum_kind: str = CRC32
    """The kind of `checksum` (see `eau2.checksums`): frames loaded before eau2 recorded
    it summed their blocks with CRC-32."""
    max_columns: int = MAX_COLUMNS
    max_line_bytes: int = MAX_LINE_BYTES
    columns: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.columns is not None:  # a list, after JSON or an RPC
            object.__setattr__(self, "columns", tuple(self.columns))

    def __str__(self) -> str:
        return self.url if self.length is None else f"{self.url} (block at byte {self.offset})"

    @property
    def span(self) -> int:
        """Bytes of the file the block covers, as far as the file's size is known."""
        size = int(self.fingerprint.get("size", 0) or 0)
        if self.length is None:
            return size
        return max(0, min(self.length, size - self.offset)) if size else self.length


def without_secrets(storage_options: dict | None) -> dict:
    """`storage_options` less anything that looks like a credential, at any depth."""
    return {
        name: without_secrets(value) if isinstance(value, dict) else value
        for name, value in (storage_options or {}).items()
        if not _SECRET.search(name)
    }


def fingerprint(url: str, storage_options: dict | None) -> dict:
    """What the file system says of `url` that changes when the file does."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fingerprint_of(fs.info(path))


def read_block(origin: BlockOrigin, storage_options: dict | None = None) -> tuple[ParsedBlock, Checksum]:
    """Parse the block `origin` names, keeping its `columns`; with the checksum of its bytes,
    of the origin's kind if it has one, else of this machine's (see `eau2.checksums.KIND`).
    `storage_options` (with secrets) default to the origin's own."""
    options = origin.storage_options if storage_options is None else storage_options
    source = _open_as_planned(origin, options)
    try:
        before = source.fingerprint if origin.fingerprint else None
        if origin.length is None:  # a whole file: its lines are numbered
            data, first_byte = source.read(0, source.size), None
        else:  # a block: its lines are named by their byte in the file
            data, first_byte = lines_starting_in(source, origin.offset, origin.length, origin.max_line_bytes)
        _check_unchanged(origin, before, options)
        kind = origin.checksum_kind if origin.checksum is not None else KIND
        summed = Checksum(checksum(data, kind), kind)
        parsed = parse_block(
            data,
            origin.schema,
            first_byte=first_byte,
            columns=origin.columns,
            max_columns=origin.max_columns,
            max_line_bytes=origin.max_line_bytes,
        )
        return parsed, summed
    except LineTooLong as error:
        raise error.within(origin.url) from None
    except (OSError, ValueError, EOFError) as error:
        raise SorError(f"{origin}: {error}") from error
    finally:
        source.close()


def _open_as_planned(origin: BlockOrigin, storage_options: dict | None) -> ByteSource:
    """The block's file, opened; `SorError` if its size is not the one the load was planned
    with (the file was cut or added to since: its blocks would not be the rows of one
    file). Only sizes are compared: times and ETags may differ for the same bytes between
    the machine that planned the load and this one."""
    if not origin.fingerprint:
        return open_source(origin.url, storage_options)
    try:
        source = open_source(origin.url, storage_options)
    except OSError as error:
        raise SorError(f"{origin}: {error}") from error
    planned, now = origin.fingerprint.get("size"), source.fingerprint.get("size")
    if planned is not None and now != planned:
        source.close()
        raise SorError(
            f"{origin}: the file changed while it was being read: it is {now} bytes, "
            f"not the {planned} it was when the load began"
        )
    return source


def _check_unchanged(origin: BlockOrigin, before: dict | None, storage_options: dict | None) -> None:
    """`SorError` if the file changed while the block was read: its fingerprint here after
    the read is not the one `before` it (when the file was opened)."""
    if before is None:
        return
    now = fingerprint(origin.url, storage_options)
    if now != before:
        raise SorError(f"the file changed while it was being read ({_difference(before, now)})")


def reload_block(origin: BlockOrigin) -> pa.Table:
    """The chunk `origin` describes, read and parsed again; `SorError` if the file is gone
    or is no longer the file that was loaded."""
    try:
        now = fingerprint(origin.url, origin.storage_options)
    except FileNotFoundError:
        raise SorError(f"{origin.url} is gone: the chunk parsed from it cannot be rebuilt") from None
    except OSError as error:
        raise SorError(f"{origin.url} cannot be read ({error}): the chunk cannot be rebuilt") from None
    if _changed_since_load(origin, now):
        raise SorError(
            f"{origin.url} changed since it was loaded ({_difference(origin.fingerprint, now)}): "
            "the chunk parsed from it cannot be rebuilt"
        )
    parsed, summed = read_block(origin)
    if origin.checksum is not None and summed.value != origin.checksum:
        raise SorError(f"{origin}: its bytes changed since it was loaded: the chunk cannot be rebuilt")
    return pa.Table.from_batches([parsed.batch])


def _changed_since_load(origin: BlockOrigin, now: dict) -> bool:
    """Whether the file's fingerprint `now`, here, shows it is not the file that was loaded.
    With the block's checksum, which then decides whether its bytes are the same, only what
    two machines agree on for the same file is compared: its size and ETag, not its times
    (a copy of the file on each machine, an object store's listing against its HEAD)."""
    then = origin.fingerprint
    if origin.checksum is None:
        return bool(then) and now != then
    return any(name in then and name in now and then[name] != now[name] for name in _SAME_EVERYWHERE)


def with_checksum(origin: BlockOrigin, summed: Checksum) -> BlockOrigin:
    return replace(origin, checksum=summed.value, checksum_kind=summed.kind)


def _difference(then: dict, now: dict) -> str:
    changed = [
        f"{name} {then.get(name)} -> {now.get(name)}" for name in then if then.get(name) != now.get(name)
    ]
    return ", ".join(changed) or "different"
