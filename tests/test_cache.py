"""The resolver cache: TTLs that count down on a fake clock, TTL clamps,
credibility, glue, negative answers (RFC 2308), server failures, stale
data and the size bound."""

import pytest
from dnslib import QTYPE, RR, DNSLabel
from fakenet import FakeClock

from dns_toy.cache import (
    DEFAULT_MAX_TTL,
    MAX_NEGATIVE_TTL,
    NXDOMAIN_TYPE,
    SERVFAIL_TTL,
    Cache,
    CacheHit,
    Credibility,
    NegativeKind,
)

SOURCE = "192.0.2.53"


def rrs(text: str) -> list[RR]:
    return RR.fromZone(text)


def soa(ttl: int, minimum: int) -> RR:
    return rrs(
        f"example.com. {ttl} IN SOA ns1.example.com. admin.example.com. "
        f"1 7200 3600 1209600 {minimum}"
    )[0]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> Cache:
    return Cache(clock)


def www(cache: Cache, rtype: int = QTYPE.A) -> CacheHit | None:
    return cache.lookup(DNSLabel("www.example.com"), rtype)


def test_remaining_ttl_counts_down(cache: Cache, clock: FakeClock) -> None:
    assert cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(25)
    hit = cache.lookup(DNSLabel("WWW.Example.com"), QTYPE.A)
    assert hit is not None
    assert hit.remaining_ttl == 35
    assert [rr.ttl for rr in hit.records] == [35]
    assert hit.age == 25
    assert hit.entry.ttl == 60


def test_remaining_ttl_rounds_down(cache: Cache, clock: FakeClock) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(0.5)
    hit = cache.lookup(DNSLabel("www.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.remaining_ttl == 59


def test_expires_exactly_at_ttl(cache: Cache, clock: FakeClock) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(59.999)
    assert www(cache) is not None
    clock.advance(0.001)
    assert www(cache) is None
    assert len(cache) == 0


def test_ttl_zero_not_stored(cache: Cache) -> None:
    assert not cache.store_rrset(
        rrs("www.example.com. 0 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    assert www(cache) is None


def test_rrset_takes_lowest_ttl(cache: Cache) -> None:
    records = rrs(
        "www.example.com. 300 IN A 192.0.2.1\nwww.example.com. 100 IN A 192.0.2.2"
    )
    cache.store_rrset(records, Credibility.ANSWER, SOURCE)
    hit = cache.lookup(DNSLabel("www.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.ttl == 100
    assert [rr.ttl for rr in hit.records] == [100, 100]


def test_ttl_capped_at_one_day(cache: Cache) -> None:
    assert DEFAULT_MAX_TTL == 86_400
    cache.store_rrset(
        rrs(f"a.example.com. {DEFAULT_MAX_TTL + 5} IN A 192.0.2.1"),
        Credibility.ANSWER,
        SOURCE,
    )
    hit = cache.lookup(DNSLabel("a.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.ttl == DEFAULT_MAX_TTL


@pytest.mark.parametrize("ttl", [2**31, 2**31 + 300, 2**32 - 1])
def test_ttl_top_bit_counts_as_zero(cache: Cache, ttl: int) -> None:
    # RFC 2181 section 8: a TTL with the top bit set is read as 0.
    assert cache.clamp_ttl(ttl) == 0
    stored = cache.store_rrset(
        rrs(f"b.example.com. {ttl} IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    assert not stored
    assert cache.lookup(DNSLabel("b.example.com"), QTYPE.A) is None


def test_top_bit_ttl_lowers_rrset(cache: Cache) -> None:
    records = rrs(
        "www.example.com. 300 IN A 192.0.2.1\n"
        f"www.example.com. {2**31 + 5} IN A 192.0.2.2"
    )
    assert not cache.store_rrset(records, Credibility.ANSWER, SOURCE)


def test_max_ttl_option_caps(clock: FakeClock) -> None:
    cache = Cache(clock, max_ttl=60)
    cache.store_rrset(
        rrs("www.example.com. 3600 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    hit = www(cache)
    assert hit is not None
    assert hit.entry.ttl == 60
    clock.advance(60)
    assert www(cache) is None


def test_min_ttl_raises_short_ttls(clock: FakeClock) -> None:
    cache = Cache(clock, min_ttl=120)
    cache.store_rrset(
        rrs("www.example.com. 5 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(100)
    hit = www(cache)
    assert hit is not None
    assert hit.entry.ttl == 120
    assert hit.remaining_ttl == 20


def test_min_ttl_leaves_ttl_zero_uncached(clock: FakeClock) -> None:
    cache = Cache(clock, min_ttl=120)
    assert cache.clamp_ttl(0) == 0
    assert not cache.store_rrset(
        rrs("www.example.com. 0 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    assert www(cache) is None


def test_min_ttl_above_max_rejected(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="minimum TTL 600 s is above"):
        Cache(clock, min_ttl=600, max_ttl=60)


def test_negative_ttl_clamped(clock: FakeClock) -> None:
    cache = Cache(clock, max_ttl=100)
    cache.store_negative(
        NegativeKind.NXDOMAIN,
        DNSLabel("x.example.com"),
        QTYPE.A,
        soa(ttl=3600, minimum=3600),
        SOURCE,
    )
    hit = cache.lookup(DNSLabel("x.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.ttl == 100


def test_mixed_rrset_rejected(cache: Cache) -> None:
    records = rrs("a.example.com. 60 IN A 192.0.2.1\nb.example.com. 60 IN A 192.0.2.2")
    with pytest.raises(ValueError, match="is not in the RRset"):
        cache.store_rrset(records, Credibility.ANSWER, SOURCE)


@pytest.mark.parametrize(
    ("stored", "incoming", "replaced"),
    [
        (Credibility.GLUE, Credibility.ANSWER, True),
        (Credibility.AUTHORITY, Credibility.ANSWER, True),
        (Credibility.GLUE, Credibility.GLUE, True),
        (Credibility.ANSWER, Credibility.ANSWER, True),
        (Credibility.ANSWER, Credibility.GLUE, False),
        (Credibility.ANSWER, Credibility.AUTHORITY, False),
        (Credibility.AUTHORITY, Credibility.GLUE, False),
    ],
)
def test_credibility_order(
    cache: Cache, stored: Credibility, incoming: Credibility, replaced: bool
) -> None:
    cache.store_rrset(rrs("ns.example.com. 600 IN A 192.0.2.1"), stored, "old")
    result = cache.store_rrset(
        rrs("ns.example.com. 600 IN A 192.0.2.2"), incoming, "new"
    )
    assert result is replaced
    hit = cache.lookup(DNSLabel("ns.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.source == ("new" if replaced else "old")


def test_lower_credibility_after_expiry(cache: Cache, clock: FakeClock) -> None:
    cache.store_rrset(
        rrs("ns.example.com. 10 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(10)
    assert cache.store_rrset(
        rrs("ns.example.com. 60 IN A 192.0.2.2"), Credibility.GLUE, SOURCE
    )


def test_min_credibility_filters(cache: Cache) -> None:
    cache.store_rrset(
        rrs("ns.example.com. 600 IN A 192.0.2.1"), Credibility.GLUE, SOURCE
    )
    name = DNSLabel("ns.example.com")
    assert cache.lookup(name, QTYPE.A) is not None
    assert cache.lookup(name, QTYPE.A, Credibility.ANSWER) is None


def test_negative_ttl_soa_ttl_lower(cache: Cache) -> None:
    cache.store_negative(
        NegativeKind.NODATA,
        DNSLabel("www.example.com"),
        QTYPE.MX,
        soa(ttl=120, minimum=300),
        SOURCE,
    )
    hit = cache.lookup(DNSLabel("www.example.com"), QTYPE.MX)
    assert hit is not None
    assert hit.negative is NegativeKind.NODATA
    assert hit.entry.ttl == 120


def test_negative_ttl_minimum_lower(cache: Cache, clock: FakeClock) -> None:
    cache.store_negative(
        NegativeKind.NODATA,
        DNSLabel("www.example.com"),
        QTYPE.MX,
        soa(ttl=3600, minimum=300),
        SOURCE,
    )
    clock.advance(100)
    hit = cache.lookup(DNSLabel("www.example.com"), QTYPE.MX)
    assert hit is not None
    assert hit.remaining_ttl == 200
    # The SOA is returned with the remaining negative TTL.
    assert [rr.ttl for rr in hit.records] == [200]
    clock.advance(200)
    assert cache.lookup(DNSLabel("www.example.com"), QTYPE.MX) is None


def test_negative_ttl_capped(cache: Cache) -> None:
    cache.store_negative(
        NegativeKind.NXDOMAIN,
        DNSLabel("x.example.com"),
        QTYPE.A,
        soa(ttl=86400, minimum=86400),
        SOURCE,
    )
    hit = cache.lookup(DNSLabel("x.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.ttl == MAX_NEGATIVE_TTL


def test_nodata_covers_one_type(cache: Cache) -> None:
    cache.store_negative(
        NegativeKind.NODATA,
        DNSLabel("www.example.com"),
        QTYPE.MX,
        soa(300, 300),
        SOURCE,
    )
    assert cache.lookup(DNSLabel("www.example.com"), QTYPE.A) is None


def test_nxdomain_covers_every_type(cache: Cache) -> None:
    cache.store_negative(
        NegativeKind.NXDOMAIN,
        DNSLabel("nosuch.example.com"),
        QTYPE.A,
        soa(300, 300),
        SOURCE,
    )
    for rtype in (QTYPE.A, QTYPE.MX, QTYPE.TXT):
        hit = cache.lookup(DNSLabel("nosuch.example.com"), rtype)
        assert hit is not None
        assert hit.negative is NegativeKind.NXDOMAIN
        assert hit.entry.rtype == NXDOMAIN_TYPE


def test_nxdomain_outranks_glue(cache: Cache, clock: FakeClock) -> None:
    name = DNSLabel("ns.example.com")
    cache.store_rrset(
        rrs("ns.example.com. 600 IN A 192.0.2.1"), Credibility.GLUE, SOURCE
    )
    clock.advance(1)
    cache.store_negative(NegativeKind.NXDOMAIN, name, QTYPE.A, soa(300, 300), SOURCE)
    hit = cache.lookup(name, QTYPE.A)
    assert hit is not None
    assert hit.negative is NegativeKind.NXDOMAIN


def test_newer_answer_outranks_nxdomain(cache: Cache, clock: FakeClock) -> None:
    name = DNSLabel("new.example.com")
    cache.store_negative(NegativeKind.NXDOMAIN, name, QTYPE.A, soa(300, 300), SOURCE)
    clock.advance(1)
    cache.store_rrset(
        rrs("new.example.com. 600 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    hit = cache.lookup(name, QTYPE.A)
    assert hit is not None
    assert hit.negative is None


def test_negative_needs_soa(cache: Cache) -> None:
    record = rrs("example.com. 300 IN A 192.0.2.1")[0]
    with pytest.raises(TypeError, match="needs an SOA"):
        cache.store_negative(
            NegativeKind.NODATA, DNSLabel("example.com"), QTYPE.MX, record, SOURCE
        )


def test_lru_eviction_at_max_entries(clock: FakeClock) -> None:
    cache = Cache(clock, max_entries=2)
    for name in ("a", "b"):
        cache.store_rrset(
            rrs(f"{name}.example.com. 600 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
        )
    # Using a makes b the least recently used entry.
    assert cache.lookup(DNSLabel("a.example.com"), QTYPE.A) is not None
    cache.store_rrset(
        rrs("c.example.com. 600 IN A 192.0.2.3"), Credibility.ANSWER, SOURCE
    )
    assert len(cache) == 2
    assert cache.lookup(DNSLabel("b.example.com"), QTYPE.A) is None
    assert cache.lookup(DNSLabel("a.example.com"), QTYPE.A) is not None
    assert cache.lookup(DNSLabel("c.example.com"), QTYPE.A) is not None


def test_entries_lists_live_data(cache: Cache, clock: FakeClock) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, "192.0.2.53"
    )
    cache.store_rrset(
        rrs("short.example.com. 5 IN A 192.0.2.2"), Credibility.GLUE, "192.0.2.54"
    )
    cache.store_negative(
        NegativeKind.NXDOMAIN,
        DNSLabel("no.example.com"),
        QTYPE.A,
        soa(300, 30),
        "192.0.2.55",
    )
    clock.advance(10)
    listed = [
        (
            str(hit.entry.name),
            hit.entry.rtype,
            hit.entry.ttl,
            hit.remaining_ttl,
            hit.age,
            hit.entry.credibility,
            hit.entry.source,
            hit.negative,
        )
        for hit in cache.entries()
    ]
    assert listed == [
        (
            "www.example.com.",
            QTYPE.A,
            60,
            50,
            10,
            Credibility.ANSWER,
            "192.0.2.53",
            None,
        ),
        (
            "no.example.com.",
            NXDOMAIN_TYPE,
            30,
            20,
            10,
            Credibility.ANSWER,
            "192.0.2.55",
            NegativeKind.NXDOMAIN,
        ),
    ]


def test_entries_leaves_lru_order(clock: FakeClock) -> None:
    cache = Cache(clock, max_entries=2)
    for name in ("a", "b"):
        cache.store_rrset(
            rrs(f"{name}.example.com. 600 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
        )
    cache.entries()
    cache.store_rrset(
        rrs("c.example.com. 600 IN A 192.0.2.3"), Credibility.ANSWER, SOURCE
    )
    assert cache.lookup(DNSLabel("a.example.com"), QTYPE.A) is None


def test_clear_empties(cache: Cache) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    cache.clear()
    assert len(cache) == 0


# Glue: only for the delegation whose referral brought it.


def test_glue_only_for_its_delegation(cache: Cache) -> None:
    name = DNSLabel("ns1.example.com")
    cache.store_rrset(
        rrs("ns1.example.com. 600 IN A 192.0.2.1"),
        Credibility.GLUE,
        SOURCE,
        glue_for=DNSLabel("example.com"),
    )
    assert cache.lookup(name, QTYPE.A, delegation=DNSLabel("example.com"))
    assert cache.lookup(name, QTYPE.A, delegation=DNSLabel("other.com")) is None
    assert cache.lookup(name, QTYPE.A, Credibility.ANSWER) is None


def test_glue_from_two_referrals_serves_both(cache: Cache) -> None:
    name = DNSLabel("a.gtld-servers.net")
    for zone in ("com", "net"):
        cache.store_rrset(
            rrs("a.gtld-servers.net. 600 IN A 192.0.2.5"),
            Credibility.GLUE,
            SOURCE,
            glue_for=DNSLabel(zone),
        )
    assert cache.lookup(name, QTYPE.A, delegation=DNSLabel("com")) is not None
    assert cache.lookup(name, QTYPE.A, delegation=DNSLabel("net")) is not None


def test_glue_with_new_addresses_drops_old_zone(cache: Cache) -> None:
    name = DNSLabel("ns.example.net")
    cache.store_rrset(
        rrs("ns.example.net. 600 IN A 192.0.2.5"),
        Credibility.GLUE,
        SOURCE,
        glue_for=DNSLabel("com"),
    )
    cache.store_rrset(
        rrs("ns.example.net. 600 IN A 192.0.2.6"),
        Credibility.GLUE,
        SOURCE,
        glue_for=DNSLabel("net"),
    )
    assert cache.lookup(name, QTYPE.A, delegation=DNSLabel("com")) is None
    hit = cache.lookup(name, QTYPE.A, delegation=DNSLabel("net"))
    assert hit is not None
    assert [str(rr.rdata) for rr in hit.records] == ["192.0.2.6"]


def test_glue_replaced_by_answer(cache: Cache) -> None:
    name = DNSLabel("ns1.example.com")
    cache.store_rrset(
        rrs("ns1.example.com. 600 IN A 192.0.2.1"),
        Credibility.GLUE,
        SOURCE,
        glue_for=DNSLabel("example.com"),
    )
    assert cache.store_rrset(
        rrs("ns1.example.com. 300 IN A 192.0.2.9"), Credibility.ANSWER, "other"
    )
    hit = cache.lookup(name, QTYPE.A, delegation=DNSLabel("other.com"))
    assert hit is not None
    assert hit.entry.credibility is Credibility.ANSWER
    assert [str(rr.rdata) for rr in hit.records] == ["192.0.2.9"]


# Server failures, RFC 2308 section 7.


def test_servfail_cached_30_seconds(cache: Cache, clock: FakeClock) -> None:
    assert SERVFAIL_TTL == 30
    name = DNSLabel("www.example.com")
    cache.store_failure(name, QTYPE.A, "no server replied")
    clock.advance(29.5)
    hit = cache.lookup_failure(DNSLabel("WWW.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.reason == "no server replied"
    assert hit.remaining == pytest.approx(0.5)
    clock.advance(0.5)
    assert cache.lookup_failure(name, QTYPE.A) is None


def test_servfail_per_name_and_type(cache: Cache) -> None:
    cache.store_failure(DNSLabel("www.example.com"), QTYPE.A, "failed")
    assert cache.lookup_failure(DNSLabel("www.example.com"), QTYPE.MX) is None
    assert cache.lookup_failure(DNSLabel("ftp.example.com"), QTYPE.A) is None


def test_servfail_keeps_data(cache: Cache) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    cache.store_failure(DNSLabel("www.example.com"), QTYPE.A, "failed")
    assert www(cache) is not None


# Stale data for serve-stale (RFC 8767).


def test_expired_hidden_without_stale(clock: FakeClock) -> None:
    cache = Cache(clock, stale_window=3600)
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(60)
    assert www(cache) is None
    assert cache.entries() == []


def test_stale_lookup_within_window(clock: FakeClock) -> None:
    cache = Cache(clock, stale_window=3600)
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(60 + 3599)
    hit = cache.lookup(DNSLabel("www.example.com"), QTYPE.A, stale=True)
    assert hit is not None
    assert hit.stale
    assert hit.remaining_ttl == 0
    clock.advance(1)
    assert cache.lookup(DNSLabel("www.example.com"), QTYPE.A, stale=True) is None
    assert len(cache) == 0


def test_no_stale_window_drops_at_expiry(cache: Cache, clock: FakeClock) -> None:
    cache.store_rrset(
        rrs("www.example.com. 60 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(60)
    assert cache.lookup(DNSLabel("www.example.com"), QTYPE.A, stale=True) is None


def test_stale_entry_does_not_block_glue(clock: FakeClock) -> None:
    cache = Cache(clock, stale_window=3600)
    cache.store_rrset(
        rrs("ns.example.com. 10 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(10)
    assert cache.store_rrset(
        rrs("ns.example.com. 60 IN A 192.0.2.2"), Credibility.GLUE, SOURCE
    )


def test_live_entry_wins_over_stale(clock: FakeClock) -> None:
    cache = Cache(clock, stale_window=3600)
    name = DNSLabel("new.example.com")
    cache.store_rrset(
        rrs("new.example.com. 10 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
    )
    clock.advance(20)
    cache.store_negative(NegativeKind.NXDOMAIN, name, QTYPE.A, soa(300, 300), SOURCE)
    hit = cache.lookup(name, QTYPE.A, stale=True)
    assert hit is not None
    assert hit.negative is NegativeKind.NXDOMAIN


def test_flush_removes_subtree(cache: Cache) -> None:
    for name in ("example.com", "www.example.com", "www.example.net"):
        cache.store_rrset(
            rrs(f"{name}. 600 IN A 192.0.2.1"), Credibility.ANSWER, SOURCE
        )
    cache.store_failure(DNSLabel("ftp.example.com"), QTYPE.A, "failed")
    assert cache.flush(DNSLabel("example.com")) == 2
    assert cache.lookup(DNSLabel("www.example.net"), QTYPE.A) is not None
    assert cache.lookup_failure(DNSLabel("ftp.example.com"), QTYPE.A) is None
