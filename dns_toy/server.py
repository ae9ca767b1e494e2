"""DNS service over asyncio: UDP and TCP on one address and port.

This is the only module of the servers that touches sockets. A handler
turns the bytes of one query into the bytes of its reply, or None to stay
silent. The service frames TCP messages, logs one line per query and stops
cleanly on SIGINT or SIGTERM.
"""

import asyncio
import logging
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, cast

from .wire import describe_message, formerr_for

log = logging.getLogger(__name__)
query_log = logging.getLogger("dns_toy.query")

TCP_IDLE_TIMEOUT = 10.0  # seconds a connection may stay silent
TCP_DRAIN_TIMEOUT = 15.0  # seconds to finish answers after the client stops
TCP_MAX_IN_FLIGHT = 32  # queries answered at once on one connection


@dataclass(frozen=True)
class Client:
    """The source address, port and transport of a query."""

    address: str
    port: int
    transport: Literal["udp", "tcp"]


Handler = Callable[[bytes, Client], Awaitable[bytes | None]]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass
        # DatagramTransport, so this is a cast rather than a check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Each query runs as its own task so that a slow resolution never
        # holds up the queries behind it.
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        client = Client(addr[0], addr[1], "udp")
        reply = await _handle_logged(self.handler, data, client)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


async def _handle_logged(handler: Handler, data: bytes, client: Client) -> bytes | None:
    started = time.perf_counter()
    try:
        reply = await handler(data, client)
    except Exception:  # a bug in a handler must not stop the service
        log.exception("query from %s:%d failed", client.address, client.port)
        reply = formerr_for(data)
    elapsed_us = int((time.perf_counter() - started) * 1_000_000)
    if query_log.isEnabledFor(logging.INFO):
        _log_query(data, reply, client, elapsed_us)
    return reply


def _log_query(
    data: bytes, reply: bytes | None, client: Client, elapsed_us: int
) -> None:
    qname, qtype, _, _ = describe_message(data)
    if reply is None:
        rcode, flags = "DROPPED", "-"
    else:
        _, _, rcode, flags = describe_message(reply)
    query_log.info(
        '%s:%d %s "%s %s" %s %s %dus',
        client.address,
        client.port,
        client.transport,
        qtype,
        qname,
        rcode,
        flags,
        elapsed_us,
    )


async def _serve_tcp_client(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Read queries from one TCP connection and answer each as its own task.

    RFC 7766 section 6.2.1.1: queries pipelined on one connection are
    processed concurrently, so a slow one does not hold up the others, and
    replies may go out in any order.
    """
    peer = writer.get_extra_info("peername")
    client = Client(peer[0], peer[1], "tcp")
    write_lock = asyncio.Lock()
    slots = asyncio.Semaphore(TCP_MAX_IN_FLIGHT)
    pending: set[asyncio.Task[None]] = set()

    async def answer(data: bytes) -> None:
        try:
            reply = await _handle_logged(handler, data, client)
            if reply is not None:
                async with write_lock:  # keep each framed message whole
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except ConnectionError:
            pass  # the client went away before its reply
        finally:
            slots.release()

    try:
        while True:
            prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
            (length,) = struct.unpack("!H", prefix)
            data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
            await slots.acquire()
            task = asyncio.get_running_loop().create_task(answer(data))
            pending.add(task)
            task.add_done_callback(pending.discard)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed the connection or went idle
    finally:
        if pending:
            await asyncio.wait(pending, timeout=TCP_DRAIN_TIMEOUT)
        writer.close()


async def serve(
    handler: Handler,
    address: str,
    port: int,
    label: str,
    stop: asyncio.Event | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve `handler` on UDP and TCP until `stop` is set or a SIGINT/SIGTERM.

    With port 0 the UDP socket picks a free port and TCP binds the same one;
    `ready` receives the bound port once both listen.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    udp, protocol = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(handler), local_addr=(address, port)
    )
    port = udp.get_extra_info("sockname")[1]
    try:
        tcp = await asyncio.start_server(
            lambda r, w: _serve_tcp_client(handler, r, w),
            address,
            port,
            reuse_address=True,
        )
    except OSError:
        udp.close()
        raise
    _install_stop_signals(loop, stop)
    log.info("%s listening on %s:%d/udp+tcp", label, address, port)
    if ready is not None:
        ready(port)
    try:
        await stop.wait()
    finally:
        udp.close()
        tcp.close()
        for task in list(protocol.tasks):
            task.cancel()
        await tcp.wait_closed()
        log.info("%s on %s:%d stopped", label, address, port)


def _install_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):
        pass  # not the main thread (tests): the caller sets `stop` instead


def run_service(handler: Handler, address: str, port: int, label: str) -> int:
    """Run `serve` in a new event loop; return the process exit status."""
    try:
        asyncio.run(serve(handler, address, port, label))
    except OSError as exc:
        print(
            f"error: cannot listen on {address}:{port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    return 0
