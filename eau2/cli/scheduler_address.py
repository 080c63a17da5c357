"""Checking a scheduler address before a client connects to it: a web address, an unknown
host, a closed port or a server that is not a Dask scheduler is one line saying so,
within seconds, where Dask's client would raise from deep inside or wait forever."""

from __future__ import annotations

import asyncio
import socket

import click

HANDSHAKE_SECONDS = 10.0
"""How long a scheduler has to answer a connection (it takes milliseconds)."""

GREETING_SECONDS = 1.0
"""A scheduler greets a connection at once; a web server waits for a request. Past this
without a greeting, a request tells whether a web server is there (the dashboard's port,
given for the scheduler's, is the usual slip), so that it is named within a second."""

DEFAULT_PORT = 8786

SCHEMES = ("tcp", "tls")
"""The transports a scheduler address may name (Dask's others need extra set-up)."""


def check_scheduler(address: str, timeout: float = HANDSHAKE_SECONDS, where: str | None = None) -> None:
    """Return if a Dask scheduler answers at `address`; else one `click.ClickException`
    saying what was found there, starting with `where` (how the user named the address:
    ``--scheduler ADDRESS`` by default)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    where = where or f"--scheduler {address}"
    try:
        scheme, location = parse_address(address)  # no scheme: Dask's default, tcp
    except ValueError as error:
        raise click.ClickException(f"{where}: {error}") from None
    if scheme in ("http", "https"):
        raise click.ClickException(
            f"{where} is a web address (the dashboard's?): give the scheduler's own, "
            f"such as tcp://HOST:{DEFAULT_PORT}"
        )
    if scheme not in SCHEMES:
        raise click.ClickException(
            f"{where}: unsupported scheme {scheme}:// (eau2 talks to a scheduler over "
            f"{', '.join(s + '://' for s in SCHEMES)})"
        )
    try:
        host, port = parse_host_port(location, default_port=DEFAULT_PORT)
    except ValueError as error:
        raise click.ClickException(f"{where}: {error}") from None
    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror:
        raise click.ClickException(f"{where}: unknown host {host!r}") from None
    try:
        connector, arguments = _connector(scheme)
    except Exception as error:  # Dask's TLS settings refuse the connection, or no backend
        raise click.ClickException(f"{where}: {error}") from None
    try:
        reply = asyncio.run(_handshake(connector, arguments, location, timeout, (host, port)))
    except _Refused as error:
        raise click.ClickException(f"{where}: {error}") from None
    except _WebServer:
        raise click.ClickException(f"{where}: {WEB_SERVER}") from None
    except (OSError, TimeoutError) as error:
        raise click.ClickException(f"{where}: {_what_answers(host, port, timeout, error)}") from None
    except Exception as error:  # bytes that are not Dask's: a banner, an HTTP reply, ...
        found = _what_answers(host, port, timeout, error, garbage=address)
        raise click.ClickException(f"{where}: {found}") from None
    if not (isinstance(reply, dict) and "pickle-protocol" in reply):
        found = _what_answers(host, port, timeout, None, garbage=address)
        raise click.ClickException(f"{where}: {found}")


class _Refused(Exception):
    """Dask's client refused to connect (its TLS settings do not fit the address)."""


class _WebServer(Exception):
    """A web server answers at the address, not a Dask scheduler."""


HTTP_REQUEST = b"HEAD / HTTP/1.0\r\n\r\n"

WEB_SERVER = (
    "a web server answers there, not a Dask scheduler (the dashboard?); the "
    f"scheduler listens on its own port, {DEFAULT_PORT} by default"
)


def _connector(scheme: str):
    """Dask's connector for `scheme`, and the client's connection arguments (the
    configured TLS settings)."""
    from distributed.comm.registry import get_backend
    from distributed.security import Security

    arguments = Security().get_connection_args("client")
    return get_backend(scheme).get_connector(), arguments


async def _handshake(connector, arguments: dict, location: str, timeout: float, web: tuple[str, int]):
    """Connect as Dask's client does, exchange Dask's handshake, then hang up; the reply.
    One attempt: Dask's own `connect` tries again and again until its time-out, so a
    closed port would take all of it to report. Without a greeting within
    `GREETING_SECONDS`, gives up at once if a web server answers at `web` (host, port)."""
    try:
        comm = await asyncio.wait_for(connector.connect(location, deserialize=False, **arguments), timeout)
    except (TypeError, RuntimeError) as error:  # Dask's TLS settings refuse the connection
        raise _Refused(str(error)) from None
    try:
        await asyncio.wait_for(comm.write(comm.handshake_info()), timeout)
        clock = asyncio.get_running_loop().time
        deadline = clock() + timeout
        reading = asyncio.ensure_future(comm.read())
        try:
            await asyncio.wait({reading}, timeout=min(GREETING_SECONDS, timeout))
            if not reading.done() and await _answers_http(*web):
                raise _WebServer
            return await asyncio.wait_for(reading, max(deadline - clock(), 0))
        finally:
            reading.cancel()  # interrupted, or given up: no read left behind
    finally:
        await comm.close()


async def _answers_http(host: str, port: int) -> bool:
    """Whether a web server answers a request at (`host`, `port`) within a second or two."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(HTTP_REQUEST)
        return (await asyncio.wait_for(reader.read(16), 2)).startswith(b"HTTP/")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


def _what_answers(
    host: str, port: int, timeout: float, error: Exception | None, garbage: str | None = None
) -> str:
    """What is at (`host`, `port`), once a Dask handshake with it has failed; with
    `garbage` (the address), the reply was not Dask's."""
    try:
        with socket.create_connection((host, port), timeout=2) as probe:
            probe.sendall(HTTP_REQUEST)
            reply = probe.recv(16)
    except ConnectionRefusedError:
        return "nothing listens on that port (connection refused)"
    except ConnectionResetError:
        return "the server there reset the connection (a scheduler that only takes tls://?)"
    except OSError:
        detail = f" ({error})" if error is not None and str(error) else ""  # TimeoutError() says nothing
        return f"no Dask scheduler answered within {timeout:g} s{detail}"
    if reply.startswith(b"HTTP/"):
        return WEB_SERVER
    if garbage:
        return f"something answers at {garbage}, but it is not a Dask scheduler"
    return f"something answers there, but not a Dask scheduler within {timeout:g} s"
