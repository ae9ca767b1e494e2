"""Delivery of one query to one name server address.

`Delivery.ask` sends the query and waits. A timeout is retried at the
same address with exponential backoff: try n waits timeout * 2**n
seconds, up to the options' cap. With 0 retries delivery is best-effort,
so one lost datagram loses the query. With retries it is at-least-once:
the query is repeated until a reply comes or the tries run out, so a
server may see it more than once. A reply with TC=1 is asked again over
TCP at the same address. A transport error, such as a malformed reply or
an ICMP port unreachable, is not retried: the caller moves to the next
server.

Each reply feeds its round-trip time to `ServerSelection`, and each
timeout or transport error penalises the address there. Every step is
recorded as a trace event.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dnslib import QTYPE, DNSLabel, DNSRecord

from .budget import Budget
from .errors import TransportError, TransportTimeout
from .policy_trace import PenaltyEvent, RetryEvent, TruncatedEvent
from .replies import Outcome, Reply, classify_reply
from .resolver_options import ResolverOptions
from .selection import Candidate, ServerSelection
from .trace import QueryEvent, TraceEvent
from .transport import reply_matches
from .upstream_query import make_query

Clock = Callable[[], float]
Record = Callable[[TraceEvent], None]


class Transport(Protocol):
    """The interface that carries one query to one server and its reply back.

    With `tcp` None the query goes over UDP and again over TCP after TC=1;
    False means UDP only, returning a truncated reply as it is, and True
    TCP only. `exact_case` makes the echoed question name compare
    case-sensitively. `query` raises TransportTimeout when no matching
    reply came in time, and TransportError when the exchange failed in
    another way.
    """

    async def query(
        self,
        message: DNSRecord,
        address: str,
        port: int,
        timeout: float,
        *,
        tcp: bool | None = None,
        exact_case: bool = False,
    ) -> DNSRecord: ...


@dataclass(frozen=True)
class Delivered:
    """A classified reply from one address, with the rcode it carried."""

    reply: Reply
    rcode: int
    address: str


@dataclass(frozen=True)
class ZoneQuery:
    """One question for the servers of one zone, as the trace shows it."""

    zone: DNSLabel
    name: DNSLabel
    qtype: int
    depth: int
    minimised: bool = False  # the name is the question's, cut short


class _Retry(Exception):
    """The try timed out: the next one may go to the same address."""


class Delivery:
    """Sends queries to name server addresses under the delivery options."""

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        port: int,
        options: ResolverOptions,
        selection: ServerSelection,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._port = port
        self._options = options
        self._selection = selection

    async def ask(
        self,
        zone_query: ZoneQuery,
        candidate: Candidate,
        budget: Budget,
        record: Record,
    ) -> Delivered | None:
        """Ask one address, retrying timeouts; None when no usable reply came.

        Raises budget.ResolutionAborted when the budget runs out.
        """
        retries = self._options.retries
        for attempt in range(retries + 1):
            timeout = self._options.retry_timeout(attempt)
            if attempt:
                retry = RetryEvent(
                    zone_query.depth,
                    str(candidate.server),
                    candidate.address,
                    attempt,
                    retries,
                    timeout * 1000,
                )
                record(retry)
            try:
                return await self._try(zone_query, candidate, timeout, budget, record)
            except _Retry:
                continue
        return None

    async def _try(
        self,
        zone_query: ZoneQuery,
        candidate: Candidate,
        timeout: float,
        budget: Budget,
        record: Record,
    ) -> Delivered | None:
        exact_case = self._options.case_randomisation
        query = make_query(zone_query.name, zone_query.qtype, randomise_case=exact_case)
        started = self._clock()

        def trace(outcome: Outcome, detail: str) -> None:
            rtt_ms = (self._clock() - started) * 1000
            event = QueryEvent(
                zone_query.depth,
                str(zone_query.zone),
                str(candidate.server),
                candidate.address,
                str(query.q.qname),
                QTYPE[zone_query.qtype],
                outcome,
                detail,
                rtt_ms,
            )
            record(event)

        try:
            response, over_tcp = await self._exchange(
                query, candidate, timeout, budget, started, record, zone_query.depth
            )
        except TransportTimeout:
            trace(Outcome.TIMEOUT, f"timeout after {timeout * 1000:.0f} ms")
            self._penalise(candidate.address, zone_query.depth, record)
            raise _Retry from None
        except TransportError as exc:
            trace(Outcome.ERROR, str(exc))
            self._penalise(candidate.address, zone_query.depth, record)
            return None

        self._selection.record_reply(candidate.address, self._clock() - started)
        reply = classify_reply(
            response, zone_query.name, zone_query.qtype, zone_query.zone
        )
        trace(reply.outcome, reply.describe() + (" over TCP" if over_tcp else ""))
        return Delivered(reply, response.header.rcode, candidate.address)

    async def _exchange(
        self,
        query: DNSRecord,
        candidate: Candidate,
        timeout: float,
        budget: Budget,
        started: float,
        record: Record,
        depth: int,
    ) -> tuple[DNSRecord, bool]:
        """Send over UDP, then over TCP after TC=1; return the reply and
        whether it came over TCP."""
        exact_case = self._options.case_randomisation
        address = candidate.address
        wait = min(timeout, budget.spend_query(started))
        response = await self._transport.query(
            query, address, self._port, wait, tcp=False, exact_case=exact_case
        )
        # Transports already drop replies that do not match. This check
        # keeps a transport that does not from ending the wait early.
        if not reply_matches(query, response, exact_case=exact_case):
            raise TransportTimeout("reply with the wrong ID or question")
        if not response.header.tc:
            return response, False

        rtt_ms = (self._clock() - started) * 1000
        record(TruncatedEvent(depth, str(candidate.server), address, rtt_ms))
        wait = min(timeout, budget.spend_query(self._clock()))
        response = await self._transport.query(
            query, address, self._port, wait, tcp=True, exact_case=exact_case
        )
        if not reply_matches(query, response, exact_case=exact_case):
            raise TransportError("TCP reply with the wrong ID or question")
        return response, True

    def _penalise(self, address: str, depth: int, record: Record) -> None:
        penalty = self._selection.record_failure(address)
        hold_down = None
        if penalty.held_until is not None:
            hold_down = penalty.held_until - self._clock()
        event = PenaltyEvent(
            depth, address, penalty.srtt * 1000, penalty.failures, hold_down
        )
        record(event)
