"""Trace events: what a resolution did, step by step.

The resolver records one event for each query, cache hit, start of a walk,
nested lookup and failure. `describe_event` turns an event into the line
that `dns-toy resolve --trace` prints and the resolver logs at DEBUG.
"""

from dataclasses import dataclass

from .policy_trace import POLICY_EVENT_TYPES, PolicyTraceEvent
from .replies import Outcome


@dataclass(frozen=True)
class QueryEvent:
    """One query to a name server and what came back."""

    depth: int  # 0 for the question asked, 1 and more for nested lookups
    zone: str
    server: str
    address: str
    qname: str
    qtype: str
    outcome: Outcome
    detail: str
    rtt_ms: float


@dataclass(frozen=True)
class CacheEvent:
    """A name settled, or a delegation found, from the cache."""

    depth: int
    qname: str
    qtype: str
    outcome: Outcome
    detail: str
    remaining_ttl: int


@dataclass(frozen=True)
class StartEvent:
    """The zone a walk starts from, and where its servers came from."""

    depth: int
    qname: str
    qtype: str
    zone: str
    source: str  # "cache" or "root hints"


@dataclass(frozen=True)
class NestedLookupEvent:
    """A nested resolution for the address of a name server without glue."""

    depth: int
    server: str
    zone: str


@dataclass(frozen=True)
class FailureEvent:
    """Why a name could not be resolved: the reason behind a SERVFAIL."""

    depth: int
    qname: str
    qtype: str
    reason: str


@dataclass(frozen=True)
class HopEvent:
    """One query from one party to a name server, with the reply's header.

    In recursive mode the hops of the recursing servers come back in the
    hop trail of each reply (see dns_toy.trail) and sit one level deeper.
    """

    depth: int
    asker: str
    server: str
    address: str
    qname: str
    qtype: str
    rd: bool  # the RD bit of the query
    rcode: str  # the reply's rcode, or "timeout" or "error" when none came
    aa: bool
    ra: bool
    rtt_ms: float
    sent: int  # bytes of the query
    received: int  # bytes of the reply, hop trail included; 0 without one
    trail_bytes: int = 0  # bytes of the hop trail option in the reply
    cached_by: str = ""  # the server whose cache the answer came from, or ""
    detail: str = ""  # what the reply was, such as "referral to com."
    zone: str = ""  # the zone asked about, in iterative mode


TraceEvent = (
    QueryEvent
    | CacheEvent
    | StartEvent
    | NestedLookupEvent
    | FailureEvent
    | HopEvent
    | PolicyTraceEvent
)


def describe_event(event: TraceEvent) -> str:
    """Describe one trace event in one line, without indentation."""
    if isinstance(event, POLICY_EVENT_TYPES):
        return event.describe()
    if isinstance(event, QueryEvent):
        return (
            f"{event.qname} {event.qtype} to {event.server} ({event.address}), "
            f"zone {event.zone}: {event.detail}, {event.rtt_ms:.1f} ms"
        )
    if isinstance(event, CacheEvent):
        return (
            f"{event.qname} {event.qtype} from cache: {event.detail}, "
            f"TTL {event.remaining_ttl} s left"
        )
    if isinstance(event, StartEvent):
        return (
            f"{event.qname} {event.qtype}: start at zone {event.zone} ({event.source})"
        )
    if isinstance(event, NestedLookupEvent):
        return f"look up {event.server}, a name server of {event.zone} without glue"
    if isinstance(event, HopEvent):
        return describe_hop(event)
    return f"{event.qname} {event.qtype} failed: {event.reason}"


def describe_hop(hop: HopEvent) -> str:
    """Describe who asked whom, the flags, rcode, time and size of one hop.

    The line starts as a QueryEvent's does, with the asker added, so that
    an iterative trace reads as it did before hops were measured.
    """
    asked = f"{hop.qname} {hop.qtype} from {hop.asker} to {hop.server} ({hop.address})"
    if hop.zone:
        asked += f", zone {hop.zone}"
    detail = hop.detail or hop.rcode
    if hop.cached_by:
        detail += f" from the cache of {hop.cached_by}"
    text = f"{asked}: {detail}, {hop.rtt_ms:.1f} ms, RD={int(hop.rd)} -> "
    if not hop.received:
        return text + f"no reply, {hop.sent} bytes sent"
    flags = f"{hop.rcode} AA={int(hop.aa)} RA={int(hop.ra)}"
    return text + f"{flags}, {hop.sent} bytes sent, {hop.received} received"
