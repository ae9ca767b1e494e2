"""Recursion at a name server: it resolves RD=1 queries via the next server.

Theory of operation. A server started with --recursion sets RA=1 in every
reply and answers as a plain authority does, except for an RD=1 query of
class IN that its own zones cannot answer: the lookup is a REFERRAL (the
name is below one of its zone cuts) or REFUSED (the name is outside its
zones), or a CNAME leads to such a name. For each such name it

1. answers from its cache when it can, with the remaining TTLs;
2. else asks the next server with RD=1: for a referral one of the
   delegation's name servers, for REFUSED a root server from its root
   hints. A name server without glue has its address resolved the same
   way, from the zones, the cache or the next server;
3. caches the RRsets and the negative answer of the reply and passes them
   on with AA=0.

So the root asks a TLD server, which asks the authoritative one, and each
keeps what it passed on.

Bounds. A query carries the BUDGET option of dns_toy.trail: the number of
recursing servers it has passed through, which may not reach MAX_HOPS, and
the time its asker waits. Each server gives the next one only part of its
own time, so that it hears back before its asker gives up. One client
query costs at most MAX_QUERIES queries, nested lookups included. A lookup
that needs its own result (a name server whose address is found only
through itself) fails at once. A SERVFAIL from a recursing server is
passed on and not retried at another server, so that a loop in the zones
costs one chain of at most MAX_HOPS queries, not a tree of them.

NOTE: a server that does not recurse (RA=0) is skipped, never iterated
through, so a chain works only when every server on it runs --recursion.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnslib import (
    CLASS,
    EDNS0,
    OPCODE,
    QTYPE,
    RCODE,
    RR,
    DNSHeader,
    DNSLabel,
    DNSRecord,
)

from .authority import Catalog, Lookup, Outcome, answer_query, lookup
from .cache import Cache, Credibility
from .cacheview import entry_json
from .control import Command, name_argument
from .control_handlers import entries_below, flush_entries
from .errors import TopologyError
from .iterator import Clock, Transport
from .names import NameKey, name_key
from .replies import follow_chain
from .stub import (
    Answer,
    answer_from_cache,
    answer_from_reply,
    ask,
    make_query,
    store_answer,
    unusable_reason,
)
from .topology import absolute_name, read_root_hints
from .trace import HopEvent, describe_event
from .trail import (
    SOURCE_AUTHORITY,
    SOURCE_CACHE,
    SOURCE_RECURSION,
    Budget,
    add_options,
    read_budget,
    trail_option,
    wants_trail,
)
from .transport import NetworkTransport
from .wire import find_opt_records, reject_invalid_opt

log = logging.getLogger(__name__)

EDNS_UDP_SIZE = 1232
MAX_HOPS = 8  # recursing servers one query may pass through
MAX_QUERIES = 16  # queries to other servers for one client query
MAX_NESTING = 2  # nested lookups of name servers without glue
MAX_CNAME_CHAIN = 8
DEFAULT_BUDGET_MS = 4000  # for a query without a BUDGET option, e.g. dig's
REPLY_MARGIN = 0.05  # seconds kept back to build and send the reply


@dataclass
class _Request:
    """Bookkeeping for one client query and every lookup it needs."""

    hops: int  # recursing servers the client query has passed through
    deadline: float
    want_trail: bool
    queries_left: int = MAX_QUERIES
    trail: list[HopEvent] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    # Questions being resolved, so that a lookup that needs itself fails.
    active: set[tuple[NameKey, int]] = field(default_factory=set)

    @property
    def source(self) -> str:
        if SOURCE_RECURSION in self.sources:
            return SOURCE_RECURSION
        if SOURCE_CACHE in self.sources:
            return SOURCE_CACHE
        return SOURCE_AUTHORITY


@dataclass(frozen=True)
class _Candidate:
    """A server to ask: its name and the addresses known for it."""

    name: str
    addresses: tuple[str, ...]


class Recursor:
    """The recursion of one name server, with its own cache."""

    def __init__(
        self,
        name: str,
        root_hints: Sequence[tuple[str, str]],
        server_port: int,
        *,
        transport: Transport | None = None,
        clock: Clock = time.monotonic,
        cache: Cache | None = None,
    ) -> None:
        self.name = name
        self.root_hints = list(root_hints)
        self.server_port = server_port
        self.cache = cache if cache is not None else Cache(clock)
        self._transport = transport if transport is not None else NetworkTransport()
        self._clock = clock

    @classmethod
    def from_hints_file(
        cls, path: str | Path, name: str, server_port: int
    ) -> "Recursor":
        """Build a Recursor from a named.root file; raise TopologyError when
        it cannot be read or contains no root server address."""
        try:
            hints = read_root_hints(path)
        except OSError as exc:
            message = f"cannot read root hints {path}: {exc.strerror}"
            raise TopologyError(message) from None
        if not hints:
            raise TopologyError(f"{path}: no A records for root name servers")
        return cls(server_name(name), hints, server_port)

    def control_commands(self) -> dict[str, Command]:
        """Return `cache.show` and `cache.flush` for the control channel.

        Both take an optional `name` and act on the entries at or below it,
        and return what a resolver's commands of the same name return.
        """

        async def show(arguments: dict[str, Any]) -> dict[str, Any]:
            hits = entries_below(self.cache, arguments)
            return {"entries": [entry_json(hit) for hit in hits]}

        async def flush(arguments: dict[str, Any]) -> dict[str, Any]:
            name = name_argument(arguments)
            removed = flush_entries(self.cache, name)
            log.info("cache flushed at %s: %d entries removed", name or ".", removed)
            return {"removed": removed}

        return {"cache.show": show, "cache.flush": flush}

    async def respond(self, query: DNSRecord, catalog: Catalog) -> DNSRecord:
        """Build the reply to a decoded query, recursing when RD=1 calls for it."""
        if not _may_recurse(query):
            return _with_ra(answer_query(query, catalog))
        question = query.q
        found = lookup(catalog, question.qname, question.qtype)
        if not _needs_recursion(found, question.qname, question.qtype):
            reply = _with_ra(answer_query(query, catalog))
            if wants_trail(query):
                add_options(reply, [trail_option(self.name, SOURCE_AUTHORITY, [])])
            return reply

        budget = read_budget(query) or Budget(0, DEFAULT_BUDGET_MS)
        request = _Request(
            hops=budget.hops,
            deadline=self._clock() + budget.time_ms / 1000 - REPLY_MARGIN,
            want_trail=wants_trail(query),
        )
        if budget.hops >= MAX_HOPS:
            reason = f"the query has passed {budget.hops} recursing servers"
            result = Answer(RCODE.SERVFAIL, reason=reason)
        else:
            result = await self._resolve(
                request, catalog, question.qname, question.qtype, 0
            )
        if result.rcode == RCODE.SERVFAIL:
            log.info(
                "SERVFAIL for %s %s: %s",
                question.qname,
                QTYPE.get(question.qtype, question.qtype),
                result.reason,
            )
        return self._reply(query, request, result)

    def _reply(self, query: DNSRecord, request: _Request, result: Answer) -> DNSRecord:
        authoritative = request.sources <= {SOURCE_AUTHORITY}
        header = DNSHeader(
            id=query.header.id,
            qr=1,
            opcode=OPCODE.QUERY,
            rd=query.header.rd,
            ra=1,
            aa=int(authoritative and result.rcode != RCODE.SERVFAIL),
            cd=query.header.cd,
            rcode=result.rcode,
        )
        reply = DNSRecord(header, questions=list(query.questions))
        for record in result.records:
            reply.add_answer(record)
        for record in result.authority:
            reply.add_auth(record)
        for record in result.additional:
            reply.add_ar(record)
        if find_opt_records(query):
            options = []
            if request.want_trail:
                options.append(trail_option(self.name, request.source, request.trail))
            reply.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE, opts=options))
        return reply

    async def _resolve(
        self,
        request: _Request,
        catalog: Catalog,
        qname: DNSLabel,
        qtype: int,
        nesting: int,
    ) -> Answer:
        """Resolve one name, following CNAMEs across zones and servers."""
        key = (name_key(qname), qtype)
        if key in request.active:
            return Answer(RCODE.SERVFAIL, reason=f"{qname} depends on its own result")
        request.active.add(key)
        try:
            return await self._follow_cnames(request, catalog, qname, qtype, nesting)
        finally:
            request.active.discard(key)

    async def _follow_cnames(
        self,
        request: _Request,
        catalog: Catalog,
        qname: DNSLabel,
        qtype: int,
        nesting: int,
    ) -> Answer:
        records: list[RR] = []
        owners = {name_key(qname)}
        name = qname
        for _ in range(MAX_CNAME_CHAIN + 1):
            step = await self._resolve_step(request, catalog, name, qtype, nesting)
            records.extend(step.records)
            if step.next_name is None:
                return Answer(
                    step.rcode,
                    tuple(records),
                    step.authority,
                    additional=step.additional,
                    reason=step.reason,
                )
            if name_key(step.next_name) in owners:
                return Answer(RCODE.SERVFAIL, reason=f"CNAME loop at {step.next_name}")
            owners.add(name_key(step.next_name))
            name = step.next_name
        return Answer(
            RCODE.SERVFAIL, reason=f"CNAME chain longer than {MAX_CNAME_CHAIN}"
        )

    async def _resolve_step(
        self,
        request: _Request,
        catalog: Catalog,
        name: DNSLabel,
        qtype: int,
        nesting: int,
    ) -> Answer:
        """Answer one name from the zones, else the cache, else the next server."""
        found = lookup(catalog, name, qtype)
        if not _needs_recursion(found, name, qtype):
            request.sources.add(SOURCE_AUTHORITY)
            return Answer(
                found.rcode,
                tuple(catalog.arrange(found.answer)),
                tuple(found.authority),
                additional=tuple(found.additional),
            )
        if found.outcome is Outcome.CNAME:
            # The chain leaves our zones or goes below one of our zone cuts.
            request.sources.add(SOURCE_AUTHORITY)
            chain, target, _ = follow_chain(found.answer, name, qtype)
            return Answer(RCODE.NOERROR, tuple(chain), next_name=target)

        cached = answer_from_cache(self.cache, name, qtype, MAX_CNAME_CHAIN, 0)
        if cached is not None:
            answer, events = cached
            request.sources.add(SOURCE_CACHE)
            for event in events:
                log.debug("%s", describe_event(event))
            return answer

        candidates = self._candidates(found)
        return await self._ask_candidates(
            request, catalog, name, qtype, candidates, nesting
        )

    def _candidates(self, found: Lookup) -> list[_Candidate]:
        if found.outcome is Outcome.REFUSED:
            return _hint_candidates(self.root_hints)
        glue: dict[NameKey, list[str]] = {}
        for rr in found.additional:
            if rr.rtype == QTYPE.A:
                glue.setdefault(name_key(rr.rname), []).append(str(rr.rdata))
        candidates = []
        for rr in found.authority:
            if rr.rtype != QTYPE.NS:
                continue
            server = rr.rdata.label
            known = glue.get(name_key(server)) or self._cached_addresses(server)
            candidates.append(_Candidate(str(server), tuple(known)))
        return candidates

    def _cached_addresses(self, server: DNSLabel) -> list[str]:
        hit = self.cache.lookup(server, QTYPE.A, Credibility.ANSWER)
        if hit is None or hit.negative is not None:
            return []
        return [str(rr.rdata) for rr in hit.records]

    async def _ask_candidates(
        self,
        request: _Request,
        catalog: Catalog,
        name: DNSLabel,
        qtype: int,
        candidates: list[_Candidate],
        nesting: int,
    ) -> Answer:
        """Ask the servers in turn; those without an address come last."""
        reasons: list[str] = []
        ordered = [c for c in candidates if c.addresses]
        ordered += [c for c in candidates if not c.addresses]
        for index, candidate in enumerate(ordered):
            addresses = list(candidate.addresses)
            if not addresses:
                addresses = await self._lookup_addresses(
                    request, catalog, candidate, nesting
                )
            for position, address in enumerate(addresses):
                left = len(addresses) - position + len(ordered) - index - 1
                answer = await self._ask(request, name, qtype, candidate, address, left)
                if isinstance(answer, Answer):
                    return answer
                reasons.append(answer)
        if not candidates:
            reasons.append("no server to ask")
        return Answer(RCODE.SERVFAIL, reason="; ".join(reasons) or "no server replied")

    async def _lookup_addresses(
        self, request: _Request, catalog: Catalog, candidate: _Candidate, nesting: int
    ) -> list[str]:
        """Resolve the address of a name server that came without glue."""
        if nesting >= MAX_NESTING:
            log.debug(
                "no lookup of %s: nested lookups deeper than %d",
                candidate.name,
                MAX_NESTING,
            )
            return []
        server = DNSLabel(candidate.name)
        result = await self._resolve(request, catalog, server, QTYPE.A, nesting + 1)
        return [str(rr.rdata) for rr in result.records if rr.rtype == QTYPE.A]

    async def _ask(
        self,
        request: _Request,
        name: DNSLabel,
        qtype: int,
        candidate: _Candidate,
        address: str,
        servers_left: int,
    ) -> Answer | str:
        """Ask one server address; return its answer, or why it gave none."""
        left = request.deadline - self._clock()
        if left <= 0:
            return f"no time left for {candidate.name}"
        if request.queries_left <= 0:
            return f"query budget of {MAX_QUERIES} used up"
        request.queries_left -= 1

        timeout = left / max(1, servers_left)
        # The next server gets a little less time than this server waits.
        budget = Budget(request.hops + 1, int((timeout - REPLY_MARGIN) * 1000))
        query = make_query(name, qtype, budget, request.want_trail)
        exchanged = await ask(
            self._transport,
            self._clock,
            query,
            asker=self.name,
            server=candidate.name,
            address=address,
            port=self.server_port,
            timeout=timeout,
            depth=0,
        )
        request.trail.extend(exchanged.hops)
        log.debug("%s", describe_event(exchanged.hop))

        reply = exchanged.reply
        if reply is None:
            return f"{candidate.name} ({address}): {exchanged.hop.rcode}"
        if reply.header.rcode == RCODE.SERVFAIL and reply.header.ra:
            # Passed on, not retried: see the bounds at the top of this file.
            request.sources.add(SOURCE_RECURSION)
            reason = f"{candidate.name} ({address}) returned SERVFAIL"
            return Answer(RCODE.SERVFAIL, reason=reason)
        unusable = unusable_reason(reply)
        if unusable is not None:
            return f"{candidate.name} ({address}): {unusable}"
        request.sources.add(SOURCE_RECURSION)
        answer = answer_from_reply(reply, name, qtype)
        for line in store_answer(self.cache, answer, name, qtype, address):
            log.debug("cache store: %s, from %s (%s)", line, candidate.name, address)
        return answer


def _may_recurse(query: DNSRecord) -> bool:
    """Return True for a valid RD=1 query of class IN with one question."""
    if not query.header.rd or query.header.opcode != OPCODE.QUERY:
        return False
    if len(query.questions) != 1 or query.q.qclass != CLASS.IN:
        return False
    if query.q.qtype in (QTYPE.AXFR, QTYPE.IXFR):
        return False
    probe = DNSRecord(DNSHeader(id=query.header.id, qr=1))
    return reject_invalid_opt(probe, find_opt_records(query), EDNS_UDP_SIZE) is None


def _needs_recursion(found: Lookup, qname: DNSLabel, qtype: int) -> bool:
    """Return True when our zones leave the question open: a referral, a
    name outside them, or a CNAME chain that ends at such a name."""
    if found.outcome in (Outcome.REFERRAL, Outcome.REFUSED):
        return True
    if found.outcome is not Outcome.CNAME:
        return False
    _, _, final = follow_chain(found.answer, qname, qtype)
    negative = any(rr.rtype == QTYPE.SOA for rr in found.authority)
    return not final and not negative


def _with_ra(reply: DNSRecord) -> DNSRecord:
    reply.header.ra = 1
    return reply


def _hint_candidates(hints: Sequence[tuple[str, str]]) -> list[_Candidate]:
    grouped: dict[str, list[str]] = {}
    for server, address in hints:
        grouped.setdefault(server, []).append(address)
    return [_Candidate(server, tuple(found)) for server, found in grouped.items()]


def server_name(name: str) -> str:
    """Return a server's name as an absolute domain name, or an IP address
    unchanged, so that hops name a server the same way wherever it appears."""
    if name.replace(".", "").isdigit() or ":" in name:
        return name
    return absolute_name(name)
