"""Whether cached data still matches its authority (`dns-toy cache stale`).

Each cache entry remembers the address of the server it came from. That
server is asked again, with RD=0, for the entry's name and type, and its
records now are compared with the cached ones: FRESH when they are the
same, STALE when they differ, UNKNOWN when the server gave no usable
reply. Only the record data is compared, not the TTLs. A negative entry
compares as the words NXDOMAIN or NODATA.

STALE here means that the data differs from the authority's. It is not
the "stale data" of RFC 8767, which means expired entries.
"""

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from dnslib import (
    CLASS,
    EDNS0,
    QTYPE,
    RCODE,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from .cache import NXDOMAIN_TYPE, CacheHit, Credibility
from .errors import TransportError, TransportTimeout
from .iterator import EDNS_UDP_SIZE, Transport
from .names import name_key

CHECK_TIMEOUT = 1.0  # seconds to wait for each server
MAX_CONCURRENT_CHECKS = 32


class Freshness(Enum):
    """The verdict of comparing a cache entry with its authority now."""

    FRESH = "FRESH"
    STALE = "STALE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class StalenessReport:
    """One cache entry, what its source server returns now, and the verdict."""

    hit: CacheHit
    freshness: Freshness
    # The source's data now, in the form of `cached_values`; empty when
    # the freshness is UNKNOWN.
    authority: tuple[str, ...]
    detail: str = ""  # why the freshness is UNKNOWN


def cached_values(hit: CacheHit) -> tuple[str, ...]:
    """Return the entry's record data as sorted text, or its negative kind."""
    if hit.negative is not None:
        return (hit.negative.value,)
    return tuple(sorted(str(record.rdata) for record in hit.records))


def authority_values(reply: DNSRecord, hit: CacheHit) -> tuple[str, ...] | None:
    """Return what `reply` holds for the entry's name and type, or None.

    The records are looked for in the answer, then the authority, then the
    additional section, because a parent server returns a delegation's NS
    RRset in the authority section and its glue in the additional one.
    None means the reply settles nothing: a non-authoritative reply without
    the records, or an rcode other than NOERROR and NXDOMAIN.
    """
    if reply.header.rcode == RCODE.NXDOMAIN:
        return ("NXDOMAIN",)
    if reply.header.rcode != RCODE.NOERROR:
        return None
    key = (name_key(hit.entry.name), hit.entry.rtype)
    for section in (reply.rr, reply.auth, reply.ar):
        found = [rr for rr in section if (name_key(rr.rname), rr.rtype) == key]
        if found:
            return tuple(sorted(str(rr.rdata) for rr in found))
    if reply.header.aa:
        return ("NODATA",)
    return None


async def check_hit(
    hit: CacheHit, transport: Transport, port: int, timeout: float = CHECK_TIMEOUT
) -> StalenessReport:
    """Ask the entry's source server for its data now, and compare."""
    query = _make_query(*_question_for(hit))
    source = hit.entry.source
    try:
        reply = await transport.query(query, source, port, timeout)
    except TransportTimeout:
        return _unknown(hit, f"no reply from {source} within {timeout:g} s")
    except TransportError as exc:
        return _unknown(hit, f"query to {source} failed: {exc}")
    values = authority_values(reply, hit)
    if values is None:
        rcode = RCODE.get(reply.header.rcode, str(reply.header.rcode))
        return _unknown(hit, f"{source} gave no authoritative answer ({rcode})")
    fresh = values == cached_values(hit)
    return StalenessReport(hit, Freshness.FRESH if fresh else Freshness.STALE, values)


async def check_hits(
    hits: Sequence[CacheHit],
    transport: Transport,
    port: int,
    timeout: float = CHECK_TIMEOUT,
) -> list[StalenessReport]:
    """Check every entry, at most MAX_CONCURRENT_CHECKS at a time, in order."""
    limit = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)

    async def check(hit: CacheHit) -> StalenessReport:
        async with limit:
            return await check_hit(hit, transport, port, timeout)

    return list(await asyncio.gather(*(check(hit) for hit in hits)))


def _question_for(hit: CacheHit) -> tuple[DNSLabel, int]:
    entry = hit.entry
    if entry.rtype == NXDOMAIN_TYPE:
        # An NXDOMAIN entry covers every type, so any type tests the name.
        return entry.name, QTYPE.A
    if entry.credibility is Credibility.GLUE and entry.glue_for:
        # A parent server sends glue only with the referral it belongs to,
        # so the delegation is asked for again.
        zone = min(entry.glue_for)
        return DNSLabel(list(zone)), QTYPE.NS
    return entry.name, entry.rtype


def _unknown(hit: CacheHit, detail: str) -> StalenessReport:
    return StalenessReport(hit, Freshness.UNKNOWN, (), detail)


def _make_query(name: DNSLabel, qtype: int) -> DNSRecord:
    # RD=0: the source is asked for its own data, never to recurse.
    header = DNSHeader(id=secrets.randbits(16), rd=0)
    query = DNSRecord(header, q=DNSQuestion(name, qtype, CLASS.IN))
    query.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
    return query
