"""An in-memory network of fake name servers, for resolver tests.

Each address is served by a Catalog, answered by the real authority code,
or by a behaviour function that acts as a misbehaving server. Time
moves only on the FakeClock: every exchange costs the server's `rtt`
seconds and a silent server costs the full timeout, so retries and TTLs
test instantly.

Replies go through the same checks as on real sockets: over UDP the
transport's `accept_datagram` drops datagrams from the wrong source or
with the wrong ID or question and keeps waiting, and over TCP
`accept_tcp_reply` rejects them. A behaviour can return several
datagrams, forged ones first, to show that the wait goes on.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, RR, DNSLabel, DNSRecord

from dns_toy.authority import Catalog, answer_query
from dns_toy.errors import TransportTimeout
from dns_toy.simnet import SimClock
from dns_toy.transport import accept_datagram, accept_tcp_reply
from dns_toy.zonefile import parse_zone_text


@dataclass(frozen=True)
class Datagram:
    """One reply datagram, by default from the address and port asked."""

    payload: DNSRecord | bytes
    source: str | None = None
    port: int | None = None


# A behaviour returns the reply, raw bytes to send as the reply, several
# datagrams, or None to stay silent.
Reply = DNSRecord | bytes | Sequence[Datagram] | None
Behaviour = Callable[[DNSRecord], Reply]
Server = Catalog | Behaviour


@dataclass(frozen=True)
class Sent:
    """One query as the network carried it."""

    address: str
    port: int
    qname: str  # as sent, case included
    qtype: int
    protocol: str  # "udp" or "tcp"


class FakeClock(SimClock):
    """A SimClock whose default start is 1000 s."""

    def __init__(self, start: float = 1_000.0) -> None:
        super().__init__(start)


def authority(*zone_texts: str) -> Catalog:
    """Build the catalog of a server that loads the zones `zone_texts`."""
    return Catalog([parse_zone_text(text) for text in zone_texts])


class FakeNetwork:
    """A transport that delivers queries to in-memory servers by address."""

    def __init__(self, clock: FakeClock, rtt: float = 0.002) -> None:
        self.clock = clock
        self.rtt = rtt
        self.servers: dict[str, Server] = {}
        self.tcp_servers: dict[str, Server] = {}
        self.rtts: dict[str, float] = {}
        self.queries: Counter[str] = Counter()
        self.log: list[Sent] = []

    def add(
        self,
        address: str,
        server: Server,
        *,
        tcp: Server | None = None,
        rtt: float | None = None,
    ) -> None:
        """Serve `address` with `server`, over TCP with `tcp` if given."""
        self.servers[address] = server
        if tcp is not None:
            self.tcp_servers[address] = tcp
        if rtt is not None:
            self.rtts[address] = rtt

    @property
    def total(self) -> int:
        return sum(self.queries.values())

    def sent(self, address: str) -> list[Sent]:
        return [entry for entry in self.log if entry.address == address]

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
        """Deliver `message` to the server at `address` and return its reply.

        `tcp` and `exact_case` mean what they mean for NetworkTransport. A
        missing or silent server, or one whose datagrams are all dropped,
        advances the clock by `timeout` and raises TransportTimeout.
        """
        if tcp is None:
            reply = await self.query(
                message, address, port, timeout, tcp=False, exact_case=exact_case
            )
            if not reply.header.tc:
                return reply
            tcp = True
        received = DNSRecord.parse(message.pack())
        protocol = "tcp" if tcp else "udp"
        self.queries[address] += 1
        entry = Sent(address, port, str(received.q.qname), received.q.qtype, protocol)
        self.log.append(entry)
        server = self.tcp_servers.get(address) if tcp else None
        server = server or self.servers.get(address)
        output = None if server is None else _serve(server, received)
        datagrams = _datagrams(output)
        if tcp and datagrams:
            self.clock.advance(self.rtts.get(address, self.rtt))
            wire = _wire(datagrams[0].payload)
            return accept_tcp_reply(
                message, wire, (address, port), exact_case=exact_case
            )
        for datagram in datagrams:
            sender = (datagram.source or address, datagram.port or port)
            wire = _wire(datagram.payload)
            reply = accept_datagram(
                message, wire, sender, (address, port), exact_case=exact_case
            )
            if reply is not None:
                self.clock.advance(self.rtts.get(address, self.rtt))
                return reply
        self.clock.advance(timeout)
        raise TransportTimeout(f"no reply from {address} within {timeout:g} s")


def _serve(server: Server, query: DNSRecord) -> Reply:
    if isinstance(server, Catalog):
        return answer_query(query, server)
    return server(query)


def _datagrams(output: Reply) -> list[Datagram]:
    if output is None:
        return []
    if isinstance(output, (DNSRecord, bytes)):
        return [Datagram(output)]
    return list(output)


def _wire(payload: DNSRecord | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else bytes(payload.pack())


# Misbehaving servers.


def silent(_query: DNSRecord) -> None:
    """A server that never replies."""


def garbage(query: DNSRecord) -> bytes:
    """A server whose reply has the query's ID and a header that counts a
    question and an answer, followed by two bytes of neither."""
    return bytes(query.pack()[:2]) + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xff\xff"


def rcode(code: int) -> Behaviour:
    """A server that replies with `code` and no records."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = query.reply()
        response.header.aa = 0
        response.header.rcode = code
        return response

    return reply


refused = rcode(RCODE.REFUSED)
servfail = rcode(RCODE.SERVFAIL)


def wrong_id(catalog: Catalog) -> Behaviour:
    """A server whose replies carry an ID other than the query's."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        response.header.id = (query.header.id + 1) % 65536
        return response

    return reply


def timeouts_then(catalog: Catalog, count: int) -> Behaviour:
    """A server that stays silent for its first `count` queries, then answers."""
    remaining = [count]

    def reply(query: DNSRecord) -> DNSRecord | None:
        if remaining[0] > 0:
            remaining[0] -= 1
            return None
        return answer_query(query, catalog)

    return reply


def with_extra(
    catalog: Catalog, answer: str = "", authority: str = "", additional: str = ""
) -> Behaviour:
    """A server that adds the records in zone-file lines to every reply."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        for record in RR.fromZone(answer) if answer else []:
            response.add_answer(record)
        for record in RR.fromZone(authority) if authority else []:
            response.add_auth(record)
        for record in RR.fromZone(additional) if additional else []:
            response.add_ar(record)
        return response

    return reply


def truncated(catalog: Catalog) -> Behaviour:
    """A server whose replies come with TC=1 and no records, as over UDP
    when they do not fit."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        response.rr, response.auth, response.ar = [], [], []
        response.header.tc = 1
        return response

    return reply


def lowercased(catalog: Catalog) -> Behaviour:
    """A server that echoes the question name in lower case."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        response.q.qname = DNSLabel(str(query.q.qname).lower())
        return response

    return reply


def forged_first(
    catalog: Catalog, forgery: DNSRecord | bytes | None = None
) -> Behaviour:
    """A server whose genuine reply arrives after forged datagrams: one from
    another address, one from another port, one with the wrong ID, and
    `forgery` if given."""

    def reply(query: DNSRecord) -> list[Datagram]:
        genuine = answer_query(query, catalog)
        poisoned = _poisoned(genuine)
        wrong = _poisoned(genuine)
        wrong.header.id = (query.header.id + 1) % 65536
        datagrams = [
            Datagram(poisoned, source="203.0.113.53"),
            Datagram(poisoned, port=9),
            Datagram(wrong),
        ]
        if forgery is not None:
            datagrams.append(Datagram(forgery))
        return [*datagrams, Datagram(genuine)]

    return reply


def _poisoned(reply: DNSRecord) -> DNSRecord:
    forged = DNSRecord.parse(reply.pack())
    for record in forged.rr:
        if record.rtype == QTYPE.A:
            record.rdata = RR.fromZone("x. 60 IN A 203.0.113.66")[0].rdata
    return forged
