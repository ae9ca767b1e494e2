"""Iterative resolution (RFC 1034 section 5.3.3) over an injected transport.

Theory of operation. `Resolver.resolve` answers one question by walking
down the tree of zone cuts. It never opens a socket or reads the time
itself: the transport and the clock are passed in, so the same code runs
over UDP, over the in-memory network of the tests, and under a fake clock.

1. The cache comes first: a cached answer, CNAME or negative answer
   (RFC 2308) settles the name without a query.
2. Otherwise the walk starts at the closest enclosing zone whose NS RRset
   and at least one server address are cached, else at the root hints.
3. The zone's servers are asked in turn. `classify_reply` scrubs each reply
   to the bailiwick of the zone asked and names it: an ANSWER, NXDOMAIN or
   NODATA settles the name, a CNAME restarts step 1 at its target, and a
   REFERRAL moves one zone cut down. A LAME reply, a transport error or a
   second timeout moves on to the next server.
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
from enum import Enum
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
from .names import ROOT, NameKey, is_subdomain, lineage, name_key, parent
from .transport import TransportError, TransportTimeout, reply_matches

log = logging.getLogger(__name__)

Clock = Callable[[], float]
RootHints = Sequence[tuple[str, str]]

# The EDNS UDP payload size that DNS Flag Day 2020 recommends.
EDNS_UDP_SIZE = 1232
ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)


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


class Outcome(Enum):
    """The result of one exchange with a name server or of one cache lookup."""

    ANSWER = "answer"
    CNAME = "CNAME"
    REFERRAL = "referral"
    NXDOMAIN = "NXDOMAIN"
    NODATA = "NODATA"
    LAME = "lame"
    TIMEOUT = "timeout"
    ERROR = "error"


# Classification of replies: pure functions of a reply and the zone asked.


@dataclass(frozen=True)
class Referral:
    """A delegation to a child zone: its NS RRset and in-bailiwick glue."""

    zone: DNSLabel
    ns: tuple[RR, ...]
    glue: tuple[RR, ...]


@dataclass(frozen=True)
class Reply:
    """A reply scrubbed to the bailiwick of the zone asked, and classified."""

    outcome: Outcome
    # The CNAME chain that starts at the query name, then the final RRset.
    answer: tuple[RR, ...] = ()
    # The last name of the chain: the query name when there is no CNAME.
    target: DNSLabel | None = None
    soa: RR | None = None
    referral: Referral | None = None
    reason: str = ""

    def describe(self) -> str:
        """Describe the reply in a few words, for the trace."""
        chain = [rr for rr in self.answer if rr.rtype == QTYPE.CNAME]
        prefix = f"CNAME to {self.target}, " if chain else ""
        if self.outcome is Outcome.ANSWER:
            count = len(self.answer) - len(chain)
            return f"{prefix}answer with {count} record(s)"
        if self.outcome is Outcome.CNAME:
            return f"CNAME to {self.target}"
        if self.outcome is Outcome.REFERRAL and self.referral is not None:
            return f"referral to {self.referral.zone}"
        if self.outcome is Outcome.LAME:
            return f"lame: {self.reason}"
        return f"{prefix}{self.outcome.value}"


def classify_reply(
    reply: DNSRecord, qname: DNSLabel, qtype: int, zone: DNSLabel
) -> Reply:
    """Classify a reply from a server of `zone` to the question qname/qtype.

    Only records at or below `zone` are used, so a server cannot speak for
    names it is not authoritative for. Answers need AA=1. A referral must
    delegate a zone below `zone` that contains the name, and a negative
    answer counts only with AA=1 or an in-bailiwick SOA.
    """
    header = reply.header
    if header.tc:
        return _lame("truncated reply")
    if header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
        return _lame(f"rcode {RCODE.get(header.rcode, header.rcode)}")

    in_zone = [rr for rr in reply.rr if is_subdomain(rr.rname, zone)]
    if reply.rr and not in_zone:
        return _lame(f"answer outside zone {zone}")
    chain, target, final = _follow_chain(in_zone, qname, qtype)
    answer = tuple(chain + final)
    soa = _find_soa(reply.auth, target, zone)
    if final:
        if not header.aa:
            return _lame("answer without AA")
        return Reply(Outcome.ANSWER, answer, target)
    if header.rcode == RCODE.NXDOMAIN:
        if not (header.aa or soa):
            return _lame("NXDOMAIN without AA or SOA")
        return Reply(Outcome.NXDOMAIN, answer, target, soa)
    if chain:
        return _classify_chain_end(header.aa, answer, target, soa, reply, zone, qtype)
    return _classify_no_answer(header.aa, qname, qtype, soa, reply, zone)


def _classify_chain_end(
    aa: int,
    answer: tuple[RR, ...],
    target: DNSLabel,
    soa: RR | None,
    reply: DNSRecord,
    zone: DNSLabel,
    qtype: int,
) -> Reply:
    if not aa:
        return _lame("CNAME without AA")
    # An SOA means the target lies in the server's zone and has no such data.
    if soa is not None:
        return Reply(Outcome.NODATA, answer, target, soa)
    referral = _find_referral(reply, target, qtype, zone)
    return Reply(Outcome.CNAME, answer, target, referral=referral)


def _classify_no_answer(
    aa: int,
    qname: DNSLabel,
    qtype: int,
    soa: RR | None,
    reply: DNSRecord,
    zone: DNSLabel,
) -> Reply:
    if aa and soa is not None:
        return Reply(Outcome.NODATA, (), qname, soa)
    referral = _find_referral(reply, qname, qtype, zone)
    if referral is not None:
        return Reply(Outcome.REFERRAL, (), qname, referral=referral)
    if aa:
        # RFC 2308 section 2.2 NODATA without SOA: valid, but not cacheable.
        return Reply(Outcome.NODATA, (), qname)
    cuts = {str(rr.rname) for rr in reply.auth if rr.rtype == QTYPE.NS}
    if cuts:
        return _lame(f"referral to {', '.join(sorted(cuts))} does not lead down")
    return _lame("no answer, referral or SOA")


def _lame(reason: str) -> Reply:
    return Reply(Outcome.LAME, reason=reason)


def _follow_chain(
    records: list[RR], qname: DNSLabel, qtype: int
) -> tuple[list[RR], DNSLabel, list[RR]]:
    """Follow CNAMEs from `qname` through `records`.

    Returns the CNAMEs followed, the name reached and the records of type
    `qtype` there (empty when the chain ends without them or loops).
    """
    chain: list[RR] = []
    name = qname
    seen: set[NameKey] = set()
    while name_key(name) not in seen:
        seen.add(name_key(name))
        owned = [rr for rr in records if name_key(rr.rname) == name_key(name)]
        final = [rr for rr in owned if rr.rtype == qtype or qtype == QTYPE.ANY]
        if final:
            return chain, name, final
        cname = next((rr for rr in owned if rr.rtype == QTYPE.CNAME), None)
        if cname is None:
            break
        chain.append(cname)
        name = cname.rdata.label
    return chain, name, []


def _find_soa(authority: list[RR], name: DNSLabel, zone: DNSLabel) -> RR | None:
    # The SOA of a negative answer is the apex of a zone that contains the
    # name, and the server must be authoritative for it.
    for rr in authority:
        if (
            rr.rtype == QTYPE.SOA
            and is_subdomain(rr.rname, zone)
            and is_subdomain(name, rr.rname)
        ):
            return rr
    return None


def _find_referral(
    reply: DNSRecord, name: DNSLabel, qtype: int, zone: DNSLabel
) -> Referral | None:
    """Return the deepest delegation below `zone` that contains `name`.

    For a DS question a cut at `name` itself does not count, because the DS
    RRset lives on the parent side of the cut.
    """
    lowest = _parent_side(name, qtype)
    cuts = [
        rr
        for rr in reply.auth
        if rr.rtype == QTYPE.NS
        and is_subdomain(lowest, rr.rname)
        and is_subdomain(rr.rname, zone)
        and name_key(rr.rname) != name_key(zone)
    ]
    if not cuts:
        return None
    child = max(cuts, key=lambda rr: len(rr.rname.label)).rname
    ns = tuple(rr for rr in cuts if name_key(rr.rname) == name_key(child))
    servers = {name_key(rr.rdata.label) for rr in ns}
    # Glue is used only for the delegation's own NS names and only when it
    # lies inside the zone of the server that sent it (RFC 2181 section
    # 5.4.1): in-domain glue and sibling glue such as the root's for
    # a.gtld-servers.net, never addresses for names the server is not
    # authoritative for.
    glue = tuple(
        rr
        for rr in reply.ar
        if rr.rtype in ADDRESS_TYPES
        and name_key(rr.rname) in servers
        and is_subdomain(rr.rname, zone)
    )
    return Referral(child, ns, glue)


# Trace events: what a resolution did, step by step.


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


# The resolver.


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
class NameServer:
    name: DNSLabel
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Delegation:
    """A zone and the servers to ask about it."""

    zone: DNSLabel
    servers: tuple[NameServer, ...]
    source: str


@dataclass(frozen=True)
class CachedDelegation:
    """The closest cached zone cut: NS RRset and server addresses, remaining
    TTLs applied."""

    zone: DNSLabel
    ns: tuple[RR, ...]
    addresses: tuple[RR, ...]


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
        self._hints = _delegation_from_hints(root_hints)

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
            _parent_side(question.name, question.qtype)
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
            addresses = _addresses_of(server, cached.addresses)
            servers.append(NameServer(server, addresses))
        return Delegation(cached.zone, tuple(servers), "cache")

    def _delegation_from_referral(self, referral: Referral) -> Delegation:
        servers = []
        for ns in referral.ns:
            server = ns.rdata.label
            known = referral.glue + self._cached_addresses(server)
            servers.append(NameServer(server, _addresses_of(server, known)))
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


def _delegation_from_hints(hints: RootHints) -> Delegation:
    addresses: dict[NameKey, list[str]] = {}
    names: dict[NameKey, DNSLabel] = {}
    for server, address in hints:
        label = DNSLabel(server)
        names.setdefault(name_key(label), label)
        addresses.setdefault(name_key(label), []).append(address)
    servers = tuple(
        NameServer(names[key], tuple(found)) for key, found in addresses.items()
    )
    return Delegation(ROOT, servers, "root hints")


def _addresses_of(server: DNSLabel, records: Sequence[RR]) -> tuple[str, ...]:
    found: list[str] = []
    for rr in records:
        if rr.rtype != QTYPE.A or name_key(rr.rname) != name_key(server):
            continue
        address = str(rr.rdata)
        if address not in found:
            found.append(address)
    return tuple(found)


def _parent_side(name: DNSLabel, qtype: int) -> DNSLabel:
    """Return the deepest name whose zone can hold `qtype` at `name`."""
    if qtype == QTYPE.DS and name.label:
        return parent(name)
    return name


def _ancestors(name: DNSLabel) -> list[DNSLabel]:
    """Return `name` and every ancestor up to the root, deepest first."""
    return list(reversed(lineage(name, ROOT))) + [ROOT]


def _group_rrsets(records: Sequence[RR]) -> list[list[RR]]:
    groups: dict[tuple[NameKey, int], list[RR]] = {}
    for rr in records:
        groups.setdefault((name_key(rr.rname), rr.rtype), []).append(rr)
    return list(groups.values())
