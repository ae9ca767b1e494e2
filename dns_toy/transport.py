"""The resolver's client transport: DNS over UDP and over TCP.

This is the only module of the resolver that touches sockets. Every UDP
query goes out on a new connected socket, so the kernel gives it a fresh
ephemeral source port (Linux picks one at random) and delivers only
datagrams from the address and port asked. The query ID is the caller's:
the iterator picks a random one for each query.

A reply is accepted only when it comes from the server asked and its ID
and question match the query (RFC 5452 section 3). `accept_datagram`
applies these checks to each datagram. One that fails them is dropped and
the wait goes on, so a forged or stray datagram cannot end the exchange
early. A datagram that carries the query's ID but does not decode ends
the exchange with TransportError, so the caller moves to another server
at once.

`decode_message` rejects what dnslib would let through: bytes left over
after the records the header counts. Over TCP each message has the
2-byte length prefix of RFC 1035 section 4.2.2, and the message must fill
exactly the length it announces.
"""

import asyncio
import contextlib
import ipaddress
import logging
import struct

from dnslib import RR, DNSError, DNSHeader, DNSQuestion, DNSRecord
from dnslib.bimap import BimapError
from dnslib.buffer import BufferError as DNSBufferError
from dnslib.label import DNSBuffer

# TransportError and TransportTimeout are defined in errors and are
# re-exported here for callers of this module.
from .errors import TransportError, TransportTimeout

__all__ = [
    "NetworkTransport",
    "TransportError",
    "TransportTimeout",
    "accept_datagram",
    "accept_tcp_reply",
    "decode_message",
    "reply_matches",
]

log = logging.getLogger(__name__)

HEADER_SIZE = 12
MAX_MESSAGE_SIZE = 65535
# Everything dnslib raises on bytes that are not a DNS message.
_DECODE_ERRORS = (
    DNSError,
    DNSBufferError,
    BimapError,
    ValueError,
    IndexError,
    UnicodeError,
    struct.error,
)

Peer = tuple[str, int]


def reply_matches(
    query: DNSRecord, reply: DNSRecord, *, exact_case: bool = False
) -> bool:
    """Return True when `reply` is a response to `query`: same ID, QR=1 and
    the same question. Names compare case-insensitively unless `exact_case`
    is set, for queries whose name case was randomised."""
    if reply.header.id != query.header.id or not reply.header.qr:
        return False
    if len(reply.questions) != len(query.questions):
        return False
    return all(
        _same_name(sent.qname.label, received.qname.label, exact_case)
        and sent.qtype == received.qtype
        and sent.qclass == received.qclass
        for sent, received in zip(query.questions, reply.questions)
    )


def decode_message(data: bytes) -> DNSRecord:
    """Decode one DNS message, or raise TransportError saying what is wrong.

    Bad compression pointers, counts larger than the records present and
    records cut short fail in dnslib. Counts smaller than the records
    present leave bytes over, which fail here.
    """
    buffer = DNSBuffer(data)
    try:
        header = DNSHeader.parse(buffer)
        questions = [DNSQuestion.parse(buffer) for _ in range(header.q)]
        answers = [RR.parse(buffer) for _ in range(header.a)]
        authority = [RR.parse(buffer) for _ in range(header.auth)]
        additional = [RR.parse(buffer) for _ in range(header.ar)]
    except _DECODE_ERRORS as exc:
        raise TransportError(f"malformed reply: {exc}") from None
    left = buffer.remaining()
    if left:
        raise TransportError(
            f"malformed reply: {left} bytes after the records its header counts"
        )
    message = DNSRecord(header, questions, answers, auth=authority, ar=additional)
    try:
        # dnslib decodes some records it cannot encode again (an NSEC with
        # no type bitmap, for one); such a record could not be passed on.
        message.pack()
    except _DECODE_ERRORS as exc:
        raise TransportError(f"malformed reply: a record cannot be encoded: {exc}") from None
    return message


def accept_datagram(
    query: DNSRecord,
    data: bytes,
    sender: Peer,
    peer: Peer,
    *,
    exact_case: bool = False,
) -> DNSRecord | None:
    """Return the reply in a UDP datagram, or None to drop it and wait on.

    Raises TransportError for a malformed datagram from the server asked
    that carries the query's ID: the server did reply, and not usably.
    """
    if _peer_key(sender) != _peer_key(peer):
        log.debug("dropped a datagram from %s:%s, not the server asked", *sender)
        return None
    try:
        reply = decode_message(data)
    except TransportError as exc:
        if data[:2] == struct.pack("!H", query.header.id):
            raise TransportError(f"{exc} from {peer[0]}:{peer[1]}") from None
        log.debug("dropped an undecodable datagram from %s:%s: %s", *sender, exc)
        return None
    if not reply_matches(query, reply, exact_case=exact_case):
        log.debug("dropped a reply from %s:%s with the wrong ID or question", *sender)
        return None
    return reply


def accept_tcp_reply(
    query: DNSRecord, data: bytes, peer: Peer, *, exact_case: bool = False
) -> DNSRecord:
    """Return the reply in one TCP message, or raise TransportError.

    One query goes on each connection, so a reply that does not match
    cannot be followed by the right one.
    """
    try:
        reply = decode_message(data)
    except TransportError as exc:
        raise TransportError(f"{exc} over TCP from {peer[0]}:{peer[1]}") from None
    if not reply_matches(query, reply, exact_case=exact_case):
        raise TransportError(
            f"TCP reply from {peer[0]}:{peer[1]} has the wrong ID or question"
        )
    return reply


class NetworkTransport:
    """Send queries to name servers over UDP, TCP, or UDP then TCP."""

    async def query(
        self,
        message: DNSRecord,
        address: str,
        port: int,
        timeout: float,
        *,
        tcp: bool | None = None,
        exact_case: bool = False,
    ) -> DNSRecord:
        """Send `message` to `address`:`port` and return the matching reply.

        With `tcp` None the query goes over UDP, and again over TCP when
        the reply has TC=1. False sends over UDP only and returns a
        truncated reply as it is, True over TCP only. Each exchange may
        take up to `timeout` seconds. Raises TransportTimeout when no reply
        arrives in time and TransportError when the exchange fails.
        """
        wire = message.pack()
        if len(wire) > MAX_MESSAGE_SIZE:
            raise TransportError(f"query of {len(wire)} bytes is too large to send")
        if tcp:
            return await _query_tcp(wire, message, address, port, timeout, exact_case)
        reply = await _query_udp(wire, message, address, port, timeout, exact_case)
        if tcp is None and reply.header.tc:
            log.debug("truncated reply from %s:%d, retrying over TCP", address, port)
            reply = await _query_tcp(wire, message, address, port, timeout, exact_case)
        return reply


class _UdpExchange(asyncio.DatagramProtocol):
    """Wait on one connected UDP socket for the reply to one query."""

    def __init__(
        self, query: DNSRecord, address: str, port: int, exact_case: bool
    ) -> None:
        self.query = query
        self.peer = (address, port)
        self.exact_case = exact_case
        self.reply: asyncio.Future[DNSRecord] = (
            asyncio.get_running_loop().create_future()
        )

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.reply.done():
            return
        sender = (str(addr[0]), int(addr[1]))
        try:
            reply = accept_datagram(
                self.query, data, sender, self.peer, exact_case=self.exact_case
            )
        except TransportError as exc:
            self.reply.set_exception(exc)
            return
        if reply is not None:
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
    wire: bytes,
    query: DNSRecord,
    address: str,
    port: int,
    timeout: float,
    exact_case: bool,
) -> DNSRecord:
    loop = asyncio.get_running_loop()
    try:
        transport, exchange = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query, address, port, exact_case),
            remote_addr=(address, port),
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
    wire: bytes,
    query: DNSRecord,
    address: str,
    port: int,
    timeout: float,
    exact_case: bool,
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
    return accept_tcp_reply(query, data, (address, port), exact_case=exact_case)


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


def _same_name(
    sent: tuple[bytes, ...], received: tuple[bytes, ...], exact: bool
) -> bool:
    if exact:
        return sent == received
    return tuple(label.lower() for label in sent) == tuple(
        label.lower() for label in received
    )


def _peer_key(peer: Peer) -> tuple[object, int]:
    # Compare addresses as IP addresses, so "::1" and "0:0::1" are equal.
    try:
        return ipaddress.ip_address(peer[0]), peer[1]
    except ValueError:
        return peer[0], peer[1]
