"""What an application prints goes to the user line by line, prefixed by its node."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_here = threading.local()
_install_lock = threading.Lock()


class _Dispatcher(io.TextIOBase):
    """Stands in for sys.stdout: a node thread's lines go to its sink, other threads' pass through."""

    def __init__(self, stream):
        self.stream = stream
        self.users = 0

    def write(self, text: str) -> int:
        sink = getattr(_here, "sink", None)
        if sink is None:
            return self.stream.write(text)
        *lines, _here.pending = (_here.pending + text).split("\n")
        for line in lines:
            sink(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def node_output(node: int, emit: Callable[[str], None]) -> Iterator[None]:
    """Within the block, each line this thread prints reaches ``emit("[node N] line")``."""
    with _install_lock:
        dispatcher = sys.stdout if isinstance(sys.stdout, _Dispatcher) else _Dispatcher(sys.stdout)
        sys.stdout = dispatcher
        dispatcher.users += 1
    _here.sink = lambda line: emit(f"[node {node}] {line}")
    _here.pending = ""
    try:
        yield
    finally:
        if _here.pending:
            _here.sink(_here.pending)
        _here.sink = None
        with _install_lock:
            dispatcher.users -= 1
            if dispatcher.users == 0 and sys.stdout is dispatcher:
                sys.stdout = dispatcher.stream


def real_stdout():
    """The standard output under eau2's dispatcher, for writing past it."""
    stdout = sys.stdout
    return stdout.stream if isinstance(stdout, _Dispatcher) else stdout
