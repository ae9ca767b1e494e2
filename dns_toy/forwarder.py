"""The resolver's recursive and forward modes, and the choice of mode.

In iterative mode (iterator.Resolver) the resolver walks down from the
root itself. In the other two it sends each cache miss, with RD=1, to an
upstream server that resolves it on the resolver's behalf:

- recursive: the root servers of the root hints, which recurse down the
  chain (dns-toy serve --recursion). ONE query goes out per miss;
- forward: the given forwarders, such as another dns-toy resolver, so
  caches can be stacked.

The upstreams are asked in order, each at most once per name, and the
next one is tried after a timeout, an error, a SERVFAIL or a reply with
RA=0. What a usable reply carries on the CNAME chain from the query name
is cached as answers, and the trace records each exchange as a HopEvent
followed by the hops of the upstream's hop trail (dns_toy.trail).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from dnslib import QTYPE, RCODE, RR, DNSLabel, DNSRecord

from .cache import Cache
from .delegation import CachedDelegation
from .errors import TransportTimeout
from .hops import MeasuredResolver, log_summary
from .iterator import Clock, Resolution, Transport
from .names import name_key
from .recursion import server_name
from .resolver_options import ResolverOptions
from .stub import (
    Answer,
    answer_from_cache,
    answer_from_reply,
    ask,
    make_query,
    query_outcome,
    store_answer,
    unusable_reason,
)
from .trace import (
    CacheEvent,
    FailureEvent,
    HopEvent,
    QueryEvent,
    TraceEvent,
    describe_event,
)
from .trail import (
    SOURCE_CACHE,
    SOURCE_RECURSION,
    Budget,
    add_options,
    trail_option,
    wants_trail,
)

log = logging.getLogger(__name__)

# Time kept back from each upstream's BUDGET, so that it replies (with a
# SERVFAIL at worst) before this resolver stops waiting.
REPLY_MARGIN = 0.05


class Mode(Enum):
    """The way the resolver resolves a cache miss."""

    ITERATIVE = "iterative"
    RECURSIVE = "recursive"
    FORWARD = "forward"


@dataclass(frozen=True)
class Upstream:
    """A server that resolves questions for this resolver."""

    name: str  # empty for a forwarder, which names itself in its trail
    address: str
    port: int


@dataclass(frozen=True)
class UpstreamLimits:
    """Bounds on the work of one resolution through upstreams."""

    max_time: float = 10.0  # seconds, shared out among the upstreams
    max_cname_chain: int = 8


class UpstreamResolver:
    """A caching resolver that sends every cache miss to an upstream, RD=1."""

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        upstreams: Sequence[Upstream],
        mode: Mode,
        *,
        name: str = "resolver",
        cache: Cache | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        if not upstreams:
            raise ValueError(f"{mode.value} mode needs at least one upstream server")
        self.upstreams = tuple(upstreams)
        self.mode = mode
        self.name = name
        self.cache = cache if cache is not None else Cache(clock)
        self.limits = limits if limits is not None else UpstreamLimits()
        self._transport = transport
        self._clock = clock

    async def resolve(self, qname: DNSLabel | str, qtype: int) -> Resolution:
        """Resolve one question of class IN, from the cache or an upstream."""
        name = DNSLabel(qname)
        started = self._clock()
        deadline = started + self.limits.max_time
        trace: list[TraceEvent] = []
        records: list[RR] = []
        owners = {name_key(name)}
        current = name
        result = Answer(RCODE.SERVFAIL, reason="no answer")

        for _ in range(self.limits.max_cname_chain + 1):
            result = await self._resolve_name(current, qtype, deadline, trace)
            records.extend(result.records)
            target = result.next_name
            if target is None:
                break
            if name_key(target) in owners:
                result = self._fail(trace, name, qtype, f"CNAME loop at {target}")
                break
            owners.add(name_key(target))
            current = target
        else:
            reason = f"CNAME chain longer than {self.limits.max_cname_chain}"
            result = self._fail(trace, name, qtype, reason)
        if result.rcode == RCODE.SERVFAIL:
            records = []

        queries = sum(1 for event in trace if isinstance(event, QueryEvent))
        resolution = Resolution(
            name,
            qtype,
            result.rcode,
            tuple(records),
            result.authority,
            tuple(trace),
            queries,
            result.reason,
        )
        log_summary(resolution, self.name, (self._clock() - started) * 1000)
        return resolution

    def answer_from_cache(self, qname: DNSLabel | str, qtype: int) -> Resolution | None:
        """Return what the cache alone holds for the question, or None."""
        name = DNSLabel(qname)
        limit = self.limits.max_cname_chain
        cached = answer_from_cache(self.cache, name, qtype, limit, 0)
        if cached is None:
            return None
        answer, events = cached
        return Resolution(
            name,
            qtype,
            answer.rcode,
            answer.records,
            answer.authority,
            tuple(events),
            0,
        )

    def cached_delegation(self, qname: DNSLabel | str) -> CachedDelegation | None:
        """Return None: this resolver learns no delegations, only answers."""
        return None

    async def _resolve_name(
        self, name: DNSLabel, qtype: int, deadline: float, trace: list[TraceEvent]
    ) -> Answer:
        limit = self.limits.max_cname_chain
        cached = answer_from_cache(self.cache, name, qtype, limit, 0)
        if cached is not None:
            answer, events = cached
            for event in events:
                self._record(trace, event)
            return answer
        reasons = []
        for index, upstream in enumerate(self.upstreams):
            found = await self._ask(upstream, name, qtype, deadline, trace, index)
            if isinstance(found, Answer):
                return found
            reasons.append(found)
        return self._fail(trace, name, qtype, "; ".join(reasons))

    async def _ask(
        self,
        upstream: Upstream,
        name: DNSLabel,
        qtype: int,
        deadline: float,
        trace: list[TraceEvent],
        index: int,
    ) -> Answer | str:
        """Ask one upstream; return its answer, or why it gave none."""
        left = deadline - self._clock()
        label = upstream.name or f"{upstream.address}#{upstream.port}"
        if left <= 0:
            return f"no time left for {label}"
        # Each upstream still to try gets an equal share of the time left.
        timeout = left / (len(self.upstreams) - index)
        budget = Budget(0, int((timeout - REPLY_MARGIN) * 1000))
        query = make_query(name, qtype, budget, want_trail=True)

        exchanged = await ask(
            self._transport,
            self._clock,
            query,
            asker=self.name,
            server=upstream.name,
            address=upstream.address,
            port=upstream.port,
            timeout=timeout,
            depth=0,
        )
        self._record_query(
            trace, exchanged.hop, exchanged.reply, exchanged.exchange.failure
        )
        for hop in exchanged.hops:
            self._record(trace, hop)

        reply = exchanged.reply
        if reply is None:
            return f"{label}: {exchanged.hop.rcode}"
        unusable = unusable_reason(reply)
        if unusable is not None:
            return f"{label}: {unusable}"
        answer = answer_from_reply(reply, name, qtype)
        source = f"{upstream.address}#{upstream.port}"
        for line in store_answer(self.cache, answer, name, qtype, source):
            log.debug("cache store: %s, from %s", line, label)
        return answer

    def _record_query(
        self,
        trace: list[TraceEvent],
        hop: HopEvent,
        reply: DNSRecord | None,
        failure: Exception | None,
    ) -> None:
        # A QueryEvent as the iterator records one, because counters such as
        # the resolver's stats read those. Printing shows the HopEvent.
        outcome = query_outcome(reply, isinstance(failure, TransportTimeout))
        detail = hop.detail or hop.rcode
        if reply is not None:
            detail = unusable_reason(reply) or detail
        event = QueryEvent(
            hop.depth,
            ".",
            hop.server,
            hop.address,
            hop.qname,
            hop.qtype,
            outcome,
            detail,
            hop.rtt_ms,
        )
        trace.append(event)

    def _fail(
        self, trace: list[TraceEvent], name: DNSLabel, qtype: int, reason: str
    ) -> Answer:
        self._record(trace, FailureEvent(0, str(name), QTYPE[qtype], reason))
        return Answer(RCODE.SERVFAIL, reason=reason)

    def _record(self, trace: list[TraceEvent], event: TraceEvent) -> None:
        trace.append(event)
        log.debug("%s%s", "  " * event.depth, describe_event(event))


AnyResolver = MeasuredResolver | UpstreamResolver


def build_resolver(
    mode: Mode,
    transport: Transport,
    clock: Clock,
    *,
    root_hints: Sequence[tuple[str, str]] = (),
    forwarders: Sequence[tuple[str, int]] = (),
    server_port: int = 53,
    name: str = "resolver",
    cache: Cache | None = None,
    options: ResolverOptions | None = None,
) -> AnyResolver:
    """Build the resolver of `mode`.

    Iterative and recursive mode need `root_hints`, on `server_port`;
    forward mode needs `forwarders` as (address, port) pairs. Raises
    ValueError when they are missing. In the upstream modes only the cache
    policies of `options` apply (size and TTL bounds): the time for each
    upstream is its share of UpstreamLimits.max_time.
    """
    if mode is Mode.ITERATIVE:
        return MeasuredResolver(
            transport,
            clock,
            root_hints,
            server_port,
            name=name,
            cache=cache,
            options=options,
        )
    if cache is None and options is not None:
        cache = Cache(
            clock,
            options.cache_size,
            min_ttl=options.min_ttl,
            max_ttl=options.max_ttl,
        )
    if mode is Mode.RECURSIVE:
        upstreams = [
            Upstream(server_name(server), address, server_port)
            for server, address in root_hints
        ]
    else:
        upstreams = [Upstream("", address, port) for address, port in forwarders]
    return UpstreamResolver(transport, clock, upstreams, mode, name=name, cache=cache)


def add_resolution_trail(
    reply: DNSRecord, query: DNSRecord, resolution: Resolution, server: str
) -> DNSRecord:
    """Add the hop trail of `resolution` to `reply` when `query` requests one.

    This is how a resolver that forwarders point at reports its own hops
    and whether the answer came from its cache.
    """
    if not wants_trail(query):
        return reply
    hops = [event for event in resolution.trace if isinstance(event, HopEvent)]
    from_cache = resolution.queries == 0 and any(
        isinstance(event, CacheEvent) for event in resolution.trace
    )
    source = SOURCE_CACHE if from_cache else SOURCE_RECURSION
    add_options(reply, [trail_option(server, source, hops)])
    return reply
