"""Answers from expired cache data, for serve-stale (RFC 8767).

When every authority for a question has failed, and the cache still holds
expired data for it within its stale window, that data is answered with a
TTL of 30 s instead of SERVFAIL. The failure itself is cached for 30 s
(`Cache.store_failure`), so the authorities are asked again no more often
than that, and in between the stale data is answered at once.

NOTE: only the question asked is served stale. Nested lookups of name
server addresses and the delegations used on the way down need live data.
RFC 8767's client response timer (answering stale data while a slow
refresh still runs) is not implemented.
"""

from dataclasses import dataclass

from dnslib import QTYPE, RR, DNSLabel

from .cache import Cache, with_ttl
from .cached_answers import cached_chain
from .policy_trace import StaleEvent
from .resolver_options import STALE_ANSWER_TTL
from .trace import TraceEvent


@dataclass(frozen=True)
class StaleAnswer:
    """Expired data to answer with, and the trace events that explain it."""

    rcode: int
    answer: tuple[RR, ...]
    authority: tuple[RR, ...]
    events: tuple[TraceEvent, ...]


def stale_answer(
    cache: Cache, name: DNSLabel, qtype: int, max_chain: int, reason: str
) -> StaleAnswer | None:
    """Return the stale answer for `name` `qtype`, or None when the cache
    holds no complete one."""
    chain = cached_chain(cache, name, qtype, max_chain, stale=True)
    if chain is None or not chain.complete:
        return None
    ttl = STALE_ANSWER_TTL
    event = StaleEvent(0, str(name), QTYPE[qtype], reason, ttl)
    return StaleAnswer(
        chain.rcode,
        tuple(with_ttl(rr, ttl) for rr in chain.answer),
        tuple(with_ttl(rr, ttl) for rr in chain.authority),
        (*chain.events, event),
    )
