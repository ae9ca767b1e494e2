"""Iterative resolution (RFC 1034 section 5.3.3) over an injected transport.

Theory of operation. `Resolver.resolve` answers one question by walking
down the tree of zone cuts. It never opens a socket or reads the time
itself: the transport and the clock are passed in, so the same code runs
over UDP, over the in-memory network of the tests, and under a fake clock.

1. The cache comes first: a cached answer, CNAME or negative answer
   (RFC 2308) settles the name without a query.
2. Otherwise the walk starts at the closest enclosing zone whose NS RRset
   and at least one server address are cached, else at the root hints.
3. The zone's servers are asked in turn. `replies.classify_reply` scrubs
   each reply to the bailiwick of the zone asked and names it: an ANSWER,
   NXDOMAIN or NODATA settles the name, a CNAME restarts step 1 at its
   target, and a REFERRAL moves one zone cut down. A LAME reply, a
   transport error or a second timeout moves on to the next server.
4. When every server of a zone fails, the result is SERVFAIL, never
   NXDOMAIN.

Name servers without glue are found by nested resolutions. A resolution
and all its nested ones share one budget of upstream queries and one
deadline, so a broken or hostile hierarchy costs a bounded amount of work.
"""

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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
from .delegation import (
    CachedDelegation,
    Delegation,
    NameServer,
    RootHints,
    addresses_of,
    delegation_from_hints,
)
from .errors import TransportError, TransportTimeout
from .names import ROOT, NameKey, lineage, name_key
from .replies import Outcome, Referral, Reply, classify_reply, parent_side
from .trace import (
    CacheEvent,
    FailureEvent,
    NestedLookupEvent,
    QueryEvent,
    StartEvent,
    TraceEvent,
    describe_event,
)
from .transport import reply_matches

# The reply classification, trace events and delegations are defined in
# replies, trace and delegation, and are re-exported here for callers of
# this module.
__all__ = [
    "EDNS_UDP_SIZE",
    "CacheEvent",
    "CachedDelegation",
    "Clock",
    "Delegation",
    "FailureEvent",
    "Limits",
    "NameServer",
    "NestedLookupEvent",
    "Outcome",
    "QueryEvent",
    "Referral",
    "Reply",
    "Resolution",
    "Resolver",
    "RootHints",
    "StartEvent",
    "TraceEvent",
    "Transport",
    "classify_reply",
    "describe_event",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# The EDNS UDP payload size that DNS Flag Day 2020 recommends.
EDNS_UDP_SIZE = 1232


class Transport(Protocol):
    """The interface that carries one query to one server and its reply back.

    `query` raises TransportTimeout when no reply came in time, and TransportError
    when the exchange failed in another way.
    """

    async def query(
        self, message: DNSRecord, address: str, port: int, timeout: float
    ) -> DNSRecord: ...


@dataclass(frozen=True)
class Limits:
    """Bounds on the work of one resolution, nested resolutions included."""

    timeout: float = 1.0  # seconds per try
    tries: int = 2  # per server address: a timeout is retried once
    max_queries: int = 100
    max_referrals: int = 16  # zone cuts followed for one name
    max_cname_chain: int = 8
    max_nesting: int = 3  # nested lookups of glueless name servers
    max_time: float = 10.0  # seconds


@dataclass(frozen=True)
class Resolution:
    """The result of resolving one question."""

    qname: DNSLabel
    qtype: int
    rcode: int
    # The CNAME chain from the query name, then the final RRset.
    answer: tuple[RR, ...]
    # The SOA record of a negative answer.
    authority: tuple[RR, ...]
    trace: tuple[TraceEvent, ...]
    queries: int  # upstream queries sent, nested resolutions included
    reason: str = ""  # why the rcode is SERVFAIL


@dataclass(frozen=True)
class _Question:
    """One name and type being resolved, and how deeply it is nested."""

    name: DNSLabel
    qtype: int
    depth: int  # 0 for the question asked, 1 and more for nested lookups

    def at(self, name: DNSLabel) -> "_Question":
        return _Question(name, self.qtype, self.depth)


@dataclass(frozen=True)
class _Result:
    """The result for one name: final, or with a CNAME target still to resolve."""

    rcode: int
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    next_name: DNSLabel | None = None
    reason: str = ""


@dataclass
class _State:
    """Bookkeeping shared by one resolution and its nested resolutions."""

    queries_left: int
    deadline: float
    queries: int = 0
    trace: list[TraceEvent] = field(default_factory=list)
    # Questions being resolved, to stop a nested lookup that needs itself.
    active: set[tuple[NameKey, int]] = field(default_factory=set)


class _ResolutionAborted(Exception):
    """The query budget or the deadline ran out: the whole resolution stops."""


class Resolver:
    """An iterative resolver with a cache, over an injected transport and clock."""

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        root_hints: RootHints,
        server_port: int = 53,
        *,
        cache: Cache | None = None,
        limits: Limits | None = None,
    ) -> None:
        if not root_hints:
            raise ValueError("root hints are empty: the resolver needs at least one")
        self.cache = cache if cache is not None else Cache(clock)
        self.limits = limits if limits is not None else Limits()
        self._transport = transport
        self._clock = clock
        self._port = server_port
        self._hints = delegation_from_hints(root_hints)

    async def resolve(self, qname: DNSLabel | str, qtype: int) -> Resolution:
        """Resolve one question of class IN, from the cache or iteratively."""
        question = _Question(DNSLabel(qname), qtype, 0)
        state = _State(self.limits.max_queries, self._clock() + self.limits.max_time)
        try:
            result = await self._resolve(question, state)
        except _ResolutionAborted as aborted:
            result = self._fail(state, question, str(aborted))
        return _resolution(question, result, state)

    def answer_from_cache(self, qname: DNSLabel | str, qtype: int) -> Resolution | None:
        """Return what the cache alone holds for the question, or None.

        Cached CNAMEs are followed. When a chain leads to a name that is not
        cached, the CNAMEs found so far are returned with rcode NOERROR.
        """
        question = _Question(DNSLabel(qname), qtype, 0)
        state = _State(0, self._clock())
        answer: list[RR] = []
        current = question
        for _ in range(self.limits.max_cname_chain + 1):
            result = self._answer_from_cache(current, state)
            if result is None:
                break
            answer.extend(result.answer)
            if result.next_name is None:
                final = _Result(result.rcode, tuple(answer), result.authority)
                return _resolution(question, final, state)
            current = current.at(result.next_name)
        if not answer:
            return None
        return _resolution(question, _Result(RCODE.NOERROR, tuple(answer)), state)

    def cached_delegation(self, qname: DNSLabel | str) -> CachedDelegation | None:
        """Return the deepest cached zone cut above `qname` that has at least
        one cached server address, or None."""
        for zone in _ancestors(DNSLabel(qname)):
            ns_hit = self.cache.lookup(zone, QTYPE.NS)
            if ns_hit is None or ns_hit.negative is not None:
                continue
            addresses = [
                rr
                for ns in ns_hit.records
                for rr in self._cached_addresses(ns.rdata.label)
            ]
            if addresses:
                return CachedDelegation(zone, ns_hit.records, tuple(addresses))
        return None

    async def _resolve(self, question: _Question, state: _State) -> _Result:
        key = (name_key(question.name), question.qtype)
        if key in state.active:
            return self._fail(state, question, "the lookup depends on its own result")
        state.active.add(key)
        try:
            return await self._follow_cnames(question, state)
        finally:
            state.active.discard(key)

    async def _follow_cnames(self, question: _Question, state: _State) -> _Result:
        answer: list[RR] = []
        current = question
        while True:
            result = await self._resolve_name(current, state)
            answer.extend(result.answer)
            target = result.next_name
            if target is None:
                return _Result(
                    result.rcode, tuple(answer), result.authority, reason=result.reason
                )
            chain = [rr for rr in answer if rr.rtype == QTYPE.CNAME]
            if len(chain) > self.limits.max_cname_chain:
                reason = f"CNAME chain longer than {self.limits.max_cname_chain}"
                return self._fail(state, question, reason)
            owners = {name_key(question.name)} | {name_key(rr.rname) for rr in chain}
            if name_key(target) in owners:
                return self._fail(state, question, f"CNAME loop at {target}")
            current = current.at(target)

    async def _resolve_name(self, question: _Question, state: _State) -> _Result:
        cached = self._answer_from_cache(question, state)
        if cached is not None:
            return cached
        delegation = self._closest_delegation(
            parent_side(question.name, question.qtype)
        )
        start = StartEvent(
            question.depth,
            str(question.name),
            QTYPE[question.qtype],
            str(delegation.zone),
            delegation.source,
        )
        self._record(state, start)
        for _ in range(self.limits.max_referrals + 1):
            found = await self._ask_zone(delegation, question, state)
            if isinstance(found, _Result):
                return found
            delegation = found
        return self._fail(
            state, question, f"more than {self.limits.max_referrals} referrals"
        )

    async def _ask_zone(
        self, delegation: Delegation, question: _Question, state: _State
    ) -> "_Result | Delegation":
        """Ask the servers of one zone in turn until one gives a usable reply.

        Servers with known addresses come first. The others are looked up
        one at a time, only when every server before them failed.
        """
        tried: set[str] = set()
        for server in delegation.servers:
            found = await self._ask_server(
                delegation.zone, server.name, server.addresses, question, state, tried
            )
            if found is not None:
                return found
        for server in delegation.servers:
            if server.addresses:
                continue
            addresses = await self._lookup_addresses(
                server.name, delegation, question, state
            )
            found = await self._ask_server(
                delegation.zone, server.name, addresses, question, state, tried
            )
            if found is not None:
                return found
        reason = f"no server of zone {delegation.zone} gave a usable reply"
        return self._fail(state, question, reason)

    async def _ask_server(
        self,
        zone: DNSLabel,
        server: DNSLabel,
        addresses: Sequence[str],
        question: _Question,
        state: _State,
        tried: set[str],
    ) -> "_Result | Delegation | None":
        for address in addresses:
            if address in tried:
                continue
            tried.add(address)
            reply = await self._query_server(zone, server, address, question, state)
            if reply is not None:
                return self._accept(reply, question, address)
        return None

    async def _query_server(
        self,
        zone: DNSLabel,
        server: DNSLabel,
        address: str,
        question: _Question,
        state: _State,
    ) -> Reply | None:
        """Query one server address and retry a timeout once.

        Returns the classified reply, or None when the server is lame or
        unreachable.
        """

        def record(outcome: Outcome, detail: str, started: float) -> None:
            rtt_ms = (self._clock() - started) * 1000
            event = QueryEvent(
                question.depth,
                str(zone),
                str(server),
                address,
                str(question.name),
                QTYPE[question.qtype],
                outcome,
                detail,
                rtt_ms,
            )
            self._record(state, event)

        for _ in range(self.limits.tries):
            query = _make_query(question.name, question.qtype)
            timeout = self._spend_query(state)
            started = self._clock()
            try:
                response = await self._transport.query(
                    query, address, self._port, timeout
                )
            except TransportTimeout:
                record(Outcome.TIMEOUT, "timeout", started)
                continue
            except TransportError as exc:
                record(Outcome.ERROR, str(exc), started)
                return None
            if not reply_matches(query, response):
                # The genuine reply never came: count it as a timeout.
                record(Outcome.TIMEOUT, "reply with the wrong ID or question", started)
                continue
            reply = classify_reply(response, question.name, question.qtype, zone)
            record(reply.outcome, reply.describe(), started)
            return None if reply.outcome is Outcome.LAME else reply
        return None

    def _spend_query(self, state: _State) -> float:
        """Count one upstream query and return the timeout for it.

        Raises _ResolutionAborted when the budget or the deadline is used up.
        """
        left = state.deadline - self._clock()
        if left <= 0:
            raise _ResolutionAborted(
                f"resolution timed out after {self.limits.max_time:g} s"
            )
        if state.queries_left <= 0:
            raise _ResolutionAborted(
                f"query budget of {self.limits.max_queries} queries used up"
            )
        state.queries_left -= 1
        state.queries += 1
        return min(self.limits.timeout, left)

    async def _lookup_addresses(
        self,
        server: DNSLabel,
        delegation: Delegation,
        question: _Question,
        state: _State,
    ) -> list[str]:
        nested = _Question(server, QTYPE.A, question.depth + 1)
        event = NestedLookupEvent(nested.depth, str(server), str(delegation.zone))
        self._record(state, event)
        if nested.depth > self.limits.max_nesting:
            reason = f"nested lookups deeper than {self.limits.max_nesting}"
            self._fail(state, nested, reason)
            return []
        result = await self._resolve(nested, state)
        return [str(rr.rdata) for rr in result.answer if rr.rtype == QTYPE.A]

    def _accept(
        self, reply: Reply, question: _Question, source: str
    ) -> "_Result | Delegation":
        """Cache what a usable reply carries and turn it into the next step."""
        if reply.referral is not None:
            self._cache_referral(reply.referral, source)
        if reply.outcome is Outcome.REFERRAL:
            assert reply.referral is not None
            return self._delegation_from_referral(reply.referral)

        for rrset in _group_rrsets(reply.answer):
            self.cache.store_rrset(rrset, Credibility.ANSWER, source)
        if reply.outcome is Outcome.CNAME:
            return _Result(RCODE.NOERROR, reply.answer, next_name=reply.target)
        if reply.outcome is Outcome.ANSWER:
            return _Result(RCODE.NOERROR, reply.answer)
        return self._accept_negative(reply, question, source)

    def _accept_negative(
        self, reply: Reply, question: _Question, source: str
    ) -> _Result:
        nxdomain = reply.outcome is Outcome.NXDOMAIN
        kind = NegativeKind.NXDOMAIN if nxdomain else NegativeKind.NODATA
        # After a CNAME chain the negative answer is about the chain's target.
        target = reply.target if reply.target is not None else question.name
        if reply.soa is None:
            # RFC 2308 section 5: without an SOA there is no TTL to cache by.
            authority: tuple[RR, ...] = ()
        else:
            self.cache.store_negative(kind, target, question.qtype, reply.soa, source)
            authority = (reply.soa,)
        rcode = RCODE.NXDOMAIN if nxdomain else RCODE.NOERROR
        return _Result(rcode, reply.answer, authority)

    def _cache_referral(self, referral: Referral, source: str) -> None:
        self.cache.store_rrset(referral.ns, Credibility.AUTHORITY, source)
        for rrset in _group_rrsets(referral.glue):
            self.cache.store_rrset(rrset, Credibility.GLUE, source)

    def _answer_from_cache(self, question: _Question, state: _State) -> _Result | None:
        # RFC 2181 section 5.4.1: glue and referral data are never answers.
        hit = self.cache.lookup(question.name, question.qtype, Credibility.ANSWER)
        if hit is not None:
            self._record_cache_hit(state, question, hit)
            return _result_from_hit(hit)
        if question.qtype == QTYPE.CNAME:
            return None
        hit = self.cache.lookup(question.name, QTYPE.CNAME, Credibility.ANSWER)
        if hit is None or hit.negative is not None:
            return None
        self._record_cache_hit(state, question, hit)
        return _Result(RCODE.NOERROR, hit.records, next_name=hit.records[0].rdata.label)

    def _record_cache_hit(
        self, state: _State, question: _Question, hit: CacheHit
    ) -> None:
        if hit.negative is not None:
            outcome = Outcome(hit.negative.value)
            detail = hit.negative.value
        elif hit.entry.rtype == QTYPE.CNAME and question.qtype != QTYPE.CNAME:
            outcome = Outcome.CNAME
            detail = f"CNAME to {hit.records[0].rdata.label}"
        else:
            outcome = Outcome.ANSWER
            detail = f"answer with {len(hit.records)} record(s)"
        event = CacheEvent(
            question.depth,
            str(question.name),
            QTYPE[question.qtype],
            outcome,
            detail,
            hit.remaining_ttl,
        )
        self._record(state, event)

    def _closest_delegation(self, name: DNSLabel) -> Delegation:
        cached = self.cached_delegation(name)
        if cached is None:
            return self._hints
        servers = []
        for ns in cached.ns:
            server = ns.rdata.label
            addresses = addresses_of(server, cached.addresses)
            servers.append(NameServer(server, addresses))
        return Delegation(cached.zone, tuple(servers), "cache")

    def _delegation_from_referral(self, referral: Referral) -> Delegation:
        servers = []
        for ns in referral.ns:
            server = ns.rdata.label
            known = referral.glue + self._cached_addresses(server)
            servers.append(NameServer(server, addresses_of(server, known)))
        return Delegation(referral.zone, tuple(servers), "referral")

    def _cached_addresses(self, server: DNSLabel) -> tuple[RR, ...]:
        # NOTE: servers are reached over IPv4 only, so AAAA glue is not used.
        hit = self.cache.lookup(server, QTYPE.A)
        if hit is None or hit.negative is not None:
            return ()
        return hit.records

    def _fail(self, state: _State, question: _Question, reason: str) -> _Result:
        event = FailureEvent(
            question.depth, str(question.name), QTYPE[question.qtype], reason
        )
        self._record(state, event)
        return _Result(RCODE.SERVFAIL, reason=reason)

    def _record(self, state: _State, event: TraceEvent) -> None:
        state.trace.append(event)
        log.debug("%s%s", "  " * event.depth, describe_event(event))


def _make_query(name: DNSLabel, qtype: int) -> DNSRecord:
    # A random ID for every query, so that a forged reply has to guess it
    # (RFC 5452), and RD=0 because this resolver follows referrals itself.
    header = DNSHeader(id=secrets.randbits(16), rd=0)
    query = DNSRecord(header, q=DNSQuestion(name, qtype, CLASS.IN))
    query.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
    return query


def _resolution(question: _Question, result: _Result, state: _State) -> Resolution:
    return Resolution(
        question.name,
        question.qtype,
        result.rcode,
        result.answer,
        result.authority,
        tuple(state.trace),
        state.queries,
        result.reason,
    )


def _result_from_hit(hit: CacheHit) -> _Result:
    if hit.negative is NegativeKind.NXDOMAIN:
        return _Result(RCODE.NXDOMAIN, authority=hit.records)
    if hit.negative is NegativeKind.NODATA:
        return _Result(RCODE.NOERROR, authority=hit.records)
    return _Result(RCODE.NOERROR, hit.records)


def _ancestors(name: DNSLabel) -> list[DNSLabel]:
    """Return `name` and every ancestor up to the root, deepest first."""
    return list(reversed(lineage(name, ROOT))) + [ROOT]


def _group_rrsets(records: Sequence[RR]) -> list[list[RR]]:
    groups: dict[tuple[NameKey, int], list[RR]] = {}
    for rr in records:
        groups.setdefault((name_key(rr.rname), rr.rtype), []).append(rr)
    return list(groups.values())
