"""The resolver's cache: RRsets and negative answers whose TTLs count down.

Entries are keyed by (owner name, type) and expire at stored-at time plus
TTL on the injected clock, so tests and demos can move time forward. An
NXDOMAIN entry covers every type at its name and is stored under type 0,
which RFC 6895 reserves and no real RRset uses.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum

from cachetools import Cache as BaseCache
from cachetools import TLRUCache
from dnslib import QTYPE, RR, SOA, DNSLabel

from .names import NameKey, name_key

Clock = Callable[[], float]
CacheKey = tuple[NameKey, int]

NXDOMAIN_TYPE = 0
DEFAULT_MAX_ENTRIES = 10_000
# RFC 8767 suggests capping every TTL at 7 days (604800 seconds).
MAX_TTL = 604_800
# RFC 2308 section 5 calls one to three hours a sensible negative TTL and
# warns that more than a day causes problems, so negative TTLs stop at 3 hours.
MAX_NEGATIVE_TTL = 10_800


class Credibility(IntEnum):
    """The trust rank of cached data: RFC 2181 section 5.4.1 in three steps.

    While an entry is live, data of a lower rank does not replace it.
    """

    GLUE = 1
    AUTHORITY = 2
    ANSWER = 3


class NegativeKind(Enum):
    """The two kinds of negative answer of RFC 2308."""

    NXDOMAIN = "NXDOMAIN"
    NODATA = "NODATA"


@dataclass(frozen=True)
class CacheEntry:
    """One cached RRset, or one negative answer together with its SOA."""

    name: DNSLabel
    rtype: int
    # The RRset as received, or for a negative entry the zone's SOA record.
    records: tuple[RR, ...]
    ttl: int
    stored_at: float
    credibility: Credibility
    # Address of the name server that sent the data.
    source: str
    negative: NegativeKind | None = None

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl


@dataclass(frozen=True)
class CacheHit:
    """A live entry seen at one moment, its records carrying the remaining TTL."""

    entry: CacheEntry
    records: tuple[RR, ...]
    remaining_ttl: int
    age: float

    @property
    def negative(self) -> NegativeKind | None:
        return self.entry.negative


class Cache:
    """A bounded cache with per-entry expiry and least-recently-used eviction."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._entries: TLRUCache[CacheKey, CacheEntry] = TLRUCache(
            maxsize=max_entries, ttu=_expiry_time, timer=clock
        )

    def __len__(self) -> int:
        return sum(1 for _ in self._entries)

    def store_rrset(
        self, records: Sequence[RR], credibility: Credibility, source: str
    ) -> bool:
        """Cache one RRset under the lowest TTL of its records.

        RFC 2181 section 5.2 requires one TTL per RRset, so the lowest one is
        used if they differ. Returns False when nothing was stored: a TTL of
        0, or a live entry of higher credibility for the same name and type.
        """
        first = records[0]
        for record in records[1:]:
            if record.rtype != first.rtype or name_key(record.rname) != name_key(
                first.rname
            ):
                raise ValueError(
                    f"{record.rname} {QTYPE[record.rtype]} is not in "
                    f"the RRset {first.rname} {QTYPE[first.rtype]}"
                )
        ttl = min(_clamp_ttl(record.ttl, MAX_TTL) for record in records)
        entry = CacheEntry(
            first.rname,
            first.rtype,
            tuple(records),
            ttl,
            self._clock(),
            credibility,
            source,
        )
        return self._store((name_key(first.rname), first.rtype), entry)

    def store_negative(
        self,
        kind: NegativeKind,
        name: DNSLabel,
        rtype: int,
        soa: RR,
        source: str,
    ) -> bool:
        """Cache an NXDOMAIN (every type at `name`) or a NODATA (`rtype` only).

        The TTL is min(SOA TTL, SOA MINIMUM), RFC 2308 section 5. Negative
        answers come from authoritative replies, so they rank as answers.
        """
        rdata = soa.rdata
        if not isinstance(rdata, SOA):
            raise TypeError(
                f"negative answer for {name} needs an SOA record, got {rdata}"
            )
        minimum = int(rdata.times[4])
        ttl = _clamp_ttl(min(soa.ttl, minimum), MAX_NEGATIVE_TTL)
        stored_type = NXDOMAIN_TYPE if kind is NegativeKind.NXDOMAIN else rtype
        entry = CacheEntry(
            name,
            stored_type,
            (soa,),
            ttl,
            self._clock(),
            Credibility.ANSWER,
            source,
            kind,
        )
        return self._store((name_key(name), stored_type), entry)

    def lookup(
        self,
        name: DNSLabel,
        rtype: int,
        min_credibility: Credibility = Credibility.GLUE,
    ) -> CacheHit | None:
        """Find the live data for `name` and `rtype`, or a negative answer.

        When both an RRset and an NXDOMAIN entry for the name are live, the
        one of higher credibility wins, and between equals the newer one.
        """
        key = name_key(name)
        candidates = [
            entry
            for entry in (
                self._entries.get((key, rtype)),
                self._entries.get((key, NXDOMAIN_TYPE)),
            )
            if entry is not None and entry.credibility >= min_credibility
        ]
        if not candidates:
            return None
        best = max(candidates, key=lambda entry: (entry.credibility, entry.stored_at))
        return self._hit(best, self._clock())

    def entries(self) -> list[CacheHit]:
        """List every live entry as of now, in the order first stored."""
        now = self._clock()
        # Iterating a TLRUCache yields only live keys. Reading through the
        # base class leaves the LRU order alone, so listing is not a use.
        return [
            self._hit(BaseCache.__getitem__(self._entries, key), now)
            for key in list(self._entries)
        ]

    def clear(self) -> None:
        self._entries.clear()

    def _store(self, key: CacheKey, entry: CacheEntry) -> bool:
        if entry.ttl <= 0:
            return False
        current = self._entries.get(key)
        if current is not None and current.credibility > entry.credibility:
            return False
        self._entries[key] = entry
        return True

    def _hit(self, entry: CacheEntry, now: float) -> CacheHit:
        age = now - entry.stored_at
        # Round down, so an answer never claims more lifetime than is left.
        remaining = max(0, int(entry.ttl - age))
        records = tuple(_with_ttl(record, remaining) for record in entry.records)
        return CacheHit(entry, records, remaining, age)


def _expiry_time(_key: CacheKey, entry: CacheEntry, _now: float) -> float:
    return entry.expires_at


def _clamp_ttl(ttl: int, maximum: int) -> int:
    # RFC 8767 reads a TTL with the top bit set as a large positive value
    # (RFC 2181 section 8 had read it as 0), so it too is only capped.
    return min(ttl, maximum)


def _with_ttl(record: RR, ttl: int) -> RR:
    return RR(record.rname, record.rtype, record.rclass, ttl, record.rdata)
