"""Every exception eau2 raises; each message says what was wrong and where."""

from __future__ import annotations


class Eau2Error(Exception):
    """Base class of eau2's own errors."""


class SorError(Eau2Error, ValueError):
    """SoR input that cannot be read: a bad window, a schema that does not match, unreadable bytes."""


class LineTooLong(SorError):
    """An SoR line longer than the reader's `max_line_bytes`: named by its line number
    when the reader knows it, else by the byte at which it starts, and by its file."""

    def __init__(self, limit: int, where: str = "", line: int | None = None, offset: int | None = None):
        place = f"line {line}" if line is not None else f"the line at byte {offset}"
        super().__init__(
            f"{where + ': ' if where else ''}{place} is longer than max_line_bytes ({limit:,} bytes); "
            "pass a larger max_line_bytes= to read it"
        )
        self.limit, self.where, self.line, self.offset = limit, where, line, offset

    def __reduce__(self):
        return type(self), (self.limit, self.where, self.line, self.offset), self.__dict__

    def at_line(self, line: int) -> LineTooLong:
        """This error named by its line number, when only its byte was known."""
        return self if self.line is not None else LineTooLong(self.limit, self.where, line)

    def within(self, where: str) -> LineTooLong:
        """This error naming the file it is in."""
        return LineTooLong(self.limit, where, self.line, self.offset)


class SorWarning(UserWarning):
    """Rows of SoR input were dropped because they are not rows or do not fit the schema."""


class MissingValueError(Eau2Error, ValueError):
    """A typed getter was asked for a value that is missing."""


class KeyExistsError(Eau2Error, ValueError):
    """A key was put twice: values are write-once."""

    @classmethod
    def of(cls, key) -> KeyExistsError:
        return cls(f"key {key.name!r} already has a value: values are write-once")


class RunCancelled(Eau2Error, RuntimeError):
    """An application run was cancelled (another node failed) while this node waited."""


class NodeLost(Eau2Error, ConnectionError):
    """A node's worker is gone (it died, left, or has not come back yet)."""

    def __init__(self, node: int | None, message: str | None = None):
        super().__init__(message or f"node {node} is gone: its worker left the cluster")
        self.node = node

    def __reduce__(self):
        return type(self), (self.node, str(self)), self.__dict__


class DataLost(Eau2Error, LookupError):
    """Stored data whose every copy is gone and that cannot be rebuilt from its source.

    `key` names the value or frame, `chunks` the lost chunk numbers of a frame, and
    `nodes` the nodes that held them.
    """

    def __init__(self, key, chunks: list[int], nodes: list[int], why: str = ""):
        what = f"chunk{'s' if len(chunks) != 1 else ''} {_ranges(chunks)} of frame {key.name!r}"
        held = f"held by node{'s' if len(nodes) != 1 else ''} {_ranges(nodes)}" if nodes else "never stored"
        super().__init__(f"{what} lost: {held}, now gone{'; ' + why if why else ''}")
        self.key = key
        self.chunks = chunks
        self.nodes = nodes
        self.why = why

    def __reduce__(self):
        return type(self), (self.key, self.chunks, self.nodes, self.why), self.__dict__


def _ranges(numbers: list[int], shown: int = 8) -> str:
    """``[0, 1, 2, 5]`` as ``"0-2, 5"``; past `shown` runs, how many numbers in all."""
    parts: list[str] = []
    for number in sorted(set(numbers)):
        if parts and "-" not in parts[-1] and int(parts[-1]) == number - 1:
            parts[-1] = f"{parts[-1]}-{number}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == number - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    if len(parts) > shown:
        return f"{', '.join(parts[:shown])}, ... ({len(set(numbers))} in all)"
    return ", ".join(parts)
