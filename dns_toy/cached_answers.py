"""What the resolver reads back from its cache: answers, CNAMEs, negative
answers and the closest cached delegation.

Glue and referral data are never answers (RFC 2181 section 5.4.1), so
answers need Credibility.ANSWER. Glue serves only to reach the delegation
whose referral brought it.
"""

from dataclasses import dataclass

from dnslib import QTYPE, RCODE, RR, DNSLabel

from .cache import Cache, CacheHit, Credibility, NegativeKind
from .delegation import CachedDelegation
from .names import ROOT, NameKey, lineage, name_key
from .replies import Outcome
from .trace import CacheEvent


@dataclass(frozen=True)
class CachedAnswer:
    """The cached data for one name: final, or a CNAME to follow."""

    rcode: int
    answer: tuple[RR, ...]
    authority: tuple[RR, ...]
    next_name: DNSLabel | None
    event: CacheEvent


@dataclass(frozen=True)
class CachedChain:
    """A CNAME chain read from the cache, complete or cut short."""

    rcode: int
    answer: tuple[RR, ...]
    authority: tuple[RR, ...]
    events: tuple[CacheEvent, ...]
    complete: bool  # False when a name of the chain is not cached


def cached_answer(
    cache: Cache, name: DNSLabel, qtype: int, depth: int, *, stale: bool = False
) -> CachedAnswer | None:
    """Return the cached answer, CNAME or negative answer for one name."""
    hit = cache.lookup(name, qtype, Credibility.ANSWER, stale=stale)
    if hit is not None:
        rcode, answer, authority = _sections(hit)
        return CachedAnswer(
            rcode, answer, authority, None, _event(hit, name, qtype, depth)
        )
    if qtype == QTYPE.CNAME:
        return None
    hit = cache.lookup(name, QTYPE.CNAME, Credibility.ANSWER, stale=stale)
    if hit is None or hit.negative is not None:
        return None
    target = hit.records[0].rdata.label
    event = _event(hit, name, qtype, depth)
    return CachedAnswer(RCODE.NOERROR, hit.records, (), target, event)


def cached_chain(
    cache: Cache, name: DNSLabel, qtype: int, max_chain: int, *, stale: bool = False
) -> CachedChain | None:
    """Follow cached CNAMEs from `name`; None when nothing at all is cached.

    A chain that loops or runs past `max_chain` CNAMEs ends incomplete.
    """
    answer: list[RR] = []
    events: list[CacheEvent] = []
    seen: set[NameKey] = set()
    current = name
    for _ in range(max_chain + 1):
        if name_key(current) in seen:
            break
        seen.add(name_key(current))
        found = cached_answer(cache, current, qtype, 0, stale=stale)
        if found is None:
            break
        answer.extend(found.answer)
        events.append(found.event)
        if found.next_name is None:
            return CachedChain(
                found.rcode, tuple(answer), found.authority, tuple(events), True
            )
        current = found.next_name
    if not answer:
        return None
    return CachedChain(RCODE.NOERROR, tuple(answer), (), tuple(events), False)


def cached_delegation(cache: Cache, qname: DNSLabel) -> CachedDelegation | None:
    """Return the deepest cached zone cut above `qname` that has at least
    one usable cached server address, or None."""
    for zone in _ancestors(qname):
        ns_hit = cache.lookup(zone, QTYPE.NS)
        if ns_hit is None or ns_hit.negative is not None:
            continue
        addresses = [
            rr
            for ns in ns_hit.records
            for rr in cached_addresses(cache, ns.rdata.label, zone)
        ]
        if addresses:
            return CachedDelegation(zone, ns_hit.records, tuple(addresses))
    return None


def cached_addresses(cache: Cache, server: DNSLabel, zone: DNSLabel) -> tuple[RR, ...]:
    """Return the cached A records of `server` usable to reach `zone`."""
    # NOTE: servers are reached over IPv4 only, so AAAA glue is not used.
    hit = cache.lookup(server, QTYPE.A, delegation=zone)
    if hit is None or hit.negative is not None:
        return ()
    return hit.records


def _sections(hit: CacheHit) -> tuple[int, tuple[RR, ...], tuple[RR, ...]]:
    if hit.negative is NegativeKind.NXDOMAIN:
        return RCODE.NXDOMAIN, (), hit.records
    if hit.negative is NegativeKind.NODATA:
        return RCODE.NOERROR, (), hit.records
    return RCODE.NOERROR, hit.records, ()


def _event(hit: CacheHit, name: DNSLabel, qtype: int, depth: int) -> CacheEvent:
    if hit.negative is not None:
        outcome = Outcome(hit.negative.value)
        detail = hit.negative.value
    elif hit.entry.rtype == QTYPE.CNAME and qtype != QTYPE.CNAME:
        outcome = Outcome.CNAME
        detail = f"CNAME to {hit.records[0].rdata.label}"
    else:
        outcome = Outcome.ANSWER
        detail = f"answer with {len(hit.records)} record(s)"
    if hit.stale:
        detail += " (stale)"
    return CacheEvent(
        depth, str(name), QTYPE[qtype], outcome, detail, hit.remaining_ttl
    )


def _ancestors(name: DNSLabel) -> list[DNSLabel]:
    """Return `name` and every ancestor up to the root, deepest first."""
    return list(reversed(lineage(name, ROOT))) + [ROOT]
