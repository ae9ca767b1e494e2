"""Trace events: what a resolution did, step by step.

The resolver records one event for each query, cache hit, start of a walk,
nested lookup and failure. `describe_event` turns an event into the line
that `dns-toy resolve --trace` prints and the resolver logs at DEBUG.
"""

from dataclasses import dataclass

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


TraceEvent = QueryEvent | CacheEvent | StartEvent | NestedLookupEvent | FailureEvent


def describe_event(event: TraceEvent) -> str:
    """Describe one trace event in one line, without indentation."""
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
    return f"{event.qname} {event.qtype} failed: {event.reason}"
