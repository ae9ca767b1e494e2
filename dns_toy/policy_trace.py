"""Trace events of the resolver's policies: retries, penalties, skips,
lameness, TCP after truncation, QNAME minimisation, failures and stale
data served from the cache.

Each event describes itself in one line. `trace.describe_event` calls
`describe` for these, so the trace shows them like every other step.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyEvent:
    """The policies a resolution runs under: the first line of its trace."""

    depth: int
    policies: str

    def describe(self) -> str:
        return f"policies: {self.policies}"


@dataclass(frozen=True)
class RetryEvent:
    """Another try at the same address after a timeout."""

    depth: int
    server: str
    address: str
    retry: int  # 1 for the first retry
    retries: int
    timeout_ms: float

    def describe(self) -> str:
        return (
            f"retry {self.retry} of {self.retries} to {self.server} "
            f"({self.address}) after a timeout, waiting {self.timeout_ms:.0f} ms"
        )


@dataclass(frozen=True)
class PenaltyEvent:
    """An address penalised after a timeout or transport error."""

    depth: int
    address: str
    srtt_ms: float
    failures: int  # in a row
    hold_down_s: float | None  # set when the address is now held down

    def describe(self) -> str:
        text = (
            f"penalise {self.address}: SRTT now {self.srtt_ms:.0f} ms, "
            f"{self.failures} failure(s) in a row"
        )
        if self.hold_down_s is not None:
            text += f", held down for {self.hold_down_s:.0f} s"
        return text


@dataclass(frozen=True)
class SkipEvent:
    """A server address left out because it is held down or lame."""

    depth: int
    zone: str
    server: str
    address: str
    reason: str
    remaining_s: float

    def describe(self) -> str:
        return (
            f"skip {self.server} ({self.address}) for zone {self.zone}: "
            f"{self.reason}, {self.remaining_s:.0f} s left"
        )


@dataclass(frozen=True)
class LameEvent:
    """A server address marked lame for one zone."""

    depth: int
    zone: str
    server: str
    address: str
    reason: str
    duration_s: float

    def describe(self) -> str:
        return (
            f"mark {self.server} ({self.address}) lame for zone {self.zone} "
            f"for {self.duration_s:.0f} s: {self.reason}"
        )


@dataclass(frozen=True)
class TruncatedEvent:
    """A UDP reply with TC=1, so the query goes again over TCP."""

    depth: int
    server: str
    address: str
    rtt_ms: float

    def describe(self) -> str:
        return (
            f"truncated reply (TC=1) from {self.server} ({self.address}) "
            f"after {self.rtt_ms:.1f} ms: asking again over TCP"
        )


@dataclass(frozen=True)
class MinimisationEvent:
    """A minimised query that failed, so the full name is sent instead."""

    depth: int
    zone: str
    name: str
    reason: str

    def describe(self) -> str:
        return (
            f"QNAME minimisation: {self.reason} for {self.name} at zone "
            f"{self.zone}, asking with the full name"
        )


@dataclass(frozen=True)
class CachedFailureEvent:
    """A question answered SERVFAIL from the cache of recent failures."""

    depth: int
    qname: str
    qtype: str
    reason: str
    remaining_s: float

    def describe(self) -> str:
        return (
            f"{self.qname} {self.qtype} from cache: SERVFAIL ({self.reason}), "
            f"{self.remaining_s:.0f} s left"
        )


@dataclass(frozen=True)
class StaleEvent:
    """Expired data served because every authority failed (RFC 8767)."""

    depth: int
    qname: str
    qtype: str
    reason: str
    ttl: int

    def describe(self) -> str:
        return (
            f"{self.qname} {self.qtype}: serving stale data with TTL "
            f"{self.ttl} s because {self.reason}"
        )


PolicyTraceEvent = (
    PolicyEvent
    | RetryEvent
    | PenaltyEvent
    | SkipEvent
    | LameEvent
    | TruncatedEvent
    | MinimisationEvent
    | CachedFailureEvent
    | StaleEvent
)

POLICY_EVENT_TYPES = (
    PolicyEvent,
    RetryEvent,
    PenaltyEvent,
    SkipEvent,
    LameEvent,
    TruncatedEvent,
    MinimisationEvent,
    CachedFailureEvent,
    StaleEvent,
)
