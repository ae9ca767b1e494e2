"""The resolver's cache: RRsets and negative answers whose TTLs count down.

Entries are keyed by (owner name, type) and expire at stored-at time plus
TTL on the injected clock, so tests and demos can move time forward. An
NXDOMAIN entry covers every type at its name and is stored under type 0,
which RFC 6895 reserves and no real RRset uses.

TTLs are clamped on the way in: a TTL with the top bit set counts as 0
(RFC 2181 section 8), anything else is raised to `min_ttl` and capped at
`max_ttl`. A TTL of 0 is never cached, whatever `min_ttl` says, so such
data serves only the resolution that fetched it.

With a stale window, expired entries stay in the cache that much longer
for serve-stale (RFC 8767). Only lookups that ask for stale data see them.
Server failures are kept apart, so that a SERVFAIL never pushes out the
stale data that serve-stale would answer with.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum, IntEnum

from cachetools import Cache as BaseCache
from cachetools import TLRUCache
from dnslib import QTYPE, RR, SOA, DNSLabel

from .names import NameKey, name_key

Clock = Callable[[], float]
CacheKey = tuple[NameKey, int]

NXDOMAIN_TYPE = 0
DEFAULT_MAX_ENTRIES = 10_000
# One day, the default of Unbound's cache-max-ttl.
DEFAULT_MAX_TTL = 86_400
DEFAULT_MIN_TTL = 0
# RFC 2308 section 5 calls one to three hours a sensible negative TTL and
# warns that more than a day causes problems, so negative TTLs stop at 3 hours.
MAX_NEGATIVE_TTL = 10_800
# RFC 2308 section 7.1 allows caching a server failure for at most five
# minutes. Thirty seconds is enough to stop a client's retries from
# hammering dead servers.
SERVFAIL_TTL = 30
# TTLs are unsigned 32-bit numbers whose top bit must be clear.
TTL_TOP_BIT = 2**31


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
    # For glue: the zones whose referrals brought it. Glue serves only to
    # reach those delegations. Empty for every other entry.
    glue_for: frozenset[NameKey] = frozenset()

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl


@dataclass(frozen=True)
class CacheHit:
    """An entry seen at one moment, its records carrying the remaining TTL.

    A stale hit (only returned when asked for) has a remaining TTL of 0.
    """

    entry: CacheEntry
    records: tuple[RR, ...]
    remaining_ttl: int
    age: float

    @property
    def negative(self) -> NegativeKind | None:
        return self.entry.negative

    @property
    def stale(self) -> bool:
        return self.age >= self.entry.ttl


@dataclass(frozen=True)
class FailureHit:
    """A cached server failure for one name and type (RFC 2308 section 7)."""

    reason: str
    remaining: float  # seconds


@dataclass(frozen=True)
class _Failure:
    reason: str
    expires_at: float


class Cache:
    """A bounded cache with per-entry expiry and least-recently-used eviction.

    `max_entries` bounds the RRsets and negative answers, stale ones
    included, and separately the cached server failures.
    """

    def __init__(
        self,
        clock: Clock,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        min_ttl: int = DEFAULT_MIN_TTL,
        max_ttl: int = DEFAULT_MAX_TTL,
        stale_window: float = 0.0,
    ) -> None:
        if min_ttl > max_ttl:
            raise ValueError(
                f"minimum TTL {min_ttl} s is above the maximum TTL {max_ttl} s"
            )
        self._clock = clock
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.stale_window = stale_window
        self._entries: TLRUCache[CacheKey, CacheEntry] = TLRUCache(
            maxsize=max_entries, ttu=self._expiry_time, timer=clock
        )
        self._failures: TLRUCache[CacheKey, _Failure] = TLRUCache(
            maxsize=max_entries, ttu=_failure_expiry, timer=clock
        )

    def __len__(self) -> int:
        """Count the entries held, stale ones included."""
        return sum(1 for _ in self._entries)

    def clamp_ttl(self, ttl: int) -> int:
        """Apply the TTL rules of the module docstring to one received TTL."""
        if ttl >= TTL_TOP_BIT or ttl <= 0:
            # RFC 2181 section 8 reads a TTL with the top bit set as 0.
            # RFC 8767 section 4 would read it as large and cap it instead.
            return 0
        return max(self.min_ttl, min(ttl, self.max_ttl))

    def store_rrset(
        self,
        records: Sequence[RR],
        credibility: Credibility,
        source: str,
        *,
        glue_for: DNSLabel | None = None,
    ) -> bool:
        """Cache one RRset under the lowest TTL of its records.

        RFC 2181 section 5.2 requires one TTL per RRset, so the lowest one is
        used if they differ. Glue names with `glue_for` the zone whose
        referral carried it. Returns False when nothing was stored: a TTL of
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
        ttl = min(self.clamp_ttl(record.ttl) for record in records)
        zones = frozenset() if glue_for is None else frozenset({name_key(glue_for)})
        entry = CacheEntry(
            first.rname,
            first.rtype,
            tuple(records),
            ttl,
            self._clock(),
            credibility,
            source,
            glue_for=zones,
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

        The TTL is min(SOA TTL, SOA MINIMUM), RFC 2308 section 5, clamped as
        any TTL and capped at 3 hours. Negative answers come from
        authoritative replies, so they rank as answers.
        """
        rdata = soa.rdata
        if not isinstance(rdata, SOA):
            raise TypeError(
                f"negative answer for {name} needs an SOA record, got {rdata}"
            )
        minimum = int(rdata.times[4])
        ttl = min(self.clamp_ttl(min(soa.ttl, minimum)), MAX_NEGATIVE_TTL)
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

    def store_failure(self, name: DNSLabel, rtype: int, reason: str) -> None:
        """Remember for SERVFAIL_TTL seconds that `name` `rtype` failed."""
        ttl = min(SERVFAIL_TTL, self.max_ttl)
        if ttl <= 0:
            return
        failure = _Failure(reason, self._clock() + ttl)
        self._failures[(name_key(name), rtype)] = failure

    def lookup_failure(self, name: DNSLabel, rtype: int) -> FailureHit | None:
        """Return the live cached server failure for `name` `rtype`, or None."""
        failure = self._failures.get((name_key(name), rtype))
        if failure is None:
            return None
        return FailureHit(failure.reason, failure.expires_at - self._clock())

    def lookup(
        self,
        name: DNSLabel,
        rtype: int,
        min_credibility: Credibility = Credibility.GLUE,
        *,
        delegation: DNSLabel | None = None,
        stale: bool = False,
    ) -> CacheHit | None:
        """Find the data for `name` and `rtype`, or a negative answer.

        With `delegation`, glue counts only if a referral to that zone
        brought it. Without it, glue is returned like other data. With
        `stale`, expired entries still in the stale window count too, after
        live ones. When both an RRset and an NXDOMAIN entry for the name
        qualify, the one of higher credibility wins, and between equals the
        newer one.
        """
        now = self._clock()
        key = name_key(name)
        candidates = [
            entry
            for entry in (
                self._entries.get((key, rtype)),
                self._entries.get((key, NXDOMAIN_TYPE)),
            )
            if entry is not None
            and entry.credibility >= min_credibility
            and (stale or entry.expires_at > now)
            and _usable_for(entry, delegation)
        ]
        if not candidates:
            return None
        best = max(
            candidates,
            key=lambda entry: (
                entry.expires_at > now,
                entry.credibility,
                entry.stored_at,
            ),
        )
        return self._hit(best, now)

    def entries(self) -> list[CacheHit]:
        """List every live entry as of now, in the order first stored."""
        now = self._clock()
        # Iterating a TLRUCache yields only keys it still holds. Reading
        # through the base class leaves the LRU order alone, so listing is
        # not a use.
        stored = [BaseCache.__getitem__(self._entries, key) for key in self._entries]
        return [self._hit(entry, now) for entry in stored if entry.expires_at > now]

    def clear(self) -> None:
        self._entries.clear()
        self._failures.clear()

    def flush(self, name: DNSLabel) -> int:
        """Remove every entry at or below `name`; return how many went.

        Cached server failures at or below `name` go too, uncounted.
        """
        suffix = name_key(name)

        def below(key: CacheKey) -> bool:
            owner = key[0]
            return not suffix or owner[-len(suffix) :] == suffix

        removed = [key for key in self._entries if below(key)]
        for key in removed:
            del self._entries[key]
        for key in [key for key in self._failures if below(key)]:
            del self._failures[key]
        return len(removed)

    def _store(self, key: CacheKey, entry: CacheEntry) -> bool:
        if entry.ttl <= 0:
            return False
        current = self._entries.get(key)
        live = current is not None and current.expires_at > self._clock()
        if current is not None and live:
            if current.credibility > entry.credibility:
                return False
            entry = _merge_glue(current, entry)
        self._entries[key] = entry
        return True

    def _expiry_time(self, _key: CacheKey, entry: CacheEntry, _now: float) -> float:
        # The cache drops an entry only after the stale window too.
        return entry.expires_at + self.stale_window

    def _hit(self, entry: CacheEntry, now: float) -> CacheHit:
        age = now - entry.stored_at
        # Round down, so an answer never claims more lifetime than is left.
        remaining = max(0, int(entry.ttl - age))
        records = tuple(with_ttl(record, remaining) for record in entry.records)
        return CacheHit(entry, records, remaining, age)


def with_ttl(record: RR, ttl: int) -> RR:
    """Return a copy of `record` with TTL `ttl`."""
    return RR(record.rname, record.rtype, record.rclass, ttl, record.rdata)


def _usable_for(entry: CacheEntry, delegation: DNSLabel | None) -> bool:
    if delegation is None or entry.credibility is not Credibility.GLUE:
        return True
    return name_key(delegation) in entry.glue_for


def _merge_glue(current: CacheEntry, new: CacheEntry) -> CacheEntry:
    # The same glue from a second referral (a.gtld-servers.net for com.
    # and for net.) serves both zones. Different addresses replace the
    # old ones, and only the new zone may use them.
    same_kind = current.credibility == new.credibility == Credibility.GLUE
    if same_kind and _rdata_set(current) == _rdata_set(new):
        return replace(new, glue_for=current.glue_for | new.glue_for)
    return new


def _rdata_set(entry: CacheEntry) -> frozenset[str]:
    return frozenset(str(record.rdata) for record in entry.records)


def _failure_expiry(_key: CacheKey, failure: _Failure, _now: float) -> float:
    return failure.expires_at


def group_rrsets(records: Sequence[RR]) -> list[list[RR]]:
    """Group records into RRsets by owner name and type, in order."""
    groups: dict[CacheKey, list[RR]] = {}
    for rr in records:
        groups.setdefault((name_key(rr.rname), rr.rtype), []).append(rr)
    return list(groups.values())


def normalised_ttls(
    records: Sequence[RR], clamp: Callable[[int], int]
) -> tuple[RR, ...]:
    """Give each RRset of `records` its lowest TTL after `clamp`, which is
    the TTL the cache stores it under."""
    lowest: dict[CacheKey, int] = {}
    for rr in records:
        key = (name_key(rr.rname), rr.rtype)
        lowest[key] = min(lowest.get(key, clamp(rr.ttl)), clamp(rr.ttl))
    return tuple(with_ttl(rr, lowest[(name_key(rr.rname), rr.rtype)]) for rr in records)
