"""The stub side of recursion: one RD=1 query, its reply and the cache.

The resolver's recursive and forward modes and a recursing name server
all hand a question to a server that resolves it for them, as a stub
resolver does (RFC 1034 section 5.3.1). Such a server
is trusted for every name, as a forwarder trusts its upstream, but only
the records on the CNAME chain from the query name are used and cached:
whatever else a reply carries is dropped.
"""

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from dnslib import (
    CLASS,
    EDNS0,
    QTYPE,
    RCODE,
    RR,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from .cache import Cache, CacheHit, Credibility, NegativeKind
from .hops import Exchange, hop_event, measure
from .iterator import Clock, Transport
from .names import NameKey, is_subdomain, name_key
from .replies import Outcome, follow_chain
from .trace import CacheEvent, HopEvent
from .trail import (
    SOURCE_CACHE,
    Budget,
    Trail,
    budget_option,
    read_trail,
    trail_request,
)

EDNS_UDP_SIZE = 1232


@dataclass(frozen=True)
class Answer:
    """What one server or the cache gives for a name: the CNAME chain from
    it, then the final RRset or the SOA of a negative answer."""

    rcode: int
    records: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    # The CNAME target that still has to be resolved, when the chain stops.
    next_name: DNSLabel | None = None
    additional: tuple[RR, ...] = ()
    reason: str = ""  # why the rcode is SERVFAIL


@dataclass(frozen=True)
class RecursiveExchange:
    """One exchange with a recursive server, with the hops it reported."""

    exchange: Exchange
    hop: HopEvent
    trail: Trail | None
    # The hop itself, then the hops of the server's trail one level deeper.
    hops: tuple[HopEvent, ...]

    @property
    def reply(self) -> DNSRecord | None:
        return self.exchange.reply


def make_query(
    qname: DNSLabel, qtype: int, budget: Budget, want_trail: bool
) -> DNSRecord:
    """Build an RD=1 query with a random ID and the BUDGET option."""
    query = DNSRecord(
        DNSHeader(id=secrets.randbits(16), rd=1),
        q=DNSQuestion(qname, qtype, CLASS.IN),
    )
    options = [budget_option(budget)]
    if want_trail:
        options.append(trail_request())
    query.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE, opts=options))
    return query


async def ask(
    transport: Transport,
    clock: Clock,
    query: DNSRecord,
    *,
    asker: str,
    server: str,
    address: str,
    port: int,
    timeout: float,
    depth: int,
) -> RecursiveExchange:
    """Send `query` and describe the exchange as hops.

    `server` names the server in the hop unless it is empty, in which case
    the name the server gives in its trail is used, else its address.
    """
    exchange = await measure(transport, query, address, port, timeout, clock)
    trail = None if exchange.reply is None else read_trail(exchange.reply)
    name = server or (trail.server if trail is not None else address)
    cached_by = ""
    if trail is not None and trail.source == SOURCE_CACHE:
        cached_by = trail.server
    detail = ""
    if exchange.reply is not None:
        detail = describe_answer(
            answer_from_reply(exchange.reply, query.q.qname, query.q.qtype)
        )
    hop = hop_event(
        exchange,
        depth=depth,
        asker=asker,
        server=name,
        detail=detail,
        cached_by=cached_by,
        trail_bytes=0 if trail is None else trail.size,
    )
    nested = () if trail is None else trail.hops
    deeper = tuple(dataclasses.replace(h, depth=h.depth + depth + 1) for h in nested)
    return RecursiveExchange(exchange, hop, trail, (hop, *deeper))


def unusable_reason(reply: DNSRecord) -> str | None:
    """Return why a reply from a recursive server cannot be used, or None."""
    header = reply.header
    if header.tc:
        return "truncated reply"
    if header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
        return f"rcode {RCODE.get(header.rcode, header.rcode)}"
    # An authoritative reply is an answer whatever RA says. Without AA and
    # RA the server did not recurse: its reply is a referral at best.
    if not header.ra and not header.aa:
        return "RA=0: the server does not recurse"
    return None


def query_outcome(reply: DNSRecord | None, failure_is_timeout: bool) -> Outcome:
    """Classify an exchange as the iterator's QueryEvents do."""
    if reply is None:
        return Outcome.TIMEOUT if failure_is_timeout else Outcome.ERROR
    if unusable_reason(reply) is not None:
        return Outcome.LAME
    answer = answer_from_reply(reply, reply.q.qname, reply.q.qtype)
    return answer_outcome(answer)


def answer_outcome(answer: Answer) -> Outcome:
    if answer.rcode == RCODE.NXDOMAIN:
        return Outcome.NXDOMAIN
    if answer.next_name is not None:
        return Outcome.CNAME
    if answer.authority or not answer.records:
        return Outcome.NODATA
    return Outcome.ANSWER


def answer_from_reply(reply: DNSRecord, qname: DNSLabel, qtype: int) -> Answer:
    """Take the answer for qname/qtype out of a recursive server's reply."""
    chain, target, final = follow_chain(reply.rr, qname, qtype)
    records = tuple(chain + final)
    soa = _negative_soa(reply.auth, target)
    authority = () if soa is None else (soa,)
    rcode = reply.header.rcode
    if final:
        return Answer(RCODE.NOERROR, records)
    if rcode == RCODE.NXDOMAIN:
        return Answer(RCODE.NXDOMAIN, records, authority)
    if rcode != RCODE.NOERROR:
        return Answer(rcode, records, reason=f"rcode {RCODE.get(rcode, rcode)}")
    if chain and soa is None:
        # The server stopped at a CNAME: the caller resolves the target.
        return Answer(RCODE.NOERROR, records, next_name=target)
    return Answer(RCODE.NOERROR, records, authority)


def _negative_soa(authority: Sequence[RR], name: DNSLabel) -> RR | None:
    for rr in authority:
        if rr.rtype == QTYPE.SOA and is_subdomain(name, rr.rname):
            return rr
    return None


def describe_answer(answer: Answer) -> str:
    """Describe an answer in a few words, for the trace."""
    chain = [rr for rr in answer.records if rr.rtype == QTYPE.CNAME]
    final = len(answer.records) - len(chain)
    prefix = f"CNAME to {chain[-1].rdata.label}, " if chain else ""
    outcome = answer_outcome(answer)
    if answer.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
        return answer.reason or str(RCODE.get(answer.rcode, answer.rcode))
    if outcome is Outcome.ANSWER:
        return f"{prefix}answer with {final} record(s)"
    if outcome is Outcome.CNAME:
        return f"CNAME to {answer.next_name}"
    return f"{prefix}{outcome.value}"


def store_answer(
    cache: Cache, answer: Answer, qname: DNSLabel, qtype: int, source: str
) -> list[str]:
    """Cache the RRsets and the negative answer of `answer`.

    Returns one line per entry stored, such as "www.example.com. A, 1
    record(s), TTL 3600 s", for the log.
    """
    stored: list[str] = []
    for rrset in _rrsets(answer.records):
        if cache.store_rrset(rrset, Credibility.ANSWER, source):
            first = rrset[0]
            stored.append(
                f"{first.rname} {QTYPE[first.rtype]}, {len(rrset)} record(s), "
                f"TTL {min(rr.ttl for rr in rrset)} s"
            )
    if not answer.authority or answer.next_name is not None:
        return stored
    chain = [rr for rr in answer.records if rr.rtype == QTYPE.CNAME]
    target = chain[-1].rdata.label if chain else qname
    nxdomain = answer.rcode == RCODE.NXDOMAIN
    kind = NegativeKind.NXDOMAIN if nxdomain else NegativeKind.NODATA
    if cache.store_negative(kind, target, qtype, answer.authority[0], source):
        stored.append(f"{target} {QTYPE[qtype]}, {kind.value}")
    return stored


def _rrsets(records: Sequence[RR]) -> list[list[RR]]:
    groups: dict[tuple[NameKey, int], list[RR]] = {}
    for rr in records:
        groups.setdefault((name_key(rr.rname), rr.rtype), []).append(rr)
    return list(groups.values())


def answer_from_cache(
    cache: Cache, qname: DNSLabel, qtype: int, max_chain: int, depth: int
) -> tuple[Answer, list[CacheEvent]] | None:
    """Answer from the cache alone, following cached CNAMEs.

    Returns None when nothing is cached for `qname`, else the answer and a
    CacheEvent for each name it settles. A chain that leads to a name not
    cached gives an Answer whose next_name is that name. Glue and referral
    data never answer (RFC 2181 section 5.4.1).
    """
    records: list[RR] = []
    events: list[CacheEvent] = []
    name = qname
    for _ in range(max_chain + 1):
        hit = cache.lookup(name, qtype, Credibility.ANSWER)
        if hit is not None and hit.negative is not None:
            outcome = Outcome(hit.negative.value)
            events.append(_event(depth, name, qtype, outcome, outcome.value, hit))
            nxdomain = hit.negative is NegativeKind.NXDOMAIN
            rcode = RCODE.NXDOMAIN if nxdomain else RCODE.NOERROR
            return Answer(rcode, tuple(records), hit.records), events
        if hit is not None:
            records.extend(hit.records)
            detail = f"answer with {len(hit.records)} record(s)"
            events.append(_event(depth, name, qtype, Outcome.ANSWER, detail, hit))
            return Answer(RCODE.NOERROR, tuple(records)), events
        if qtype == QTYPE.CNAME:
            break
        cname = cache.lookup(name, QTYPE.CNAME, Credibility.ANSWER)
        if cname is None or cname.negative is not None:
            break
        target = cname.records[0].rdata.label
        records.extend(cname.records)
        detail = f"CNAME to {target}"
        events.append(_event(depth, name, qtype, Outcome.CNAME, detail, cname))
        name = target
    if not records:
        return None
    return Answer(RCODE.NOERROR, tuple(records), next_name=name), events


def _event(
    depth: int,
    name: DNSLabel,
    qtype: int,
    outcome: Outcome,
    detail: str,
    hit: CacheHit,
) -> CacheEvent:
    return CacheEvent(
        depth, str(name), QTYPE[qtype], outcome, detail, hit.remaining_ttl
    )
