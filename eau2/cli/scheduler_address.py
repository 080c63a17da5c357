"""Checking a scheduler address before a client connects to it: a web address, an unknown
host, a closed port or a server that is not a Dask scheduler is one line saying so,
within seconds, where Dask's client would raise from deep inside or wait forever."""

from __future__ import annotations

import asyncio
import socket

import click

HANDSHAKE_SECONDS = 10.0
"""How long a scheduler has to answer a connection (it takes milliseconds)."""

DEFAULT_PORT = 8786


def check_scheduler(address: str, timeout: float = HANDSHAKE_SECONDS, where: str | None = None) -> None:
    """Return if a Dask scheduler answers at `address`; else one `click.ClickException`
    saying what was found there, starting with `where` (how the user named the address:
    ``--scheduler ADDRESS`` by default)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    where = where or f"--scheduler {address}"
    scheme, location = parse_address(address)  # no scheme: Dask's default, tcp
    if scheme in ("http", "https"):
        raise click.ClickException(
            f"{where} is a web address (the dashboard's?): give the scheduler's own, "
            f"such as tcp://HOST:{DEFAULT_PORT}"
        )
    if scheme not in ("tcp", "tls"):
        return  # other transports (inproc, ucx, ws) are Dask's to judge
    try:
        host, port = parse_host_port(location, default_port=DEFAULT_PORT)
    except ValueError as error:
        raise click.ClickException(f"{where}: {error}") from None
    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror:
        raise click.ClickException(f"{where}: unknown host {host!r}") from None
    try:
        asyncio.run(_handshake(address, timeout))
    except (OSError, TimeoutError) as error:
        raise click.ClickException(f"{where}: {_what_answers(host, port, timeout, error)}") from None
    except (TypeError, RuntimeError) as error:  # Dask's TLS settings refuse the connection
        raise click.ClickException(f"{where}: {error}") from None


async def _handshake(address: str, timeout: float) -> None:
    """Connect as Dask's client does (with the configured TLS settings), exchange Dask's
    handshake, then hang up. One attempt: Dask's own `connect` tries again and again until
    its time-out, so a closed port would take all of it to report."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend
    from distributed.security import Security

    scheme, location = parse_address(address)
    arguments = Security().get_connection_args("client")
    connector = get_backend(scheme).get_connector()
    comm = await asyncio.wait_for(connector.connect(location, deserialize=False, **arguments), timeout)
    try:
        await asyncio.wait_for(comm.write(comm.handshake_info()), timeout)
        await asyncio.wait_for(comm.read(), timeout)
    finally:
        await comm.close()


def _what_answers(host: str, port: int, timeout: float, error: Exception) -> str:
    """What is at (`host`, `port`), once a Dask handshake with it has failed."""
    try:
        with socket.create_connection((host, port), timeout=2) as probe:
            probe.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            reply = probe.recv(16)
    except ConnectionRefusedError:
        return "nothing listens on that port (connection refused)"
    except ConnectionResetError:
        return "the server there reset the connection (a scheduler that only takes tls://?)"
    except OSError:
        return f"no Dask scheduler answered within {timeout:g} s ({error or 'no reply'})"
    if reply.startswith(b"HTTP/"):
        return (
            "a web server answers there, not a Dask scheduler (the dashboard?); the "
            f"scheduler listens on its own port, {DEFAULT_PORT} by default"
        )
    return f"something answers there, but not a Dask scheduler within {timeout:g} s"
