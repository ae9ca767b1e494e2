"""Iterative resolution (RFC 1034 section 5.3.3) over an injected transport.

Theory of operation. `Resolver.resolve` answers one question by walking
down the tree of zone cuts. It never opens a socket or reads the time
itself: the transport and the clock are passed in, so the same code runs
over UDP, over the in-memory network of the tests, and under a fake clock.

1. The cache comes first: a cached answer, CNAME or negative answer
   (RFC 2308) settles the name without a query. A question that failed
   in the last 30 s fails again at once (RFC 2308 section 7).
2. Otherwise the walk starts at the closest enclosing zone whose NS RRset
   and at least one usable server address are cached, else at the root
   hints.
3. The zone's servers are asked in the order of the selection policy
   (`selection`), each with the retries of `delivery`.
   `replies.classify_reply` scrubs each reply to the bailiwick of the
   zone asked and names it: an ANSWER, NXDOMAIN or NODATA settles the
   name, a CNAME restarts step 1 at its target, and a REFERRAL moves one
   zone cut down. A LAME reply marks the server lame for the zone, and
   the next server is asked, as after a transport error or the last
   timeout. With QNAME minimisation (`minimisation`) the names sent are
   cut short until the last zone.
4. When every server of a zone fails, the result is SERVFAIL, never
   NXDOMAIN. The failure is cached for 30 s, and with serve-stale
   (RFC 8767) expired data is answered instead when the cache has it.

Name servers without glue are found by nested resolutions. A resolution
and all its nested ones share one budget of upstream queries and one
deadline, so a broken or hostile hierarchy costs a bounded amount of work.
"""

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, DNSLabel

from . import cached_answers
from .budget import Budget, ResolutionAborted
from .cache import (
    Cache,
    Credibility,
    FailureHit,
    NegativeKind,
    group_rrsets,
    normalised_ttls,
)
from .delegation import (
    CachedDelegation,
    Delegation,
    NameServer,
    RootHints,
    delegation_from_cache,
    delegation_from_hints,
    delegation_from_referral,
)
from .delivery import Delivered, Delivery, Transport, ZoneQuery
from .minimisation import MAX_MINIMISE_COUNT, QnameMinimiser
from .names import NameKey, name_key
from .policy_trace import CachedFailureEvent, MinimisationEvent, PolicyEvent
from .replies import Outcome, Referral, Reply, classify_reply, parent_side
from .resolver_options import ResolverOptions
from .selection import ServerSelection
from .stale_answers import stale_answer
from .trace import (
    CacheEvent,
    FailureEvent,
    NestedLookupEvent,
    QueryEvent,
    StartEvent,
    TraceEvent,
    describe_event,
)
from .upstream_query import EDNS_UDP_SIZE
from .zone_servers import ZoneServers

# The reply classification, trace events, delegations and the transport
# interface are defined in replies, trace, delegation and delivery, and
# are re-exported here for callers of this module.
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
    "ResolverOptions",
    "RootHints",
    "StartEvent",
    "TraceEvent",
    "Transport",
    "classify_reply",
    "describe_event",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limits:
    """Bounds on the work of one resolution, nested resolutions included."""

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

    budget: Budget
    trace: list[TraceEvent] = field(default_factory=list)
    # Questions being resolved, to stop a nested lookup that needs itself.
    active: set[tuple[NameKey, int]] = field(default_factory=set)


class Resolver:
    """An iterative resolver with a cache, over an injected transport and clock.

    `rng` drives the random selection policy, so tests can seed it.
    """

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        root_hints: RootHints,
        server_port: int = 53,
        *,
        cache: Cache | None = None,
        limits: Limits | None = None,
        options: ResolverOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not root_hints:
            raise ValueError("root hints are empty: the resolver needs at least one")
        self.options = options if options is not None else ResolverOptions()
        self.cache = cache if cache is not None else self.options.new_cache(clock)
        self.limits = limits if limits is not None else Limits()
        self.selection = ServerSelection(self.options.selection, clock, rng)
        delivery = Delivery(transport, clock, server_port, self.options, self.selection)
        self._zone_servers = ZoneServers(self.selection, delivery, clock)
        self._clock = clock
        self._hints = delegation_from_hints(root_hints)
        log.debug("resolver policies: %s", self.options.describe())

    async def resolve(self, qname: DNSLabel | str, qtype: int) -> Resolution:
        """Resolve one question of class IN, from the cache or iteratively."""
        question = _Question(DNSLabel(qname), qtype, 0)
        budget = Budget(
            self.limits.max_queries,
            self.limits.max_time,
            self._clock() + self.limits.max_time,
        )
        state = _State(budget)
        # Recorded without logging: the policies are logged once, above.
        state.trace.append(PolicyEvent(0, self.options.describe()))
        failure = self.cache.lookup_failure(question.name, qtype)
        if failure is not None and not self._is_cached(question):
            result = self._recent_failure(question, state, failure)
        else:
            result = await self._resolve_fresh(question, state)
        return _resolution(question, result, state)

    def answer_from_cache(self, qname: DNSLabel | str, qtype: int) -> Resolution | None:
        """Return what the cache alone holds for the question, or None.

        Cached CNAMEs are followed. When a chain leads to a name that is not
        cached, the CNAMEs found so far are returned with rcode NOERROR.
        """
        question = _Question(DNSLabel(qname), qtype, 0)
        chain = cached_answers.cached_chain(
            self.cache, question.name, qtype, self.limits.max_cname_chain
        )
        if chain is None:
            return None
        state = _State(Budget(0, 0.0, self._clock()), list(chain.events))
        result = _Result(chain.rcode, chain.answer, chain.authority)
        return _resolution(question, result, state)

    def cached_delegation(self, qname: DNSLabel | str) -> CachedDelegation | None:
        """Return the deepest cached zone cut above `qname` that has at least
        one usable cached server address, or None."""
        return cached_answers.cached_delegation(self.cache, DNSLabel(qname))

    def _is_cached(self, question: _Question) -> bool:
        found = cached_answers.cached_answer(
            self.cache, question.name, question.qtype, question.depth
        )
        return found is not None

    async def _resolve_fresh(self, question: _Question, state: _State) -> _Result:
        try:
            result = await self._resolve(question, state)
        except ResolutionAborted as aborted:
            result = self._fail(state, question, str(aborted))
        if result.rcode != RCODE.SERVFAIL:
            return result
        self.cache.store_failure(question.name, question.qtype, result.reason)
        reason = f"every authority failed ({result.reason})"
        return self._stale_answer(question, state, reason) or result

    def _recent_failure(
        self, question: _Question, state: _State, failure: FailureHit
    ) -> _Result:
        reason = (
            f"the last attempt failed ({failure.reason}); authorities are "
            f"asked again in {failure.remaining:.0f} s"
        )
        stale = self._stale_answer(question, state, reason)
        if stale is not None:
            return stale
        event = CachedFailureEvent(
            0,
            str(question.name),
            QTYPE[question.qtype],
            failure.reason,
            failure.remaining,
        )
        self._record(state, event)
        return _Result(RCODE.SERVFAIL, reason=failure.reason)

    def _stale_answer(
        self, question: _Question, state: _State, reason: str
    ) -> _Result | None:
        if not self.options.serve_stale:
            return None
        max_chain = self.limits.max_cname_chain
        stale = stale_answer(
            self.cache, question.name, question.qtype, max_chain, reason
        )
        if stale is None:
            return None
        for event in stale.events:
            self._record(state, event)
        return _Result(stale.rcode, stale.answer, stale.authority)

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
        cached = cached_answers.cached_answer(
            self.cache, question.name, question.qtype, question.depth
        )
        if cached is not None:
            self._record(state, cached.event)
            return _Result(
                cached.rcode, cached.answer, cached.authority, cached.next_name
            )
        return await self._walk(question, state)

    async def _walk(self, question: _Question, state: _State) -> _Result:
        """Walk down from the closest known zone cut to the name's zone."""
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
        minimiser = QnameMinimiser(
            question.name, question.qtype, self.options.qname_minimisation
        )
        referrals = 0
        # Each step follows a referral, adds labels to a minimised name or
        # falls back to the full name, so this many steps always suffice.
        for _ in range(self.limits.max_referrals + MAX_MINIMISE_COUNT + 2):
            name, qtype = minimiser.next_query(delegation.zone)
            minimised = minimiser.is_minimised(name)
            zone_query = ZoneQuery(
                delegation.zone, name, qtype, question.depth, minimised
            )
            delivered = await self._ask_zone(delegation, zone_query, question, state)
            reply = None if delivered is None else delivered.reply
            if reply is not None and reply.outcome is Outcome.REFERRAL:
                referrals += 1
                if referrals > self.limits.max_referrals:
                    break
                assert reply.referral is not None and delivered is not None
                delegation = self._follow_referral(reply.referral, delivered.address)
            elif minimised:
                self._step_minimised(minimiser, zone_query, reply, state)
            elif delivered is None:
                reason = f"no server of zone {delegation.zone} gave a usable reply"
                return self._fail(state, question, reason)
            else:
                return self._accept(delivered.reply, question, delivered.address)
        reason = f"more than {self.limits.max_referrals} referrals"
        return self._fail(state, question, reason)

    def _step_minimised(
        self,
        minimiser: QnameMinimiser,
        zone_query: ZoneQuery,
        reply: Reply | None,
        state: _State,
    ) -> None:
        reason = minimiser.after_reply(zone_query.name, reply)
        if reason is not None:
            zone, name = str(zone_query.zone), str(zone_query.name)
            event = MinimisationEvent(zone_query.depth, zone, name, reason)
            self._record(state, event)

    async def _ask_zone(
        self,
        delegation: Delegation,
        zone_query: ZoneQuery,
        question: _Question,
        state: _State,
    ) -> Delivered | None:
        async def lookup(server: DNSLabel) -> list[str]:
            return await self._lookup_addresses(server, delegation, question, state)

        record = functools.partial(self._record, state)
        return await self._zone_servers.ask(
            delegation, zone_query, state.budget, record, lookup
        )

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
        # The answer may start with CNAMEs: an NS name should not be an
        # alias (RFC 2181 section 10.3), but the address at the end works.
        return [str(rr.rdata) for rr in result.answer if rr.rtype == QTYPE.A]

    def _accept(self, reply: Reply, question: _Question, source: str) -> _Result:
        """Cache what a final reply carries and turn it into a result."""
        if reply.referral is not None:
            self._follow_referral(reply.referral, source)
        answer = normalised_ttls(reply.answer, self.cache.clamp_ttl)
        for rrset in group_rrsets(answer):
            self.cache.store_rrset(rrset, Credibility.ANSWER, source)
        if reply.outcome is Outcome.CNAME:
            return _Result(RCODE.NOERROR, answer, next_name=reply.target)
        if reply.outcome is Outcome.ANSWER:
            return _Result(RCODE.NOERROR, answer)
        return self._accept_negative(reply, answer, question, source)

    def _accept_negative(
        self,
        reply: Reply,
        answer: tuple[RR, ...],
        question: _Question,
        source: str,
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
        return _Result(rcode, answer, authority)

    def _follow_referral(self, referral: Referral, source: str) -> Delegation:
        """Cache a referral's NS RRset and glue; return its delegation."""
        self.cache.store_rrset(referral.ns, Credibility.AUTHORITY, source)
        for rrset in group_rrsets(referral.glue):
            self.cache.store_rrset(
                rrset, Credibility.GLUE, source, glue_for=referral.zone
            )

        def cached(server: DNSLabel) -> tuple[RR, ...]:
            return cached_answers.cached_addresses(self.cache, server, referral.zone)

        return delegation_from_referral(
            referral.zone, referral.ns, referral.glue, cached
        )

    def _closest_delegation(self, name: DNSLabel) -> Delegation:
        cached = cached_answers.cached_delegation(self.cache, name)
        if cached is None:
            return self._hints
        return delegation_from_cache(cached)

    def _fail(self, state: _State, question: _Question, reason: str) -> _Result:
        event = FailureEvent(
            question.depth, str(question.name), QTYPE[question.qtype], reason
        )
        self._record(state, event)
        return _Result(RCODE.SERVFAIL, reason=reason)

    def _record(self, state: _State, event: TraceEvent) -> None:
        state.trace.append(event)
        log.debug("%s%s", "  " * event.depth, describe_event(event))


def _resolution(question: _Question, result: _Result, state: _State) -> Resolution:
    return Resolution(
        question.name,
        question.qtype,
        result.rcode,
        result.answer,
        result.authority,
        tuple(state.trace),
        state.budget.queries,
        result.reason,
    )
