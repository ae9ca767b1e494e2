"""Asking the name servers of one zone until one gives a usable reply.

Servers with known addresses come first, in the order of the selection
policy, without those that are held down or lame for the zone. The others
are looked up one at a time, by a nested resolution that the caller
supplies, and only when every server before them failed. A lame reply
marks that address lame for the zone, and the next one is asked. When
none is left, the zone has failed.

A server that returns an error rcode for a minimised query name is not
marked lame: the walk falls back to the full name and asks it again
(relaxed QNAME minimisation, RFC 9156).
"""

from collections.abc import Awaitable, Callable, Sequence

from dnslib import RCODE, DNSLabel

from .budget import Budget
from .delegation import Delegation
from .delivery import Delivered, Delivery, Record, ZoneQuery
from .policy_trace import LameEvent, SkipEvent
from .replies import Outcome
from .selection import LAME_TIME, Candidate, ServerSelection

Clock = Callable[[], float]
# Resolves the addresses of a name server without glue.
LookupAddresses = Callable[[DNSLabel], Awaitable[list[str]]]


class ZoneServers:
    """The servers of a zone, asked in turn under the selection policy."""

    def __init__(
        self, selection: ServerSelection, delivery: Delivery, clock: Clock
    ) -> None:
        self._selection = selection
        self._delivery = delivery
        self._clock = clock

    async def ask(
        self,
        delegation: Delegation,
        zone_query: ZoneQuery,
        budget: Budget,
        record: Record,
        lookup: LookupAddresses,
    ) -> Delivered | None:
        """Return the first usable reply from a server of the zone, or None."""
        tried: set[str] = set()
        glued = [
            Candidate(server.name, address)
            for server in delegation.servers
            for address in server.addresses
        ]
        found = await self._ask_candidates(zone_query, glued, budget, record, tried)
        if found is not None:
            return found
        for server in delegation.servers:
            if server.addresses:
                continue
            addresses = await lookup(server.name)
            candidates = [Candidate(server.name, address) for address in addresses]
            found = await self._ask_candidates(
                zone_query, candidates, budget, record, tried
            )
            if found is not None:
                return found
        return None

    async def _ask_candidates(
        self,
        zone_query: ZoneQuery,
        candidates: Sequence[Candidate],
        budget: Budget,
        record: Record,
        tried: set[str],
    ) -> Delivered | None:
        fresh = [c for c in candidates if c.address not in tried]
        ordered, skipped = self._selection.order(zone_query.zone, fresh)
        now = self._clock()
        for skip in skipped:
            tried.add(skip.candidate.address)
            event = SkipEvent(
                zone_query.depth,
                str(zone_query.zone),
                str(skip.candidate.server),
                skip.candidate.address,
                skip.reason,
                skip.until - now,
            )
            record(event)
        for candidate in ordered:
            if candidate.address in tried:
                continue
            tried.add(candidate.address)
            delivered = await self._delivery.ask(zone_query, candidate, budget, record)
            if delivered is None:
                continue
            if delivered.reply.outcome is not Outcome.LAME:
                return delivered
            server_error = delivered.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN)
            if server_error and zone_query.minimised:
                return delivered
            self._mark_lame(zone_query, candidate, delivered.reply.reason, record)
        return None

    def _mark_lame(
        self, zone_query: ZoneQuery, candidate: Candidate, reason: str, record: Record
    ) -> None:
        self._selection.mark_lame(candidate.address, zone_query.zone, reason)
        event = LameEvent(
            zone_query.depth,
            str(zone_query.zone),
            str(candidate.server),
            candidate.address,
            reason,
            LAME_TIME,
        )
        record(event)
