"""Iterative resolution against a fake hierarchy on an in-memory network.

The hierarchy: the root delegates com. and net.; com. delegates
example.com. (with glue) and glueless.com. (to a name under net., without
glue); net. delegates example.net. The clock is fake, so TTLs and timeouts
are exact and cost no real time.
"""

import asyncio
import random

import pytest
from dnslib import QTYPE, RCODE, DNSLabel, DNSRecord
from fakenet import (
    FakeClock,
    FakeNetwork,
    authority,
    garbage,
    refused,
    silent,
    timeouts_then,
    with_extra,
    wrong_id,
)

import dns_toy.delegation
import dns_toy.iterator
import dns_toy.replies
import dns_toy.trace
from dns_toy.authority import answer_query
from dns_toy.cache import NegativeKind
from dns_toy.iterator import Limits, Resolution, Resolver
from dns_toy.policy_trace import CachedFailureEvent, PolicyEvent
from dns_toy.replies import Outcome, classify_reply
from dns_toy.resolver_options import ResolverOptions
from dns_toy.trace import CacheEvent, FailureEvent, NestedLookupEvent, QueryEvent

ROOT_ADDRESS = "198.51.100.1"
COM_ADDRESS = "198.51.100.10"
NET_ADDRESS = "198.51.100.20"
EXAMPLE_COM_1 = "192.0.2.1"
EXAMPLE_COM_2 = "192.0.2.2"
EXAMPLE_NET = "192.0.2.20"
GLUELESS_COM = "192.0.2.30"

ROOT_HINTS = [("a.root-servers.test.", ROOT_ADDRESS)]
SERVER_PORT = 5300

ROOT = """\
$ORIGIN .
$TTL 86400
@                   IN SOA a.root-servers.test. admin.root-servers.test. (
                           1 1800 900 604800 86400 )
@                   IN NS  a.root-servers.test.
com.                IN NS  ns.nic.com.
ns.nic.com.         IN A   198.51.100.10
net.                IN NS  ns.nic.net.
ns.nic.net.         IN A   198.51.100.20
"""

COM = """\
$ORIGIN com.
$TTL 86400
@            IN SOA ns.nic.com. admin.nic.com. 1 1800 900 604800 900
@            IN NS  ns.nic.com.
ns.nic       IN A   198.51.100.10
example      IN NS  ns1.example.com.
example      IN NS  ns2.example.com.
ns1.example  IN A   192.0.2.1
ns2.example  IN A   192.0.2.2
glueless     IN NS  ns.example.net.
"""

NET = """\
$ORIGIN net.
$TTL 86400
@            IN SOA ns.nic.net. admin.nic.net. 1 1800 900 604800 900
@            IN NS  ns.nic.net.
ns.nic       IN A   198.51.100.20
example      IN NS  ns1.example.net.
ns1.example  IN A   192.0.2.20
"""

# NXDOMAIN and NODATA are cached for min(SOA TTL 3600, MINIMUM 300) = 300 s.
EXAMPLE_COM = """\
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 admin 1 7200 3600 1209600 300
@        IN NS  ns1
@        IN NS  ns2
ns1      IN A   192.0.2.1
ns2      IN A   192.0.2.2
www      IN A   192.0.2.80
ftp      IN CNAME www
alias    IN CNAME www.example.net.
loop     IN CNAME loop.example.net.
short 30 IN A   192.0.2.81
zero  0  IN A   192.0.2.82
c1       IN CNAME c2.example.net.
c3       IN CNAME c4.example.net.
c5       IN CNAME c6.example.net.
c7       IN CNAME c8.example.net.
c9       IN CNAME c10.example.net.
"""

EXAMPLE_NET_ZONE = """\
$ORIGIN example.net.
$TTL 600
@        IN SOA ns1 admin 1 7200 3600 1209600 60
@        IN NS  ns1
ns1      IN A   192.0.2.20
ns       IN A   192.0.2.30
www      IN A   192.0.2.90
loop     IN CNAME loop.example.com.
c2       IN CNAME c3.example.com.
c4       IN CNAME c5.example.com.
c6       IN CNAME c7.example.com.
c8       IN CNAME c9.example.com.
c10      IN A   192.0.2.99
"""

GLUELESS = """\
$ORIGIN glueless.com.
$TTL 600
@        IN SOA ns.example.net. admin 1 7200 3600 1209600 60
@        IN NS  ns.example.net.
www      IN A   192.0.2.31
"""


class Hierarchy:
    """The fake hierarchy, its network, clock and a resolver over them."""

    def __init__(
        self, limits: Limits | None = None, options: ResolverOptions | None = None
    ) -> None:
        self.clock = FakeClock()
        self.network = FakeNetwork(self.clock)
        self.catalogs = {
            ROOT_ADDRESS: authority(ROOT),
            COM_ADDRESS: authority(COM),
            NET_ADDRESS: authority(NET),
            EXAMPLE_COM_1: authority(EXAMPLE_COM),
            EXAMPLE_COM_2: authority(EXAMPLE_COM),
            EXAMPLE_NET: authority(EXAMPLE_NET_ZONE),
            GLUELESS_COM: authority(GLUELESS),
        }
        for address, catalog in self.catalogs.items():
            self.network.add(address, catalog)
        self.resolver = Resolver(
            self.network,
            self.clock,
            ROOT_HINTS,
            SERVER_PORT,
            limits=limits,
            options=options,
            rng=random.Random(7),
        )

    def resolve(self, name: str, qtype: str = "A") -> Resolution:
        return asyncio.run(self.resolver.resolve(name, QTYPE.reverse[qtype]))


@pytest.fixture
def net() -> Hierarchy:
    return Hierarchy()


def addresses(resolution: Resolution) -> list[str]:
    return [str(rr.rdata) for rr in resolution.answer if rr.rtype == QTYPE.A]


def records(resolution: Resolution) -> list[tuple[str, str, int, str]]:
    return [
        (str(rr.rname), QTYPE[rr.rtype], rr.ttl, str(rr.rdata))
        for rr in resolution.answer
    ]


def outcomes(resolution: Resolution) -> list[tuple[str, Outcome]]:
    return [
        (event.address, event.outcome)
        for event in resolution.trace
        if isinstance(event, QueryEvent)
    ]


# Referrals and the cache.


def test_referrals_root_tld_leaf(net: Hierarchy) -> None:
    result = net.resolve("www.example.com")
    assert result.rcode == RCODE.NOERROR
    assert records(result) == [("www.example.com.", "A", 3600, "192.0.2.80")]
    assert net.network.queries == {ROOT_ADDRESS: 1, COM_ADDRESS: 1, EXAMPLE_COM_1: 1}
    assert result.queries == 3
    assert outcomes(result) == [
        (ROOT_ADDRESS, Outcome.REFERRAL),
        (COM_ADDRESS, Outcome.REFERRAL),
        (EXAMPLE_COM_1, Outcome.ANSWER),
    ]


def test_queries_use_server_port_and_rd_0(net: Hierarchy) -> None:
    seen: list[DNSRecord] = []
    catalog = net.catalogs[ROOT_ADDRESS]

    def recording(query: DNSRecord) -> DNSRecord:
        seen.append(query)
        return answer_query(query, catalog)

    net.network.add(ROOT_ADDRESS, recording)
    net.resolve("www.example.com")
    assert {sent.port for sent in net.network.log} == {SERVER_PORT}
    assert seen[0].header.rd == 0


def test_second_resolution_from_cache(net: Hierarchy) -> None:
    net.resolve("www.example.com")
    before = net.network.total
    net.clock.advance(100)
    result = net.resolve("www.example.com")
    assert net.network.total == before
    assert result.queries == 0
    assert records(result) == [("www.example.com.", "A", 3500, "192.0.2.80")]
    assert [type(event) for event in result.trace] == [PolicyEvent, CacheEvent]


def test_sibling_name_starts_at_cached_zone(net: Hierarchy) -> None:
    net.resolve("www.example.com")
    result = net.resolve("ftp.example.com")
    # The nearest policy tries ns2, never measured, before ns1.
    assert outcomes(result) == [(EXAMPLE_COM_2, Outcome.ANSWER)]
    assert addresses(result) == ["192.0.2.80"]


def test_in_zone_cname_returns_chain(net: Hierarchy) -> None:
    result = net.resolve("ftp.example.com")
    assert records(result) == [
        ("ftp.example.com.", "CNAME", 3600, "www.example.com."),
        ("www.example.com.", "A", 3600, "192.0.2.80"),
    ]
    # The target came in the same reply: no query of its own.
    assert net.network.queries[EXAMPLE_COM_1] == 1


def test_cname_across_zones(net: Hierarchy) -> None:
    result = net.resolve("alias.example.com")
    assert result.rcode == RCODE.NOERROR
    assert records(result) == [
        ("alias.example.com.", "CNAME", 3600, "www.example.net."),
        ("www.example.net.", "A", 600, "192.0.2.90"),
    ]
    assert net.network.queries[EXAMPLE_NET] == 1
    assert net.network.queries[NET_ADDRESS] == 1


def test_cached_cname_followed(net: Hierarchy) -> None:
    net.resolve("alias.example.com")
    before = net.network.total
    result = net.resolve("alias.example.com")
    assert net.network.total == before
    assert addresses(result) == ["192.0.2.90"]
    assert [rr.rtype for rr in result.answer] == [QTYPE.CNAME, QTYPE.A]


def test_glueless_delegation(net: Hierarchy) -> None:
    result = net.resolve("www.glueless.com")
    assert result.rcode == RCODE.NOERROR
    assert addresses(result) == ["192.0.2.31"]
    nested = [e for e in result.trace if isinstance(e, NestedLookupEvent)]
    assert [(e.server, e.zone) for e in nested] == [
        ("ns.example.net.", "glueless.com.")
    ]
    # The root and com. give the referral without glue. The nested lookup
    # of ns.example.net asks the root again (net. is not cached yet), then
    # net. and example.net., and the glueless zone's server comes last.
    assert net.network.queries[ROOT_ADDRESS] == 2
    assert net.network.queries[COM_ADDRESS] == 1
    assert net.network.queries[GLUELESS_COM] == 1
    assert net.network.queries[EXAMPLE_NET] == 1
    assert net.network.queries[NET_ADDRESS] == 1
    assert result.queries == net.network.total


def test_glueless_nested_events_are_deeper(net: Hierarchy) -> None:
    result = net.resolve("www.glueless.com")
    depths = {e.address: e.depth for e in result.trace if isinstance(e, QueryEvent)}
    assert depths[EXAMPLE_NET] == 1
    assert depths[GLUELESS_COM] == 0


# Negative answers.


def test_nxdomain_cached_until_soa_ttl(net: Hierarchy) -> None:
    result = net.resolve("nosuch.example.com")
    assert result.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in result.authority] == ["SOA"]
    assert result.authority[0].ttl == 300
    sent_before = net.network.total

    net.clock.advance(299.5)
    cached = net.resolve("nosuch.example.com", "MX")
    assert cached.rcode == RCODE.NXDOMAIN
    assert cached.queries == 0
    assert cached.authority[0].ttl == 0

    net.clock.advance(0.5)
    again = net.resolve("nosuch.example.com")
    assert again.rcode == RCODE.NXDOMAIN
    assert again.queries == 1
    assert net.network.total == sent_before + 1


def test_nodata_cached_for_type_only(net: Hierarchy) -> None:
    result = net.resolve("www.example.com", "MX")
    assert result.rcode == RCODE.NOERROR
    assert result.answer == ()
    assert result.authority[0].ttl == 300
    hit = net.resolver.cache.lookup(DNSLabel("www.example.com"), QTYPE.MX)
    assert hit is not None
    assert hit.negative is NegativeKind.NODATA

    net.clock.advance(10)
    cached = net.resolve("www.example.com", "MX")
    assert cached.queries == 0
    assert cached.authority[0].ttl == 290
    other_type = net.resolve("www.example.com", "A")
    assert other_type.queries == 1

    net.clock.advance(290)
    expired = net.resolve("www.example.com", "MX")
    assert expired.queries == 1


def test_nxdomain_after_cname_keeps_chain(net: Hierarchy) -> None:
    net.network.add(
        EXAMPLE_COM_1,
        authority(EXAMPLE_COM + "dangling IN CNAME nothing.example.com.\n"),
    )
    result = net.resolve("dangling.example.com")
    assert result.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in result.answer] == ["CNAME"]
    hit = net.resolver.cache.lookup(DNSLabel("nothing.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.negative is NegativeKind.NXDOMAIN


# TTLs.


def test_positive_ttl_counts_down_and_expires(net: Hierarchy) -> None:
    first = net.resolve("short.example.com")
    assert first.answer[0].ttl == 30
    net.clock.advance(12)
    cached = net.resolve("short.example.com")
    assert cached.queries == 0
    assert cached.answer[0].ttl == 18
    net.clock.advance(18)
    expired = net.resolve("short.example.com")
    assert expired.queries == 1
    assert expired.answer[0].ttl == 30


def test_ttl_zero_not_cached(net: Hierarchy) -> None:
    first = net.resolve("zero.example.com")
    assert addresses(first) == ["192.0.2.82"]
    again = net.resolve("zero.example.com")
    assert again.queries == 1


def test_ds_asked_of_parent_zone(net: Hierarchy) -> None:
    net.resolve("www.example.com")
    result = net.resolve("example.com", "DS")
    # The DS RRset is on the parent side of the cut: com., not example.com.
    assert outcomes(result) == [(COM_ADDRESS, Outcome.NODATA)]
    assert [str(rr.rname) for rr in result.authority] == ["com."]


def test_ds_walk_stops_above_cut(net: Hierarchy) -> None:
    result = net.resolve("example.com", "DS")
    assert outcomes(result) == [
        (ROOT_ADDRESS, Outcome.REFERRAL),
        (COM_ADDRESS, Outcome.NODATA),
    ]


# Failing servers.


def test_timeout_retried_once_then_next_server(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, silent)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert outcomes(result)[2:] == [
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_2, Outcome.ANSWER),
    ]


def test_one_timeout_then_same_server(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, timeouts_then(net.catalogs[EXAMPLE_COM_1], 1))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert net.network.queries[EXAMPLE_COM_1] == 2
    assert net.network.queries[EXAMPLE_COM_2] == 0


def test_timeout_costs_configured_time() -> None:
    net = Hierarchy(options=ResolverOptions(timeout=0.25))
    net.network.add(EXAMPLE_COM_1, silent)
    start = net.clock()
    net.resolve("www.example.com")
    # Timeouts of 0.25 s and, doubled, 0.5 s, and round trips of 2 ms to
    # the root, com. and ns2.
    assert net.clock() - start == pytest.approx(0.25 + 0.5 + 3 * 0.002)


def test_all_servers_fail_is_servfail(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, refused)
    result = net.resolve("www.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert result.answer == ()
    assert "example.com." in result.reason
    assert net.network.queries[EXAMPLE_COM_1] == 2
    assert net.network.queries[EXAMPLE_COM_2] == 1
    failures = [e for e in result.trace if isinstance(e, FailureEvent)]
    assert len(failures) == 1


def test_servfail_cached_for_30_seconds(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    net.resolve("www.example.com")
    net.network.add(EXAMPLE_COM_1, net.catalogs[EXAMPLE_COM_1])
    net.network.add(EXAMPLE_COM_2, net.catalogs[EXAMPLE_COM_2])
    sent = net.network.total

    net.clock.advance(29)
    cached = net.resolve("www.example.com")
    assert cached.rcode == RCODE.SERVFAIL
    assert cached.queries == 0
    assert net.network.total == sent
    assert any(isinstance(e, CachedFailureEvent) for e in cached.trace)
    # Only that name and type failed.
    assert net.resolve("www.example.com", "MX").queries == 1

    net.clock.advance(1)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]


def test_refused_then_next_server(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, refused)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    lame = [
        e
        for e in result.trace
        if isinstance(e, QueryEvent) and e.outcome is Outcome.LAME
    ]
    assert [e.detail for e in lame] == ["lame: rcode REFUSED"]
    assert net.network.queries[EXAMPLE_COM_1] == 1


def test_garbage_reply_then_next_server(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, garbage)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert (EXAMPLE_COM_1, Outcome.ERROR) in outcomes(result)


def test_wrong_id_reply_ignored(net: Hierarchy) -> None:
    poisoned = authority(EXAMPLE_COM.replace("192.0.2.80", "203.0.113.66"))
    net.network.add(EXAMPLE_COM_1, wrong_id(poisoned))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert outcomes(result)[2:] == [
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_2, Outcome.ANSWER),
    ]
    hit = net.resolver.cache.lookup(DNSLabel("www.example.com"), QTYPE.A)
    assert hit is not None
    assert [str(rr.rdata) for rr in hit.records] == ["192.0.2.80"]


def test_root_unreachable_is_servfail(net: Hierarchy) -> None:
    net.network.add(ROOT_ADDRESS, silent)
    result = net.resolve("www.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert result.queries == 2


# Bailiwick.


def test_out_of_bailiwick_answer_not_cached(net: Hierarchy) -> None:
    net.network.add(
        EXAMPLE_COM_1,
        with_extra(
            net.catalogs[EXAMPLE_COM_1],
            answer="www.example.net. 86400 IN A 203.0.113.66",
            additional="ns1.example.net. 86400 IN A 203.0.113.67",
        ),
    )
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    cache = net.resolver.cache
    assert cache.lookup(DNSLabel("www.example.net"), QTYPE.A) is None
    assert cache.lookup(DNSLabel("ns1.example.net"), QTYPE.A) is None
    assert addresses(net.resolve("www.example.net")) == ["192.0.2.90"]


def test_out_of_bailiwick_glue_not_cached(net: Hierarchy) -> None:
    net.network.add(
        COM_ADDRESS,
        with_extra(
            net.catalogs[COM_ADDRESS],
            additional="ns1.example.net. 86400 IN A 203.0.113.67",
        ),
    )
    net.resolve("www.example.com")
    assert net.resolver.cache.lookup(DNSLabel("ns1.example.net"), QTYPE.A) is None


def test_referral_glue_cached_below_answers(net: Hierarchy) -> None:
    net.resolve("www.example.com")
    glue = net.resolver.cache.lookup(DNSLabel("ns1.example.com"), QTYPE.A)
    assert glue is not None
    # Glue is never an answer (RFC 2181 section 5.4.1): asking for it queries.
    result = net.resolve("ns1.example.com")
    assert result.queries == 1
    assert addresses(result) == ["192.0.2.1"]


# Bounds.


def test_cname_loop_is_bounded_servfail(net: Hierarchy) -> None:
    result = net.resolve("loop.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert "loop" in result.reason
    assert result.queries <= 6


def test_long_cname_chain_is_servfail(net: Hierarchy) -> None:
    result = net.resolve("c1.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert "CNAME chain longer than 8" in result.reason


def test_cname_chain_within_limit() -> None:
    net = Hierarchy(Limits(max_cname_chain=10))
    result = net.resolve("c1.example.com")
    assert result.rcode == RCODE.NOERROR
    assert addresses(result) == ["192.0.2.99"]
    assert len(result.answer) == 10


def test_query_budget_enforced() -> None:
    net = Hierarchy(Limits(max_queries=4))
    result = net.resolve("www.glueless.com")
    assert result.rcode == RCODE.SERVFAIL
    assert "query budget of 4" in result.reason
    assert result.queries == 4
    assert net.network.total == 4


def test_deadline_enforced() -> None:
    net = Hierarchy(Limits(max_time=3.0), ResolverOptions(timeout=1.0))
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    result = net.resolve("www.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert "timed out after 3 s" in result.reason


def test_nesting_depth_enforced() -> None:
    net = Hierarchy(Limits(max_nesting=0))
    result = net.resolve("www.glueless.com")
    assert result.rcode == RCODE.SERVFAIL
    assert net.network.queries[GLUELESS_COM] == 0


def test_glueless_server_inside_own_zone_fails() -> None:
    net = Hierarchy()
    net.network.add(COM_ADDRESS, authority(COM + "selfish IN NS ns.selfish.com.\n"))
    result = net.resolve("www.selfish.com")
    assert result.rcode == RCODE.SERVFAIL
    assert result.queries < 10


def test_upward_referral_is_lame(net: Hierarchy) -> None:
    net.network.add(EXAMPLE_COM_1, authority(ROOT))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    lame = [
        e
        for e in result.trace
        if isinstance(e, QueryEvent) and e.outcome is Outcome.LAME
    ]
    assert len(lame) == 1
    assert lame[0].address == EXAMPLE_COM_1


# Answering from the cache only, for queries with RD=0.


def test_answer_from_cache_only(net: Hierarchy) -> None:
    assert net.resolver.answer_from_cache("www.example.com", QTYPE.A) is None
    net.resolve("ftp.example.com")
    cached = net.resolver.answer_from_cache("ftp.example.com", QTYPE.A)
    assert cached is not None
    assert [rr.rtype for rr in cached.answer] == [QTYPE.CNAME, QTYPE.A]


def test_cached_delegation_closest(net: Hierarchy) -> None:
    assert net.resolver.cached_delegation("www.example.com") is None
    net.resolve("www.example.com")
    delegation = net.resolver.cached_delegation("other.example.com")
    assert delegation is not None
    assert str(delegation.zone) == "example.com."
    assert {str(rr.rdata) for rr in delegation.addresses} == {"192.0.2.1", "192.0.2.2"}
    tld = net.resolver.cached_delegation("www.example.org")
    assert tld is None


# Classification of single replies.


def _reply(zone_text: str, name: str, qtype: str = "A") -> DNSRecord:
    return answer_query(DNSRecord.question(name, qtype), authority(zone_text))


@pytest.mark.parametrize(
    ("zone_text", "zone", "name", "qtype", "expected"),
    [
        (EXAMPLE_COM, "example.com.", "www.example.com", "A", Outcome.ANSWER),
        (EXAMPLE_COM, "example.com.", "alias.example.com", "A", Outcome.CNAME),
        (EXAMPLE_COM, "example.com.", "nosuch.example.com", "A", Outcome.NXDOMAIN),
        (EXAMPLE_COM, "example.com.", "www.example.com", "MX", Outcome.NODATA),
        (COM, "com.", "www.example.com", "A", Outcome.REFERRAL),
        (ROOT, ".", "www.example.com", "A", Outcome.REFERRAL),
        # The same referral from a server asked about example.com. is upward.
        (COM, "example.com.", "www.example.com", "A", Outcome.LAME),
        # Data outside the zone asked is ignored: the answer counts as none.
        (EXAMPLE_COM, "example.net.", "www.example.com", "A", Outcome.LAME),
    ],
)
def test_classify_reply(
    zone_text: str, zone: str, name: str, qtype: str, expected: Outcome
) -> None:
    reply = _reply(zone_text, name, qtype)
    classified = classify_reply(
        reply, DNSLabel(name), QTYPE.reverse[qtype], DNSLabel(zone)
    )
    assert classified.outcome is expected


def test_classify_referral_keeps_in_domain_glue() -> None:
    reply = _reply(COM, "www.example.com")
    classified = classify_reply(
        reply, DNSLabel("www.example.com"), QTYPE.A, DNSLabel("com")
    )
    assert classified.referral is not None
    assert str(classified.referral.zone) == "example.com."
    assert len(classified.referral.ns) == 2
    assert sorted(str(rr.rname) for rr in classified.referral.glue) == [
        "ns1.example.com.",
        "ns2.example.com.",
    ]


def test_classify_answer_without_aa_is_lame() -> None:
    reply = _reply(EXAMPLE_COM, "www.example.com")
    reply.header.aa = 0
    classified = classify_reply(
        reply, DNSLabel("www.example.com"), QTYPE.A, DNSLabel("example.com")
    )
    assert classified.outcome is Outcome.LAME
    assert classified.reason == "answer without AA"


def test_iterator_reexports_moved_names() -> None:
    moved = {
        dns_toy.replies: ["Outcome", "Referral", "Reply", "classify_reply"],
        dns_toy.trace: [
            "CacheEvent",
            "FailureEvent",
            "NestedLookupEvent",
            "QueryEvent",
            "StartEvent",
            "TraceEvent",
            "describe_event",
        ],
        dns_toy.delegation: [
            "CachedDelegation",
            "Delegation",
            "NameServer",
            "RootHints",
        ],
    }
    for module, names in moved.items():
        for name in names:
            assert name in dns_toy.iterator.__all__, name
            assert getattr(dns_toy.iterator, name) is getattr(module, name), name
