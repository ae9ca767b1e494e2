"""An in-memory network of fake name servers, for resolver tests.

Each address is served by a Catalog, answered by the real authority code,
or by a behaviour function that acts as a misbehaving server. Time
moves only on the FakeClock: every exchange costs `rtt` seconds and a
silent server costs the full timeout, so retries and TTLs test instantly.
"""

from collections import Counter
from collections.abc import Callable

from dnslib import RCODE, RR, DNSError, DNSRecord

from dns_toy.authority import Catalog, answer_query
from dns_toy.errors import TransportError, TransportTimeout
from dns_toy.zonefile import parse_zone_text

# A behaviour returns the reply, raw bytes to send as the reply, or None
# to stay silent.
Behaviour = Callable[[DNSRecord], DNSRecord | bytes | None]


class FakeClock:
    """A clock that moves only when `advance` is called."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def authority(*zone_texts: str) -> Catalog:
    """Build the catalog of a server that loads the zones `zone_texts`."""
    return Catalog([parse_zone_text(text) for text in zone_texts])


class FakeNetwork:
    """A transport that delivers queries to in-memory servers by address."""

    def __init__(self, clock: FakeClock, rtt: float = 0.002) -> None:
        self.clock = clock
        self.rtt = rtt
        self.servers: dict[str, Catalog | Behaviour] = {}
        self.queries: Counter[str] = Counter()
        # (address, port, qname, qtype name) of every query, in order.
        self.log: list[tuple[str, int, str, str]] = []

    def add(self, address: str, server: Catalog | Behaviour) -> None:
        self.servers[address] = server

    @property
    def total(self) -> int:
        return sum(self.queries.values())

    async def query(
        self, message: DNSRecord, address: str, port: int, timeout: float
    ) -> DNSRecord:
        """Deliver `message` to the server at `address` and return its reply.

        A missing or silent server advances the clock by `timeout` and raises
        TransportTimeout. Raw bytes that do not decode raise TransportError,
        as the real transport does for a malformed reply over TCP.
        """
        received = DNSRecord.parse(message.pack())
        self.queries[address] += 1
        self.log.append((address, port, str(received.q.qname), received.q.qtype))
        server = self.servers.get(address)
        reply = None if server is None else _serve(server, received)
        if reply is None:
            self.clock.advance(timeout)
            raise TransportTimeout(f"no reply from {address} within {timeout:g} s")
        self.clock.advance(self.rtt)
        wire = reply if isinstance(reply, bytes) else reply.pack()
        try:
            return DNSRecord.parse(wire)
        except DNSError as exc:
            raise TransportError(f"malformed reply from {address}: {exc}") from None


def _serve(server: Catalog | Behaviour, query: DNSRecord) -> DNSRecord | bytes | None:
    if isinstance(server, Catalog):
        return answer_query(query, server)
    return server(query)


# Misbehaving servers.


def silent(_query: DNSRecord) -> None:
    """A server that never replies."""


def garbage(query: DNSRecord) -> bytes:
    """A server whose reply has a valid header and nothing else readable."""
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


def with_extra(catalog: Catalog, answer: str = "", additional: str = "") -> Behaviour:
    """A server that adds the records in zone-file lines to every reply."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        for record in RR.fromZone(answer) if answer else []:
            response.add_answer(record)
        for record in RR.fromZone(additional) if additional else []:
            response.add_ar(record)
        return response

    return reply
