"""The `Application` base class."""

from __future__ import annotations

from typing import Any

from eau2.distributed.kv import KVStore
from eau2.errors import Eau2Error


class ApplicationError(Eau2Error, RuntimeError):
    """An application's `run` raised on a node (its exception is the ``__cause__``), or a node was lost."""

    def __init__(self, node: int, message: str):
        super().__init__(f"node {node}: {message}")
        self.node = node
        self.message = message

    def __reduce__(self):
        return type(self), (self.node, self.message), self.__dict__


class Application:
    """A program that runs on every node at once, like an MPI rank.

    Subclass it and override `run`; inside, `this_node()` tells which node this is,
    `num_nodes()` how many there are, and `kv` is the store. A runner (`eau2.run_local`,
    `eau2_dask.run`) makes one instance per node and returns each node's `run()` result.

    Examples:
        >>> from eau2 import Application, Key, run_local
        >>> class Hello(Application):
        ...     def run(self):
        ...         if self.this_node() == 0:
        ...             self.kv.put(Key("greeting"), b"hello")
        ...         return self.kv.get_and_wait(Key("greeting"), timeout=10)
        >>> run_local(Hello, nodes=2)
        [b'hello', b'hello']
    """

    kv: KVStore

    def run(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must override run()")

    def this_node(self) -> int:
        return self.kv.this_node()

    def num_nodes(self) -> int:
        return self.kv.num_nodes()


def start(app_cls: type[Application], args: tuple, kwargs: dict, kv: KVStore) -> Any:
    """Make one node's instance of `app_cls`, give it the store, and run it."""
    if not (isinstance(app_cls, type) and issubclass(app_cls, Application)):
        raise TypeError(f"an application is a subclass of eau2.Application, not {app_cls!r}")
    app = app_cls(*args, **kwargs)
    app.kv = kv
    return app.run()
