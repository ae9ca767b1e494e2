"""The resolver's client transport: DNS over UDP, with TCP when a reply is cut.

This is the only module of the resolver that touches sockets. Every UDP
query goes out on a new connected socket, so the kernel gives it a fresh
ephemeral source port (Linux picks one at random) and delivers only
datagrams from the address and port asked. The query ID is the caller's:
the iterator picks a random one for each query.

A reply is accepted only when it comes from the server asked and its ID
and question match the query (RFC 5452 section 3). Datagrams that fail
these checks, or do not decode, are dropped and the wait goes on, so a
forged or stray datagram cannot end the exchange early. A reply with TC=1
is asked again over TCP, with the 2-byte length prefix of RFC 1035
section 4.2.2.
"""

import asyncio
import contextlib
import ipaddress
import logging
import struct

from dnslib import DNSError, DNSRecord

# TransportError and TransportTimeout are defined in errors and are
# re-exported here for callers of this module.
from .errors import TransportError, TransportTimeout
from .names import name_key

log = logging.getLogger(__name__)

HEADER_SIZE = 12
MAX_MESSAGE_SIZE = 65535


def reply_matches(query: DNSRecord, reply: DNSRecord) -> bool:
    """Return True when `reply` is a response to `query`: same ID, QR=1 and
    the same question, with the name compared case-insensitively."""
    if reply.header.id != query.header.id or not reply.header.qr:
        return False
    if len(reply.questions) != len(query.questions):
        return False
    return all(
        name_key(sent.qname) == name_key(received.qname)
        and sent.qtype == received.qtype
        and sent.qclass == received.qclass
        for sent, received in zip(query.questions, reply.questions)
    )


class NetworkTransport:
    """Send queries to name servers over UDP, and over TCP after TC=1."""

    async def query(
        self, message: DNSRecord, address: str, port: int, timeout: float
    ) -> DNSRecord:
        """Send `message` to `address`:`port` and return the matching reply.

        Each of the UDP and the TCP exchange may take up to `timeout`
        seconds. Raises TransportTimeout when none arrives in time and
        TransportError when the exchange fails.
        """
        wire = message.pack()
        if len(wire) > MAX_MESSAGE_SIZE:
            raise TransportError(f"query of {len(wire)} bytes is too large to send")
        reply = await _query_udp(wire, message, address, port, timeout)
        if reply.header.tc:
            log.debug("truncated reply from %s:%d, retrying over TCP", address, port)
            reply = await _query_tcp(wire, message, address, port, timeout)
        return reply


class _UdpExchange(asyncio.DatagramProtocol):
    """Wait on one connected UDP socket for the reply to one query."""

    def __init__(self, query: DNSRecord, address: str, port: int) -> None:
        self.query = query
        self.peer = (ipaddress.ip_address(address), port)
        self.reply: asyncio.Future[DNSRecord] = (
            asyncio.get_running_loop().create_future()
        )

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.reply.done():
            return
        sender = (ipaddress.ip_address(str(addr[0])), addr[1])
        if sender != self.peer:
            log.debug("dropped a datagram from %s:%s, not the server asked", *addr[:2])
            return
        try:
            reply = DNSRecord.parse(data)
        except DNSError as exc:
            log.debug("dropped a malformed reply from %s:%s: %s", *addr[:2], exc)
            return
        if not reply_matches(self.query, reply):
            log.debug(
                "dropped a reply from %s:%s with the wrong ID or question", *addr[:2]
            )
            return
        self.reply.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        # On a connected socket an ICMP port unreachable arrives here as
        # ConnectionRefusedError: nothing listens, so stop waiting.
        if not self.reply.done():
            self.reply.set_exception(TransportError(f"UDP error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(TransportError(f"UDP socket closed: {exc}"))


async def _query_udp(
    wire: bytes, query: DNSRecord, address: str, port: int, timeout: float
) -> DNSRecord:
    loop = asyncio.get_running_loop()
    try:
        transport, exchange = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query, address, port), remote_addr=(address, port)
        )
    except OSError as exc:
        raise TransportError(f"cannot send to {address}:{port}: {exc}") from exc
    try:
        transport.sendto(wire)
        async with asyncio.timeout(timeout):
            return await exchange.reply
    except TimeoutError:
        raise TransportTimeout(
            f"no reply from {address}:{port} within {timeout:g} s"
        ) from None
    finally:
        transport.close()


async def _query_tcp(
    wire: bytes, query: DNSRecord, address: str, port: int, timeout: float
) -> DNSRecord:
    try:
        async with asyncio.timeout(timeout):
            data = await _exchange_tcp(wire, address, port)
    except TimeoutError:
        raise TransportTimeout(
            f"no TCP reply from {address}:{port} within {timeout:g} s"
        ) from None
    except asyncio.IncompleteReadError:
        raise TransportError(
            f"{address}:{port} closed the TCP connection before the reply ended"
        ) from None
    except OSError as exc:
        raise TransportError(f"TCP to {address}:{port} failed: {exc}") from exc
    try:
        reply = DNSRecord.parse(data)
    except DNSError as exc:
        raise TransportError(f"malformed TCP reply from {address}:{port}: {exc}")
    # One query per connection: a mismatch cannot be a later, right reply.
    if not reply_matches(query, reply):
        raise TransportError(
            f"TCP reply from {address}:{port} has the wrong ID or question"
        )
    return reply


async def _exchange_tcp(wire: bytes, address: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        if length < HEADER_SIZE:
            raise TransportError(
                f"TCP reply from {address}:{port} announces {length} bytes, "
                f"less than a DNS header"
            )
        return await reader.readexactly(length)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
