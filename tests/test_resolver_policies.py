"""Resolver policies on the fake network: trust, delivery, selection,
cache rules, hard delegations, transport, QNAME minimisation and
serve-stale, then the transport on loopback sockets and the options on
the command line.

Every TTL, penalty and stale window is checked on the fake clock.
"""

import asyncio
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import free_port, stop_process
from dnslib import QTYPE, RCODE, RR, DNSLabel, DNSRecord
from fakenet import (
    FakeClock,
    FakeNetwork,
    authority,
    forged_first,
    lowercased,
    refused,
    servfail,
    silent,
    truncated,
    with_extra,
    wrong_id,
)
from test_iterator import (
    COM,
    COM_ADDRESS,
    EXAMPLE_COM,
    EXAMPLE_COM_1,
    EXAMPLE_COM_2,
    EXAMPLE_NET_ZONE,
    NET,
    NET_ADDRESS,
    ROOT_ADDRESS,
    Hierarchy,
    addresses,
    outcomes,
)
from typer.testing import CliRunner

from dns_toy import resolver_flags
from dns_toy.authority import Catalog, answer_query
from dns_toy.cache import Credibility
from dns_toy.cli import app
from dns_toy.errors import TransportError, TransportTimeout
from dns_toy.iterator import Limits, Resolution, Resolver
from dns_toy.minimisation import MAX_MINIMISE_COUNT
from dns_toy.policy_trace import (
    LameEvent,
    MinimisationEvent,
    PenaltyEvent,
    PolicyEvent,
    RetryEvent,
    SkipEvent,
    StaleEvent,
    TruncatedEvent,
)
from dns_toy.replies import Outcome
from dns_toy.resolve_command import run_resolve
from dns_toy.resolver_options import ResolverOptions
from dns_toy.selection import SelectionPolicy
from dns_toy.trace import FailureEvent, NestedLookupEvent, QueryEvent, TraceEvent
from dns_toy.transport import NetworkTransport

Behaviour = Callable[[DNSRecord], DNSRecord | bytes | None]


def events(resolution: Resolution, kind: type) -> list[TraceEvent]:
    return [event for event in resolution.trace if isinstance(event, kind)]


def query_events(resolution: Resolution) -> list[QueryEvent]:
    return [e for e in resolution.trace if isinstance(e, QueryEvent)]


def hierarchy(**options: object) -> Hierarchy:
    return Hierarchy(options=ResolverOptions(**options))  # type: ignore[arg-type]


def rewritten(catalog: Catalog, edit: Callable[[DNSRecord], None]) -> Behaviour:
    """A server whose authoritative replies pass through `edit` first."""

    def reply(query: DNSRecord) -> DNSRecord:
        response = answer_query(query, catalog)
        edit(response)
        return response

    return reply


# Trust: bailiwick, glue and credibility (RFC 2181 section 5.4.1).


def test_out_of_bailiwick_records_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = Hierarchy()
    net.network.add(
        EXAMPLE_COM_1,
        with_extra(
            net.catalogs[EXAMPLE_COM_1],
            answer="www.example.net. 86400 IN A 203.0.113.66",
            authority="example.net. 86400 IN NS ns.evil.test.",
            additional="ns.evil.test. 86400 IN A 203.0.113.67",
        ),
    )
    with caplog.at_level(logging.DEBUG, logger="dns_toy.bailiwick"):
        result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert "dropped 3 record(s) outside zone example.com." in caplog.text
    assert "example.net. NS" in caplog.text
    cache = net.resolver.cache
    assert cache.lookup(DNSLabel("example.net"), QTYPE.NS) is None
    assert cache.lookup(DNSLabel("ns.evil.test"), QTYPE.A) is None
    assert cache.lookup(DNSLabel("www.example.net"), QTYPE.A) is None


def test_out_of_bailiwick_glue_ignored_for_referral() -> None:
    net = Hierarchy()
    # A poisoned com. server offers glue for a name under net. as well.
    net.network.add(
        COM_ADDRESS,
        with_extra(
            net.catalogs[COM_ADDRESS],
            additional="ns.example.net. 86400 IN A 203.0.113.67",
        ),
    )
    result = net.resolve("www.glueless.com")
    assert addresses(result) == ["192.0.2.31"]
    assert "203.0.113.67" not in net.network.queries
    assert len(events(result, NestedLookupEvent)) == 1


def glue_hierarchy() -> Hierarchy:
    """Add glueless.net., delegated to ns1.example.com without glue.

    The net. server cannot give glue for a name under com., so the glue
    that the com. referral brought for ns1.example.com is the only
    address the cache could offer.
    """
    net = Hierarchy()
    net.network.add(NET_ADDRESS, authority(NET + "glueless IN NS ns1.example.com.\n"))
    glueless_net = """\
$ORIGIN glueless.net.
$TTL 600
@    IN SOA ns1.example.com. admin.example.com. 1 7200 3600 1209600 60
@    IN NS  ns1.example.com.
www  IN A   192.0.2.50
"""
    net.network.add(EXAMPLE_COM_1, authority(EXAMPLE_COM, glueless_net))
    return net


def test_glue_only_reaches_its_delegation() -> None:
    net = glue_hierarchy()
    net.resolve("www.example.com")
    glue = net.resolver.cache.lookup(DNSLabel("ns1.example.com"), QTYPE.A)
    assert glue is not None
    assert glue.entry.credibility is Credibility.GLUE

    result = net.resolve("www.glueless.net")
    assert addresses(result) == ["192.0.2.50"]
    nested = events(result, NestedLookupEvent)
    assert [(e.server, e.zone) for e in nested] == [
        ("ns1.example.com.", "glueless.net.")
    ]
    # The nested lookup asked an example.com. server for the address.
    queries = [(e.address, e.qname) for e in query_events(result)]
    assert (EXAMPLE_COM_2, "ns1.example.com.") in queries


def test_glue_replaced_by_authoritative_answer() -> None:
    net = glue_hierarchy()
    net.resolve("www.example.com")
    net.resolve("www.glueless.net")
    hit = net.resolver.cache.lookup(DNSLabel("ns1.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.credibility is Credibility.ANSWER


def test_glue_never_returned_as_answer() -> None:
    net = Hierarchy()
    net.resolve("www.example.com")
    assert net.resolver.answer_from_cache("ns1.example.com", QTYPE.A) is None
    result = net.resolve("ns1.example.com")
    assert result.queries == 1
    assert addresses(result) == ["192.0.2.1"]


def test_glue_does_not_overwrite_answer() -> None:
    net = Hierarchy()
    net.resolve("ns1.example.com")
    # com. now offers other glue for ns1.example.com with another referral.
    com = COM.replace("192.0.2.1", "192.0.2.199") + "other IN NS ns1.example.com.\n"
    net.network.add(COM_ADDRESS, authority(com))
    net.resolve("www.other.com")
    hit = net.resolver.cache.lookup(DNSLabel("ns1.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.credibility is Credibility.ANSWER
    assert [str(rr.rdata) for rr in hit.records] == ["192.0.2.1"]


def test_glue_with_ttl_zero_used_not_cached() -> None:
    net = Hierarchy()
    com = COM.replace("ns1.example  IN A   192.0.2.1", "ns1.example 0 IN A 192.0.2.1")
    com = com.replace("ns2.example  IN A   192.0.2.2", "ns2.example 0 IN A 192.0.2.2")
    net.network.add(COM_ADDRESS, authority(com))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert net.resolver.cache.lookup(DNSLabel("ns1.example.com"), QTYPE.A) is None


def test_upward_referral_marks_server_lame() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, authority(COM))
    first = net.resolve("www.example.com")
    lame = events(first, LameEvent)
    assert len(lame) == 1
    assert lame[0].address == EXAMPLE_COM_1
    assert lame[0].zone == "example.com."
    assert "does not lead down" in lame[0].reason
    assert addresses(first) == ["192.0.2.80"]

    net.clock.advance(59)
    second = net.resolve("ftp.example.com")
    skips = events(second, SkipEvent)
    assert [(s.address, s.zone) for s in skips] == [(EXAMPLE_COM_1, "example.com.")]
    assert net.network.queries[EXAMPLE_COM_1] == 1

    net.clock.advance(1)
    third = net.resolve("short.example.com")
    assert events(third, SkipEvent) == []


def test_sideways_referral_is_lame() -> None:
    net = Hierarchy()
    # Asked about example.com., the server refers to example.net.
    net.network.add(EXAMPLE_COM_1, authority(NET))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    lame = events(result, LameEvent)
    assert [e.address for e in lame] == [EXAMPLE_COM_1]


def test_referral_to_same_zone_is_lame() -> None:
    net = Hierarchy()

    def same_cut(query: DNSRecord) -> DNSRecord:
        response = query.reply()
        response.header.aa = 0
        for record in RR.fromZone("example.com. 600 IN NS ns1.example.com."):
            response.add_auth(record)
        return response

    net.network.add(EXAMPLE_COM_1, same_cut)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert [e.address for e in events(result, LameEvent)] == [EXAMPLE_COM_1]


def test_forged_datagrams_dropped_wait_goes_on() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, forged_first(net.catalogs[EXAMPLE_COM_1]))
    start = net.clock()
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert outcomes(result)[2:] == [(EXAMPLE_COM_1, Outcome.ANSWER)]
    # Three round trips, no timeout: the genuine reply ended the wait.
    assert net.clock() - start == pytest.approx(3 * 0.002)


def test_wrong_id_waits_until_timeout() -> None:
    net = hierarchy(timeout=0.5, retries=0)
    poisoned = authority(EXAMPLE_COM.replace("192.0.2.80", "203.0.113.66"))
    net.network.add(EXAMPLE_COM_1, wrong_id(poisoned))
    start = net.clock()
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert outcomes(result)[2:] == [
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_2, Outcome.ANSWER),
    ]
    assert net.clock() - start == pytest.approx(0.5 + 3 * 0.002)


def test_wrong_question_dropped() -> None:
    net = hierarchy(retries=0)

    catalog = net.catalogs[EXAMPLE_COM_1]

    def other_question(query: DNSRecord) -> DNSRecord:
        response = answer_query(DNSRecord.question("ftp.example.com"), catalog)
        response.header.id = query.header.id
        return response

    net.network.add(EXAMPLE_COM_1, other_question)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert (EXAMPLE_COM_1, Outcome.TIMEOUT) in outcomes(result)


def test_case_randomisation_randomises_names() -> None:
    net = hierarchy(case_randomisation=True)
    for name in ("www.example.com", "ftp.example.com", "short.example.com"):
        assert net.resolve(name).rcode == RCODE.NOERROR
    sent = [entry.qname for entry in net.network.log]
    assert len(sent) == 5
    assert {name.lower() for name in sent} == {
        "www.example.com.",
        "ftp.example.com.",
        "short.example.com.",
    }
    # 2**-60 is the chance that five names of 12-15 letters come out in
    # lower case by luck.
    assert any(name != name.lower() for name in sent)


def test_case_randomisation_trace_shows_sent_name() -> None:
    net = hierarchy(case_randomisation=True)
    result = net.resolve("www.example.com")
    sent = [entry.qname for entry in net.network.log]
    assert [e.qname for e in query_events(result)] == sent


def test_case_mismatch_dropped_keeps_waiting() -> None:
    net = hierarchy(case_randomisation=True, retries=0)
    net.network.add(EXAMPLE_COM_1, lowercased(net.catalogs[EXAMPLE_COM_1]))
    net.network.add(EXAMPLE_COM_2, lowercased(net.catalogs[EXAMPLE_COM_2]))
    result = net.resolve("www.example.com")
    # Unless the random case happens to be all lower case (2**-13 per
    # query), no echo matches and both servers time out.
    assert result.rcode == RCODE.SERVFAIL
    assert [o for _, o in outcomes(result)[2:]] == [Outcome.TIMEOUT] * 2


def test_case_ignored_without_randomisation() -> None:
    net = hierarchy(retries=0)
    net.network.add(EXAMPLE_COM_1, lowercased(net.catalogs[EXAMPLE_COM_1]))
    result = net.resolve("WWW.Example.COM")
    assert addresses(result) == ["192.0.2.80"]
    assert [entry.qname for entry in net.network.log][-1] == "WWW.Example.COM."


# Delivery: timeouts, retries and backoff.


def test_policies_first_in_trace() -> None:
    result = Hierarchy().resolve("www.example.com")
    first = result.trace[0]
    assert isinstance(first, PolicyEvent)
    text = first.describe()
    assert "timeout 1000 ms" in text
    assert "1 retries per server, timeout doubling up to 8000 ms" in text
    assert "(at-least-once)" in text
    assert "selection nearest" in text
    assert "TTL 0-86400 s" in text
    assert "cache 10000 entries" in text
    assert "case randomisation off" in text
    assert "QNAME minimisation off" in text
    assert "serve-stale off" in text


def test_retries_zero_is_best_effort() -> None:
    net = hierarchy(retries=0)
    net.network.add(EXAMPLE_COM_1, silent)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert net.network.queries[EXAMPLE_COM_1] == 1
    assert events(result, RetryEvent) == []
    first = result.trace[0]
    assert isinstance(first, PolicyEvent)
    assert "no retries (best-effort)" in first.describe()


def test_retry_timeouts_double() -> None:
    net = Hierarchy(Limits(max_time=60), ResolverOptions(timeout=0.1, retries=3))
    net.network.add(EXAMPLE_COM_1, silent)
    start = net.clock()
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    retries = events(result, RetryEvent)
    assert [(e.retry, e.retries) for e in retries] == [(1, 3), (2, 3), (3, 3)]
    assert [e.timeout_ms for e in retries] == pytest.approx([200, 400, 800])
    assert net.network.queries[EXAMPLE_COM_1] == 4
    waited = 0.1 + 0.2 + 0.4 + 0.8
    assert net.clock() - start == pytest.approx(waited + 3 * 0.002)


def test_retry_timeout_capped() -> None:
    net = Hierarchy(Limits(max_time=600), ResolverOptions(timeout=1.0, retries=5))
    net.network.add(EXAMPLE_COM_1, silent)
    result = net.resolve("www.example.com")
    retries = events(result, RetryEvent)
    assert [e.timeout_ms for e in retries] == [2000, 4000, 8000, 8000, 8000]


def test_timeout_penalises_server() -> None:
    net = hierarchy(retries=1)
    net.network.add(EXAMPLE_COM_1, silent)
    result = net.resolve("www.example.com")
    penalties = events(result, PenaltyEvent)
    assert [(p.address, p.failures) for p in penalties] == [
        (EXAMPLE_COM_1, 1),
        (EXAMPLE_COM_1, 2),
    ]
    assert [p.srtt_ms for p in penalties] == pytest.approx([200, 600])
    assert all(p.hold_down_s is None for p in penalties)


def test_failing_server_held_down_30_seconds() -> None:
    net = Hierarchy(Limits(max_time=60), ResolverOptions(retries=2))
    net.network.add(EXAMPLE_COM_1, silent)
    first = net.resolve("www.example.com")
    last = events(first, PenaltyEvent)[-1]
    assert last.failures == 3
    assert last.hold_down_s == pytest.approx(30)
    assert addresses(first) == ["192.0.2.80"]

    net.clock.advance(29)
    second = net.resolve("ftp.example.com")
    skips = events(second, SkipEvent)
    assert [s.address for s in skips] == [EXAMPLE_COM_1]
    assert "held down after 3 failures in a row" in skips[0].describe()
    assert net.network.queries[EXAMPLE_COM_1] == 3

    net.clock.advance(1)
    net.network.add(EXAMPLE_COM_2, silent)
    third = net.resolve("short.example.com")
    assert events(third, SkipEvent) == []
    # Retries still go out, and each failure renews the hold-down.
    assert net.network.queries[EXAMPLE_COM_1] == 6
    again = [p for p in events(third, PenaltyEvent) if p.address == EXAMPLE_COM_1]
    assert [p.failures for p in again] == [4, 5, 6]
    assert all(p.hold_down_s == pytest.approx(30) for p in again)
    assert third.rcode == RCODE.SERVFAIL


def test_nearest_prefers_faster_server() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, net.catalogs[EXAMPLE_COM_1], rtt=0.080)
    net.network.add(EXAMPLE_COM_2, net.catalogs[EXAMPLE_COM_2], rtt=0.005)
    names = [f"name{i}.example.com" for i in range(6)]
    chosen = []
    for name in names:
        result = net.resolve(name)
        chosen.append(outcomes(result)[-1][0])
    # ns1 first (delegation order), then ns2 (never measured), then ns2
    # for being faster.
    assert chosen == [EXAMPLE_COM_1] + [EXAMPLE_COM_2] * 5
    srtt = net.resolver.selection.srtt(EXAMPLE_COM_2)
    assert srtt == pytest.approx(0.005)


def test_round_robin_alternates() -> None:
    net = hierarchy(selection=SelectionPolicy.ROUND_ROBIN)
    net.resolve("www.example.com")
    chosen = [outcomes(net.resolve(f"name{i}.example.com"))[-1][0] for i in range(4)]
    assert chosen == [EXAMPLE_COM_2, EXAMPLE_COM_1, EXAMPLE_COM_2, EXAMPLE_COM_1]


def test_random_selection_uses_both() -> None:
    net = hierarchy(selection=SelectionPolicy.RANDOM)
    net.resolve("www.example.com")
    chosen = {outcomes(net.resolve(f"name{i}.example.com"))[-1][0] for i in range(20)}
    assert chosen == {EXAMPLE_COM_1, EXAMPLE_COM_2}


def test_lame_server_skipped_60_seconds() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, refused)
    first = net.resolve("www.example.com")
    assert addresses(first) == ["192.0.2.80"]
    lame = events(first, LameEvent)
    assert [(e.address, e.reason) for e in lame] == [(EXAMPLE_COM_1, "rcode REFUSED")]
    assert "for 60 s" in lame[0].describe()

    net.clock.advance(59)
    second = net.resolve("ftp.example.com")
    assert [s.address for s in events(second, SkipEvent)] == [EXAMPLE_COM_1]
    assert net.network.queries[EXAMPLE_COM_1] == 1

    net.clock.advance(1)
    net.network.add(EXAMPLE_COM_2, refused)
    third = net.resolve("short.example.com")
    assert events(third, SkipEvent) == []
    assert net.network.queries[EXAMPLE_COM_1] == 2


def test_servfail_server_is_lame() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, servfail)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert [e.reason for e in events(result, LameEvent)] == ["rcode SERVFAIL"]


def test_not_authoritative_server_is_lame() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, rewritten(net.catalogs[EXAMPLE_COM_1], _clear_aa))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert [e.reason for e in events(result, LameEvent)] == ["answer without AA"]


def _clear_aa(response: DNSRecord) -> None:
    response.header.aa = 0


def test_answer_for_other_zone_is_lame() -> None:
    net = Hierarchy()

    def other_zone(query: DNSRecord) -> DNSRecord:
        response = query.reply()
        response.add_answer(*RR.fromZone("www.example.net. 600 IN A 203.0.113.9"))
        return response

    net.network.add(EXAMPLE_COM_1, other_zone)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    lame = events(result, LameEvent)
    assert [(e.address, e.reason) for e in lame] == [
        (EXAMPLE_COM_1, "answer outside zone example.com.")
    ]


def test_every_server_lame_is_servfail() -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, refused)
    net.network.add(EXAMPLE_COM_2, refused)
    first = net.resolve("www.example.com")
    assert first.rcode == RCODE.SERVFAIL
    assert "no server of zone example.com." in first.reason
    sent = net.network.total
    second = net.resolve("ftp.example.com")
    assert second.rcode == RCODE.SERVFAIL
    assert len(events(second, SkipEvent)) == 2
    assert net.network.total == sent


# Cache rules through the resolver.


def test_max_ttl_clamps_answer_and_cache() -> None:
    net = hierarchy(max_ttl=60)
    result = net.resolve("www.example.com")
    assert [rr.ttl for rr in result.answer] == [60]
    net.clock.advance(59)
    assert net.resolve("www.example.com").queries == 0
    net.clock.advance(1)
    # The NS RRsets and glue were capped too: the walk starts at the root.
    assert net.resolve("www.example.com").queries == 3


def test_min_ttl_raises_answer_and_cache() -> None:
    net = hierarchy(min_ttl=100)
    result = net.resolve("short.example.com")
    assert [rr.ttl for rr in result.answer] == [100]
    net.clock.advance(99)
    assert net.resolve("short.example.com").queries == 0
    net.clock.advance(1)
    assert net.resolve("short.example.com").queries == 1


def test_ttl_zero_used_once_despite_min_ttl() -> None:
    net = hierarchy(min_ttl=100)
    first = net.resolve("zero.example.com")
    assert addresses(first) == ["192.0.2.82"]
    assert [rr.ttl for rr in first.answer] == [0]
    assert net.resolve("zero.example.com").queries == 1


def test_top_bit_ttl_answered_as_zero() -> None:
    net = Hierarchy()

    def top_bit(response: DNSRecord) -> None:
        for record in response.rr:
            record.ttl = 2**31 + 100

    net.network.add(EXAMPLE_COM_1, rewritten(net.catalogs[EXAMPLE_COM_1], top_bit))
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert [rr.ttl for rr in result.answer] == [0]
    assert net.resolve("www.example.com").queries == 1


def test_mixed_ttl_rrset_takes_lowest() -> None:
    net = Hierarchy()
    zone = EXAMPLE_COM + "pool 300 IN A 192.0.2.91\npool 300 IN A 192.0.2.92\n"

    def mixed(response: DNSRecord) -> None:
        if response.rr:
            response.rr[-1].ttl = 45

    net.network.add(EXAMPLE_COM_1, rewritten(authority(zone), mixed))
    result = net.resolve("pool.example.com")
    assert [rr.ttl for rr in result.answer] == [45, 45]
    hit = net.resolver.cache.lookup(DNSLabel("pool.example.com"), QTYPE.A)
    assert hit is not None
    assert hit.entry.ttl == 45


def test_negative_without_soa_not_cached() -> None:
    net = Hierarchy()

    def no_soa(response: DNSRecord) -> None:
        response.auth = []

    net.network.add(EXAMPLE_COM_1, rewritten(net.catalogs[EXAMPLE_COM_1], no_soa))
    first = net.resolve("nosuch.example.com")
    assert first.rcode == RCODE.NXDOMAIN
    assert first.authority == ()
    assert net.resolve("nosuch.example.com").queries == 1


def test_nxdomain_cached_for_every_type() -> None:
    net = Hierarchy()
    net.resolve("nosuch.example.com")
    for qtype in ("MX", "TXT", "AAAA"):
        result = net.resolve("nosuch.example.com", qtype)
        assert result.rcode == RCODE.NXDOMAIN
        assert result.queries == 0


def test_cache_size_bounds_entries() -> None:
    net = hierarchy(cache_size=5)
    for i in range(10):
        net.resolve(f"name{i}.example.com")
    assert len(net.resolver.cache) == 5


# Harder delegations: each ends in an answer or SERVFAIL within budget.

HARD_ROOT = "10.0.0.1"
TEST_TLD = "10.0.0.2"
C_SERVER = "10.0.0.3"
B_SERVER = "10.0.0.4"
EXAMPLE_TLD = "10.0.0.5"

HARD_ROOT_ZONE = """\
$ORIGIN .
$TTL 86400
@        IN SOA a.root.hard. admin.root.hard. 1 1800 900 604800 86400
@        IN NS  a.root.hard.
test.    IN NS  ns.test.
ns.test. IN A   10.0.0.2
example. IN NS  ns.example.
ns.example. IN A 10.0.0.5
"""

TEST_ZONE = """\
$ORIGIN test.
$TTL 86400
@        IN SOA ns admin 1 1800 900 604800 300
@        IN NS  ns
ns       IN A   10.0.0.2
c        IN NS  ns.c
ns.c     IN A   10.0.0.3
; Glueless, and its server's zone b.example. is glueless too.
a        IN NS  ns.b.example.
; The name server name is a CNAME in c.test.
cn       IN NS  ns.alias.c.test.
; Two zones whose name servers live in each other.
l1       IN NS  ns.l2.example.
"""

EXAMPLE_TLD_ZONE = """\
$ORIGIN example.
$TTL 86400
@        IN SOA ns admin 1 1800 900 604800 300
@        IN NS  ns
ns       IN A   10.0.0.5
b        IN NS  ns.c.test.
l2       IN NS  ns.l1.test.
"""

C_ZONE = """\
$ORIGIN c.test.
$TTL 600
@        IN SOA ns admin 1 7200 3600 1209600 60
@        IN NS  ns
ns       IN A   10.0.0.3
ns.alias IN CNAME ns.c.test.
"""

B_ZONE = """\
$ORIGIN b.example.
$TTL 600
@        IN SOA ns.c.test. admin 1 7200 3600 1209600 60
@        IN NS  ns.c.test.
ns       IN A   10.0.0.4
"""

A_ZONE = """\
$ORIGIN a.test.
$TTL 600
@        IN SOA ns.b.example. admin 1 7200 3600 1209600 60
@        IN NS  ns.b.example.
www      IN A   192.0.2.101
"""

CN_ZONE = """\
$ORIGIN cn.test.
$TTL 600
@        IN SOA ns.alias.c.test. admin 1 7200 3600 1209600 60
@        IN NS  ns.alias.c.test.
www      IN A   192.0.2.102
"""


def hard_resolver(limits: Limits | None = None) -> tuple[Resolver, FakeNetwork]:
    clock = FakeClock()
    network = FakeNetwork(clock)
    network.add(HARD_ROOT, authority(HARD_ROOT_ZONE))
    network.add(TEST_TLD, authority(TEST_ZONE))
    network.add(EXAMPLE_TLD, authority(EXAMPLE_TLD_ZONE))
    network.add(C_SERVER, authority(C_ZONE, B_ZONE, CN_ZONE))
    network.add(B_SERVER, authority(A_ZONE))
    hints = [("a.root.hard.", HARD_ROOT)]
    resolver = Resolver(network, clock, hints, 53, limits=limits)
    return resolver, network


def resolve_with(resolver: Resolver, name: str, qtype: str = "A") -> Resolution:
    return asyncio.run(resolver.resolve(name, QTYPE.reverse[qtype]))


def test_glueless_server_in_glueless_zone() -> None:
    resolver, network = hard_resolver()
    result = resolve_with(resolver, "www.a.test")
    assert result.rcode == RCODE.NOERROR
    assert addresses(result) == ["192.0.2.101"]
    nested = events(result, NestedLookupEvent)
    assert [(e.server, e.depth) for e in nested] == [
        ("ns.b.example.", 1),
        ("ns.c.test.", 2),
    ]
    assert result.queries == network.total
    assert result.queries <= 10


def test_ns_name_that_is_a_cname() -> None:
    resolver, network = hard_resolver()
    result = resolve_with(resolver, "www.cn.test")
    assert result.rcode == RCODE.NOERROR
    assert addresses(result) == ["192.0.2.102"]
    assert network.queries[C_SERVER] >= 2
    assert result.queries <= 10


def test_ns_name_loop_is_servfail() -> None:
    resolver, network = hard_resolver()
    result = resolve_with(resolver, "www.l1.test")
    assert result.rcode == RCODE.SERVFAIL
    assert result.queries == network.total
    assert result.queries <= 20
    reasons = [e.reason for e in result.trace if isinstance(e, FailureEvent)]
    assert "the lookup depends on its own result" in reasons


def test_ns_name_loop_bounded_by_budget() -> None:
    resolver, network = hard_resolver(Limits(max_queries=3))
    result = resolve_with(resolver, "www.l1.test")
    assert result.rcode == RCODE.SERVFAIL
    assert network.total == 3


def test_cname_loop_across_zones_is_servfail() -> None:
    net = Hierarchy()
    result = net.resolve("loop.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert "CNAME loop" in result.reason
    assert result.queries <= 10


def test_cname_loop_from_cache_is_servfail() -> None:
    net = Hierarchy()
    cache = net.resolver.cache
    for owner, target in (("a.example.org.", "b.example.org."), ("b", "a")):
        owner_name = owner if owner.endswith(".") else f"{owner}.example.org."
        target_name = target if target.endswith(".") else f"{target}.example.org."
        record = RR.fromZone(f"{owner_name} 600 IN CNAME {target_name}")
        cache.store_rrset(record, Credibility.ANSWER, "192.0.2.53")
    result = net.resolve("a.example.org")
    assert result.rcode == RCODE.SERVFAIL
    assert "CNAME loop at a.example.org." in result.reason
    assert result.queries == 0
    cached = net.resolver.answer_from_cache("a.example.org", QTYPE.A)
    assert cached is not None
    assert [str(rr.rname) for rr in cached.answer] == [
        "a.example.org.",
        "b.example.org.",
    ]


# Transport on the fake network: TC=1 and malformed replies.


def test_truncated_reply_retried_over_tcp() -> None:
    net = Hierarchy()
    catalog = net.catalogs[EXAMPLE_COM_1]
    net.network.add(EXAMPLE_COM_1, truncated(catalog), tcp=catalog)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    sent = [(e.protocol, e.qname) for e in net.network.sent(EXAMPLE_COM_1)]
    assert sent == [("udp", "www.example.com."), ("tcp", "www.example.com.")]
    assert [e.address for e in events(result, TruncatedEvent)] == [EXAMPLE_COM_1]
    assert query_events(result)[-1].detail == "answer with 1 record(s) over TCP"
    assert events(result, LameEvent) == []
    assert result.queries == 4


def test_truncated_then_tcp_silent_next_server() -> None:
    net = hierarchy(retries=0)
    catalog = net.catalogs[EXAMPLE_COM_1]
    net.network.add(EXAMPLE_COM_1, truncated(catalog), tcp=silent)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    assert outcomes(result)[-2:] == [
        (EXAMPLE_COM_1, Outcome.TIMEOUT),
        (EXAMPLE_COM_2, Outcome.ANSWER),
    ]


def _genuine(query: DNSRecord) -> bytearray:
    return bytearray(answer_query(query, authority(EXAMPLE_COM)).pack())


def _bad_pointer(query: DNSRecord) -> bytes:
    wire = _genuine(query)
    at = wire.index(b"\xc0\x0c")
    wire[at : at + 2] = b"\xff\xff"
    return bytes(wire)


def _pointer_loop(query: DNSRecord) -> bytes:
    wire = _genuine(query)
    at = wire.index(b"\xc0\x0c")
    wire[at : at + 2] = struct.pack("!H", 0xC000 | at)
    return bytes(wire)


def _too_many_answers(query: DNSRecord) -> bytes:
    wire = _genuine(query)
    wire[6:8] = struct.pack("!H", 2)
    return bytes(wire)


def _too_few_answers(query: DNSRecord) -> bytes:
    wire = _genuine(query)
    wire[6:8] = struct.pack("!H", 0)
    return bytes(wire)


def _cut_record(query: DNSRecord) -> bytes:
    return bytes(_genuine(query)[:-2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_bad_pointer, "Invalid pointer"),
        (_pointer_loop, "pointer"),
        (_too_many_answers, "Not enough bytes"),
        (_too_few_answers, "bytes after the records its header counts"),
        (_cut_record, "Not enough bytes"),
    ],
)
def test_malformed_reply_next_server(
    make: Callable[[DNSRecord], bytes], message: str
) -> None:
    net = Hierarchy()
    net.network.add(EXAMPLE_COM_1, make)
    result = net.resolve("www.example.com")
    assert addresses(result) == ["192.0.2.80"]
    errors = [e for e in query_events(result) if e.outcome is Outcome.ERROR]
    assert [e.address for e in errors] == [EXAMPLE_COM_1]
    assert "malformed reply" in errors[0].detail
    assert message in errors[0].detail
    # A malformed reply is not retried at the same server.
    assert net.network.queries[EXAMPLE_COM_1] == 1
    assert outcomes(result)[-1] == (EXAMPLE_COM_2, Outcome.ANSWER)


def test_malformed_with_other_id_ignored() -> None:
    net = hierarchy(retries=0)

    def forged(query: DNSRecord) -> bytes:
        wire = bytearray(_cut_record(query))
        wire[0:2] = struct.pack("!H", (query.header.id + 1) % 65536)
        return bytes(wire)

    net.network.add(EXAMPLE_COM_1, forged)
    result = net.resolve("www.example.com")
    assert (EXAMPLE_COM_1, Outcome.TIMEOUT) in outcomes(result)


# QNAME minimisation (RFC 9156, relaxed).

DEPT_ZONE = EXAMPLE_COM + "host.dept IN A 192.0.2.7\n"


def sent_to(net: Hierarchy, address: str) -> list[tuple[str, str]]:
    return [(e.qname, QTYPE[e.qtype]) for e in net.network.sent(address)]


def test_minimisation_one_label_per_zone() -> None:
    net = hierarchy(qname_minimisation=True)
    result = net.resolve("www.example.com", "MX")
    assert result.rcode == RCODE.NOERROR
    assert sent_to(net, ROOT_ADDRESS) == [("com.", "A")]
    assert sent_to(net, COM_ADDRESS) == [("example.com.", "A")]
    assert sent_to(net, EXAMPLE_COM_1) == [("www.example.com.", "MX")]


def test_minimisation_off_sends_full_name() -> None:
    net = Hierarchy()
    net.resolve("www.example.com", "MX")
    assert sent_to(net, ROOT_ADDRESS) == [("www.example.com.", "MX")]


def dept_hierarchy(behaviour: Behaviour | None = None) -> Hierarchy:
    """Both example.com. servers serve host.dept.example.com, through
    `behaviour` if given."""
    net = hierarchy(qname_minimisation=True)
    for address in (EXAMPLE_COM_1, EXAMPLE_COM_2):
        net.network.add(address, behaviour or authority(DEPT_ZONE))
    return net


def test_minimisation_descends_past_empty_non_terminal() -> None:
    net = dept_hierarchy()
    result = net.resolve("host.dept.example.com")
    assert addresses(result) == ["192.0.2.7"]
    # dept.example.com has no data but names below it: NODATA, no zone cut.
    assert sent_to(net, EXAMPLE_COM_1) == [("dept.example.com.", "A")]
    # The nearest policy tries ns2, never measured, for the next name.
    assert sent_to(net, EXAMPLE_COM_2) == [("host.dept.example.com.", "A")]
    assert events(result, MinimisationEvent) == []


def test_minimisation_nxdomain_falls_back() -> None:
    catalog = authority(DEPT_ZONE)

    def denies_empty_names(query: DNSRecord) -> DNSRecord:
        # A broken server: NXDOMAIN for the empty non-terminal.
        if str(query.q.qname).lower() == "dept.example.com.":
            return answer_query(DNSRecord.question("nosuch.example.com"), catalog)
        return answer_query(query, catalog)

    net = dept_hierarchy(_keep_id(denies_empty_names))
    result = net.resolve("host.dept.example.com")
    assert addresses(result) == ["192.0.2.7"]
    fallbacks = events(result, MinimisationEvent)
    assert [(e.name, e.reason) for e in fallbacks] == [
        ("dept.example.com.", "NXDOMAIN")
    ]
    sent = sent_to(net, EXAMPLE_COM_1) + sent_to(net, EXAMPLE_COM_2)
    assert sent[-1] == ("host.dept.example.com.", "A")
    # The NXDOMAIN for the shortened name is not cached.
    assert net.resolver.cache.lookup(DNSLabel("dept.example.com"), QTYPE.A) is None


def test_minimisation_error_falls_back_not_lame() -> None:
    catalog = authority(DEPT_ZONE)

    def refuses_short_names(query: DNSRecord) -> DNSRecord:
        if str(query.q.qname).lower() == "dept.example.com.":
            return refused(query)
        return answer_query(query, catalog)

    net = dept_hierarchy(refuses_short_names)
    net.network.add(EXAMPLE_COM_2, silent)
    result = net.resolve("host.dept.example.com")
    assert addresses(result) == ["192.0.2.7"]
    # The server that refused the short name is asked the full name.
    assert events(result, LameEvent) == []
    assert [e.reason for e in events(result, MinimisationEvent)] == ["rcode REFUSED"]
    assert sent_to(net, EXAMPLE_COM_1) == [
        ("dept.example.com.", "A"),
        ("host.dept.example.com.", "A"),
    ]


def test_minimisation_ds_asks_parent() -> None:
    net = hierarchy(qname_minimisation=True)
    result = net.resolve("example.com", "DS")
    assert result.rcode == RCODE.NOERROR
    assert sent_to(net, ROOT_ADDRESS) == [("com.", "A")]
    assert sent_to(net, COM_ADDRESS) == [("example.com.", "DS")]


def test_minimisation_query_count_bounded() -> None:
    labels = [f"l{i}" for i in range(12)]
    owner = ".".join(labels)
    net = hierarchy(qname_minimisation=True, selection=SelectionPolicy.ROUND_ROBIN)
    catalog = authority(EXAMPLE_COM + f"{owner} IN A 192.0.2.8\n")
    net.network.add(EXAMPLE_COM_1, catalog)
    net.network.add(EXAMPLE_COM_2, catalog)
    result = net.resolve(f"{owner}.example.com")
    assert addresses(result) == ["192.0.2.8"]
    sent = [
        (e.qname, QTYPE[e.qtype])
        for e in net.network.log
        if e.address in (EXAMPLE_COM_1, EXAMPLE_COM_2)
    ]
    assert len(sent) <= MAX_MINIMISE_COUNT + 1
    # The first four add one label each.
    assert [name for name, _ in sent[:4]] == [
        "l11.example.com.",
        "l10.l11.example.com.",
        "l9.l10.l11.example.com.",
        "l8.l9.l10.l11.example.com.",
    ]
    assert sent[-1] == (f"{owner}.example.com.", "A")


def _keep_id(behaviour: Behaviour) -> Behaviour:
    def reply(query: DNSRecord) -> DNSRecord | bytes | None:
        response = behaviour(query)
        if isinstance(response, DNSRecord):
            response.header.id = query.header.id
            response.questions = list(query.questions)
        return response

    return reply


# Serve-stale (RFC 8767).


def stale_hierarchy(**options: object) -> Hierarchy:
    net = hierarchy(serve_stale=True, **options)
    assert net.resolve("short.example.com").rcode == RCODE.NOERROR
    net.clock.advance(40)
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    return net


def test_serve_stale_when_authorities_fail() -> None:
    net = stale_hierarchy()
    result = net.resolve("short.example.com")
    assert result.rcode == RCODE.NOERROR
    assert addresses(result) == ["192.0.2.81"]
    assert [rr.ttl for rr in result.answer] == [30]
    assert result.queries == 4
    stale = events(result, StaleEvent)
    assert len(stale) == 1
    assert "every authority failed" in stale[0].describe()


def test_serve_stale_retries_every_30_seconds() -> None:
    net = stale_hierarchy()
    net.resolve("short.example.com")
    sent = net.network.total

    net.clock.advance(29)
    cached = net.resolve("short.example.com")
    assert addresses(cached) == ["192.0.2.81"]
    assert [rr.ttl for rr in cached.answer] == [30]
    assert net.network.total == sent
    assert len(events(cached, StaleEvent)) == 1

    net.clock.advance(1)
    net.network.add(EXAMPLE_COM_1, net.catalogs[EXAMPLE_COM_1])
    net.network.add(EXAMPLE_COM_2, net.catalogs[EXAMPLE_COM_2])
    fresh = net.resolve("short.example.com")
    assert fresh.queries >= 1
    assert [rr.ttl for rr in fresh.answer] == [30]
    assert events(fresh, StaleEvent) == []


def test_serve_stale_off_is_servfail() -> None:
    net = Hierarchy()
    net.resolve("short.example.com")
    net.clock.advance(40)
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    result = net.resolve("short.example.com")
    assert result.rcode == RCODE.SERVFAIL
    assert events(result, StaleEvent) == []


def test_stale_window_bounded() -> None:
    net = hierarchy(serve_stale=True, stale_window=100.0)
    net.resolve("short.example.com")
    # TTL 30 s plus the stale window of 100 s.
    net.clock.advance(130)
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    result = net.resolve("short.example.com")
    assert result.rcode == RCODE.SERVFAIL


def test_stale_default_window_is_one_day() -> None:
    options = ResolverOptions(serve_stale=True)
    assert options.stale_window == 86_400
    net = Hierarchy(options=options)
    net.resolve("short.example.com")
    net.clock.advance(30 + 86_000)
    net.network.add(EXAMPLE_COM_1, silent)
    net.network.add(EXAMPLE_COM_2, silent)
    assert net.resolve("short.example.com").rcode == RCODE.NOERROR
    net.clock.advance(400)
    assert net.resolve("short.example.com").rcode == RCODE.SERVFAIL


# Options: validation, defaults and the command line.


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"timeout": 0}, "invalid timeout"),
        ({"retries": -1}, "invalid retries"),
        ({"min_ttl": 100, "max_ttl": 10}, "minimum TTL 100 s is above"),
        ({"cache_size": 0}, "invalid cache size"),
    ],
)
def test_options_rejected(arguments: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResolverOptions(**arguments)  # type: ignore[arg-type]


def test_flag_defaults_match_options() -> None:
    options = ResolverOptions()
    assert resolver_flags.DEFAULT_TIMEOUT_MS == options.timeout * 1000
    assert resolver_flags.DEFAULT_RETRIES == options.retries
    assert resolver_flags.DEFAULT_MAX_TTL == options.max_ttl
    assert resolver_flags.DEFAULT_MIN_TTL == options.min_ttl
    assert resolver_flags.DEFAULT_CACHE_SIZE == options.cache_size


def test_build_options_from_flags() -> None:
    options = resolver_flags.build_options(
        250,
        3,
        resolver_flags.SelectionChoice.round_robin,
        True,
        True,
        True,
        3600,
        5,
        42,
    )
    assert options == ResolverOptions(
        timeout=0.25,
        retries=3,
        selection=SelectionPolicy.ROUND_ROBIN,
        case_randomisation=True,
        qname_minimisation=True,
        serve_stale=True,
        max_ttl=3600,
        min_ttl=5,
        cache_size=42,
    )


@pytest.mark.parametrize("command", ["resolver", "resolve"])
def test_help_lists_policy_options(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for flag in (
        "--timeout",
        "--retries",
        "--selection",
        "--case-randomisation",
        "--qname-minimisation",
        "--serve-stale",
        "--max-ttl",
        "--min-ttl",
        "--cache-size",
    ):
        assert flag in text, flag
    assert "best-effort" in text
    assert "at-least-once" in text


def test_min_ttl_above_max_ttl_usage_error() -> None:
    result = CliRunner().invoke(
        app, ["resolve", "example.com", "--min-ttl", "100", "--max-ttl", "10"]
    )
    assert result.exit_code == 2
    assert "minimum TTL 100 s is above the maximum TTL 10 s" in result.output


# The transport on loopback sockets, with servers started here.

TIMEOUT = 2.0  # seconds; every exchange below answers well within it


class _Scripted(asyncio.DatagramProtocol):
    """A UDP server that sends the datagrams `reply_for` makes per query."""

    def __init__(self, reply_for: Callable[[DNSRecord], list[bytes]]) -> None:
        self.reply_for = reply_for
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        for datagram in self.reply_for(DNSRecord.parse(data)):
            self.transport.sendto(datagram, addr)


async def _udp(
    reply_for: Callable[[DNSRecord], list[bytes]],
) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Scripted(reply_for), local_addr=("127.0.0.1", 0)
    )
    return transport, transport.get_extra_info("sockname")[1]


async def _tcp(port: int, reply_for: Callable[[bytes], bytes]) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int.from_bytes(await reader.readexactly(2), "big")
        writer.write(reply_for(await reader.readexactly(length)))
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


def _answer(query: DNSRecord, tc: int = 0) -> bytes:
    reply = query.reply()
    reply.add_answer(*RR.fromZone(f"{query.q.qname} 60 IN A 192.0.2.1"))
    reply.header.tc = tc
    return bytes(reply.pack())


def _framed(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


async def _ask(port: int, query: DNSRecord, **keywords: object) -> DNSRecord:
    return await NetworkTransport().query(
        query,
        "127.0.0.1",
        port,
        TIMEOUT,
        **keywords,  # type: ignore[arg-type]
    )


def test_udp_malformed_with_query_id_fails_fast() -> None:
    async def scenario() -> float:
        query = DNSRecord.question("www.example.com")
        server, port = await _udp(lambda q: [_answer(q)[:-2]])
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(TransportError, match="malformed reply"):
                await _ask(port, query)
        finally:
            server.close()
        return loop.time() - started

    assert asyncio.run(scenario()) < TIMEOUT / 2


def test_udp_exact_case_drops_lowercased_echo() -> None:
    def lowered(query: DNSRecord) -> list[bytes]:
        reply = DNSRecord.parse(_answer(query))
        reply.q.qname = DNSLabel(str(query.q.qname).lower())
        return [bytes(reply.pack())]

    async def scenario(exact_case: bool) -> DNSRecord:
        query = DNSRecord.question("WwW.ExAmPlE.cOm")
        server, port = await _udp(lowered)
        try:
            return await NetworkTransport().query(
                query, "127.0.0.1", port, 0.3, exact_case=exact_case
            )
        finally:
            server.close()

    assert asyncio.run(scenario(False)).header.rcode == RCODE.NOERROR
    with pytest.raises(TransportTimeout):
        asyncio.run(scenario(True))


def test_udp_only_returns_truncated_reply() -> None:
    async def scenario() -> DNSRecord:
        query = DNSRecord.question("www.example.com")
        server, port = await _udp(lambda q: [_answer(q, tc=1)])
        try:
            return await _ask(port, query, tcp=False)
        finally:
            server.close()

    assert asyncio.run(scenario()).header.tc == 1


def test_tcp_only_skips_udp() -> None:
    udp_queries: list[DNSRecord] = []

    def count(query: DNSRecord) -> list[bytes]:
        udp_queries.append(query)
        return [_answer(query)]

    async def scenario() -> DNSRecord:
        query = DNSRecord.question("www.example.com")
        udp, port = await _udp(count)
        tcp = await _tcp(port, lambda data: _framed(_answer(DNSRecord.parse(data))))
        try:
            return await _ask(port, query, tcp=True)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    assert asyncio.run(scenario()).header.rcode == RCODE.NOERROR
    assert udp_queries == []


def test_tcp_frame_with_extra_bytes_rejected() -> None:
    def padded(data: bytes) -> bytes:
        return _framed(_answer(DNSRecord.parse(data)) + b"\x00\x00\x00")

    async def scenario() -> None:
        query = DNSRecord.question("www.example.com")
        udp, port = await _udp(lambda q: [_answer(q, tc=1)])
        tcp = await _tcp(port, padded)
        try:
            await _ask(port, query)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    with pytest.raises(TransportError, match="3 bytes after the records"):
        asyncio.run(scenario())


def test_tcp_frame_cut_short_rejected() -> None:
    def short(data: bytes) -> bytes:
        wire = _answer(DNSRecord.parse(data))
        return len(wire).to_bytes(2, "big") + wire[:-5]

    async def scenario() -> None:
        query = DNSRecord.question("www.example.com")
        udp, port = await _udp(lambda q: [_answer(q, tc=1)])
        tcp = await _tcp(port, short)
        try:
            await _ask(port, query)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    with pytest.raises(TransportError, match="closed the TCP connection"):
        asyncio.run(scenario())


def test_resolver_retries_over_tcp_on_loopback() -> None:
    zone = authority(EXAMPLE_NET_ZONE)

    def udp_reply(query: DNSRecord) -> list[bytes]:
        reply = answer_query(query, zone)
        reply.rr, reply.auth, reply.ar = [], [], []
        reply.header.tc = 1
        return [bytes(reply.pack())]

    def tcp_reply(data: bytes) -> bytes:
        return _framed(bytes(answer_query(DNSRecord.parse(data), zone).pack()))

    async def scenario() -> Resolution:
        udp, port = await _udp(udp_reply)
        tcp = await _tcp(port, tcp_reply)
        try:
            # The one "root" server is authoritative for example.net. here,
            # so the resolver asks it directly.
            hints = [("ns1.example.net.", "127.0.0.1")]
            resolver = Resolver(NetworkTransport(), time.monotonic, hints, port)
            resolver.cache.store_rrset(
                RR.fromZone("example.net. 600 IN NS ns1.example.net."),
                Credibility.AUTHORITY,
                "hints",
            )
            resolver.cache.store_rrset(
                RR.fromZone("ns1.example.net. 600 IN A 127.0.0.1"),
                Credibility.ANSWER,
                "hints",
            )
            return await resolver.resolve("www.example.net", QTYPE.A)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    result = asyncio.run(scenario())
    assert addresses(result) == ["192.0.2.90"]
    assert len(events(result, TruncatedEvent)) == 1
    assert query_events(result)[-1].detail.endswith("over TCP")


def test_rng_seed_repeats_random_order() -> None:
    orders = []
    for _ in range(2):
        # Hierarchy seeds the resolver's random source the same way.
        net = hierarchy(selection=SelectionPolicy.RANDOM)
        for i in range(6):
            net.resolve(f"name{i}.example.com")
        orders.append([entry.address for entry in net.network.log])
    assert orders[0] == orders[1]


# The options reach both commands.

REPO = Path(__file__).resolve().parent.parent


def test_resolve_command_uses_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A root server that never replies: one try of 250 ms, then SERVFAIL.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent_root:
        silent_root.bind(("127.0.0.1", 0))
        port = silent_root.getsockname()[1]
        hints = tmp_path / "root.hints"
        hints.write_text("a.root-servers.test. 3600000 A 127.0.0.1\n")
        options = ResolverOptions(timeout=0.25, retries=0)
        started = time.monotonic()
        status = run_resolve(
            "www.example.test", "A", None, str(hints), port, True, options=options
        )
        elapsed = time.monotonic() - started
    output = capsys.readouterr().out
    assert status == 1
    assert "policies: timeout 250 ms, no retries (best-effort)" in output
    assert "status: SERVFAIL" in output
    assert elapsed < 2.0


def test_resolver_command_logs_policies(tmp_path: Path) -> None:
    address = "127.0.0.41"
    port = free_port([address])
    hints = tmp_path / "root.hints"
    hints.write_text(f"a.root-servers.test. 3600000 A {address}\n")
    log_path = tmp_path / "resolver.log"
    arguments = [
        *("resolver", "--address", address, "--port", str(port)),
        *("--root-hints", str(hints), "--server-port", str(port)),
        *("--timeout", "300", "--retries", "2", "--selection", "round-robin"),
        *("--qname-minimisation", "--serve-stale", "--cache-size", "50"),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")

    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "dns_toy", *arguments],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while "resolver policies" not in log_path.read_text():
            assert child.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    finally:
        stop_process(child, 5)

    text = log_path.read_text()
    assert "timeout 300 ms, 2 retries per server" in text
    assert "selection round-robin" in text
    assert "cache 50 entries" in text
    assert "QNAME minimisation on" in text
    assert "serve-stale on" in text
