"""Measured exchanges: the hop events of a trace and its summary line.

Every query a resolver sends, in any mode, becomes a trace.HopEvent with
the query's RD bit, the reply's rcode, AA and RA bits, the round-trip time
and the size of both messages. The iterative resolver talks to its
transport directly, so `RecordingTransport` measures its queries and
`MeasuredResolver` puts a HopEvent after each of the iterator's
QueryEvents. `summarize` adds up a trace, so that iterative, recursive and
forwarded resolutions of one name compare side by side.

NOTE: sizes are those of the messages as dnslib packs them. The transport
does not report the bytes it read, but a reply packed by a dnslib server
packs back to the same length.
"""

import contextvars
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dnslib import QTYPE, RCODE, DNSLabel, DNSRecord

from .cache import Cache
from .errors import TransportError, TransportTimeout
from .iterator import Clock, Resolution, Resolver, Transport
from .names import name_key
from .trace import CacheEvent, HopEvent, QueryEvent, TraceEvent, describe_event

log = logging.getLogger(__name__)

# The exchanges of the resolution running in the current asyncio task.
_RECORDED: contextvars.ContextVar[list["Exchange"] | None] = contextvars.ContextVar(
    "dns_toy_recorded_exchanges", default=None
)


@dataclass(frozen=True)
class Exchange:
    """One query sent to one server address and what came back, measured."""

    address: str
    query: DNSRecord
    reply: DNSRecord | None
    failure: TransportError | None  # set when no usable reply came
    rtt_ms: float
    sent: int
    received: int

    @property
    def rcode(self) -> str:
        if self.reply is not None:
            return rcode_name(self.reply.header.rcode)
        if isinstance(self.failure, TransportTimeout):
            return "timeout"
        return "error"


def rcode_name(code: int) -> str:
    return str(RCODE.get(code, f"RCODE{code}"))


async def measure(
    transport: Transport,
    query: DNSRecord,
    address: str,
    port: int,
    timeout: float,
    clock: Clock,
    *,
    tcp: bool | None = None,
    exact_case: bool = False,
) -> Exchange:
    """Send `query` and return the measured exchange.

    A timeout or transport error does not raise: it is returned in
    Exchange.failure, with no reply. `tcp` and `exact_case` go to the
    transport unchanged.
    """
    sent = len(query.pack())
    started = clock()
    try:
        reply = await transport.query(
            query, address, port, timeout, tcp=tcp, exact_case=exact_case
        )
    except TransportError as exc:
        rtt_ms = (clock() - started) * 1000
        return Exchange(address, query, None, exc, rtt_ms, sent, 0)
    rtt_ms = (clock() - started) * 1000
    return Exchange(address, query, reply, None, rtt_ms, sent, len(reply.pack()))


def hop_event(
    exchange: Exchange,
    *,
    depth: int,
    asker: str,
    server: str,
    detail: str = "",
    cached_by: str = "",
    trail_bytes: int = 0,
    zone: str = "",
) -> HopEvent:
    """Build the HopEvent of one measured exchange."""
    question = exchange.query.q
    header = exchange.reply.header if exchange.reply is not None else None
    return HopEvent(
        depth=depth,
        asker=asker,
        server=server,
        address=exchange.address,
        qname=str(question.qname),
        qtype=str(QTYPE.get(question.qtype, f"TYPE{question.qtype}")),
        rd=bool(exchange.query.header.rd),
        rcode=exchange.rcode,
        aa=bool(header is not None and header.aa),
        ra=bool(header is not None and header.ra),
        rtt_ms=exchange.rtt_ms,
        sent=exchange.sent,
        received=exchange.received,
        trail_bytes=trail_bytes,
        cached_by=cached_by,
        detail=detail,
        zone=zone,
    )


class RecordingTransport:
    """A transport that measures each exchange of the resolution in progress."""

    def __init__(self, transport: Transport, clock: Clock) -> None:
        self._transport = transport
        self._clock = clock

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
        """Forward to the wrapped transport; raise as it does."""
        exchange = await measure(
            self._transport,
            message,
            address,
            port,
            timeout,
            self._clock,
            tcp=tcp,
            exact_case=exact_case,
        )
        recorded = _RECORDED.get()
        if recorded is not None:
            recorded.append(exchange)
        if exchange.failure is not None:
            raise exchange.failure
        assert exchange.reply is not None
        return exchange.reply


class MeasuredResolver(Resolver):
    """The iterative Resolver, with a HopEvent in its trace for each query."""

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        root_hints: Sequence[tuple[str, str]],
        server_port: int = 53,
        *,
        name: str = "resolver",
        cache: Cache | None = None,
        **options: Any,
    ) -> None:
        recording = RecordingTransport(transport, clock)
        super().__init__(
            recording, clock, root_hints, server_port, cache=cache, **options
        )
        self.name = name
        self._measure_clock = clock

    async def resolve(self, qname: DNSLabel | str, qtype: int) -> Resolution:
        """Resolve as Resolver.resolve does, and log the hops and the summary
        at DEBUG once the resolution is done."""
        exchanges: list[Exchange] = []
        token = _RECORDED.set(exchanges)
        started = self._measure_clock()
        try:
            resolution = await super().resolve(qname, qtype)
        finally:
            _RECORDED.reset(token)
        trace = with_hops(resolution.trace, exchanges, self.name)
        resolution = dataclasses.replace(resolution, trace=trace)
        elapsed_ms = (self._measure_clock() - started) * 1000
        if log.isEnabledFor(logging.DEBUG):
            for event in trace:
                if isinstance(event, HopEvent):
                    log.debug("%s%s", "  " * event.depth, describe_event(event))
        log_summary(resolution, self.name, elapsed_ms)
        return resolution


def with_hops(
    trace: Sequence[TraceEvent], exchanges: Sequence[Exchange], asker: str
) -> tuple[TraceEvent, ...]:
    """Insert after each QueryEvent of `trace` the HopEvent of its exchange.

    The QueryEvents stay, because counters such as the resolver's stats
    read them. Exchanges are matched in order by address, name and type,
    and a QueryEvent without a match gets no HopEvent.
    """
    unused = list(exchanges)
    merged: list[TraceEvent] = []
    for event in trace:
        merged.append(event)
        if not isinstance(event, QueryEvent):
            continue
        found = next((x for x in unused if _matches(x, event)), None)
        if found is None:
            continue
        unused.remove(found)
        hop = hop_event(
            found,
            depth=event.depth,
            asker=asker,
            server=event.server,
            detail=event.detail,
            zone=event.zone,
        )
        merged.append(hop)
    return tuple(merged)


def shown_events(trace: Sequence[TraceEvent]) -> list[TraceEvent]:
    """Return the events to print: a QueryEvent directly followed by its
    HopEvent is left out, because the HopEvent carries all its fields."""
    shown: list[TraceEvent] = []
    for index, event in enumerate(trace):
        following = trace[index + 1] if index + 1 < len(trace) else None
        if (
            isinstance(event, QueryEvent)
            and isinstance(following, HopEvent)
            and following.address == event.address
            and following.qname == event.qname
        ):
            continue
        shown.append(event)
    return shown


def _matches(exchange: Exchange, event: QueryEvent) -> bool:
    question = exchange.query.q
    return (
        exchange.address == event.address
        and name_key(question.qname) == name_key(DNSLabel(event.qname))
        and QTYPE.get(question.qtype, "") == event.qtype
    )


@dataclass(frozen=True)
class Summary:
    """The totals of one resolution's trace."""

    queries: int  # queries the resolver sent itself
    sent: int  # bytes of those queries
    received: int  # bytes of their replies, hop trails left out
    trail_bytes: int  # bytes of hop trails in those replies
    chain_queries: int  # queries sent by every party, the resolver included
    chain_sent: int
    chain_received: int  # hop trails left out
    cache_hits: int
    caches: tuple[str, ...]  # the caches that answers came from, in order
    elapsed_ms: float


def summarize(trace: Sequence[TraceEvent], asker: str, elapsed_ms: float) -> Summary:
    """Add up the hops and cache hits of a trace whose resolver is `asker`.

    Reply sizes leave the hop trails out, because a recursive chain without
    tracing would not carry them. Their bytes are counted apart.
    """
    hops = [event for event in trace if isinstance(event, HopEvent)]
    own = [hop for hop in hops if hop.asker == asker]
    caches = [asker for event in trace if isinstance(event, CacheEvent)]
    caches.extend(hop.cached_by for hop in hops if hop.cached_by)
    return Summary(
        queries=len(own),
        sent=sum(hop.sent for hop in own),
        received=sum(hop.received - hop.trail_bytes for hop in own),
        trail_bytes=sum(hop.trail_bytes for hop in own),
        chain_queries=len(hops),
        chain_sent=sum(hop.sent for hop in hops),
        chain_received=sum(hop.received - hop.trail_bytes for hop in hops),
        cache_hits=len(caches),
        caches=tuple(caches),
        elapsed_ms=elapsed_ms,
    )


def describe_summary(summary: Summary, asker: str) -> str:
    """Describe a summary in one line, for the trace and the DEBUG log."""
    text = (
        f"summary: {asker} sent {_plural(summary.queries, 'query', 'queries')} "
        f"({summary.sent} bytes) and received {summary.received} bytes"
    )
    if summary.trail_bytes:
        text += f" plus {summary.trail_bytes} bytes of hop trail"
    if summary.chain_queries != summary.queries:
        text += (
            f"; the whole chain sent {summary.chain_queries} queries "
            f"({summary.chain_sent} bytes) and received "
            f"{summary.chain_received} bytes"
        )
    text += f"; {summary.elapsed_ms:.1f} ms in all"
    text += f"; {_plural(summary.cache_hits, 'cache hit', 'cache hits')}"
    if summary.caches:
        text += f" ({', '.join(summary.caches)})"
    return text


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def trace_lines(resolution: Resolution, asker: str, elapsed_ms: float) -> list[str]:
    """Return the text trace of a resolution: one line per event, indented
    by depth, then the summary line."""
    events = shown_events(resolution.trace)
    lines = ["  " * event.depth + describe_event(event) for event in events]
    summary = summarize(resolution.trace, asker, elapsed_ms)
    lines.append(describe_summary(summary, asker))
    return lines


def log_summary(resolution: Resolution, asker: str, elapsed_ms: float) -> None:
    """Log the summary line of a resolution at DEBUG."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    summary = summarize(resolution.trace, asker, elapsed_ms)
    log.debug(
        "%s %s: %s",
        resolution.qname,
        QTYPE.get(resolution.qtype, resolution.qtype),
        describe_summary(summary, asker),
    )
