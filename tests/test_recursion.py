"""Recursing name servers on the fake hierarchy of chainnet, then one real
`dns-toy serve` without --recursion.

The root queries a TLD server, which queries the authoritative server,
each with RD=1, and each caches what it passes on.
"""

import asyncio
from pathlib import Path

import dns.flags
import dns.rcode
import pytest
from chainnet import (
    COM,
    COM2_ADDRESS,
    COM_ADDRESS,
    NS1_ADDRESS,
    NS2_ADDRESS,
    NS3_ADDRESS,
    ORG,
    ORG_ADDRESS,
    ROOT2_ADDRESS,
    ROOT_ADDRESS,
    Chain,
    build_chain,
)
from dnslib import EDNS0, QTYPE, RCODE, DNSLabel, DNSRecord
from fakenet import authority
from servers import NameServer

from dns_toy.cache import Credibility
from dns_toy.errors import TopologyError
from dns_toy.recursion import MAX_HOPS, Recursor, server_name
from dns_toy.trail import (
    SOURCE_AUTHORITY,
    SOURCE_CACHE,
    SOURCE_RECURSION,
    Budget,
    budget_option,
    read_budget,
    read_trail,
    trail_request,
)

REPO = Path(__file__).resolve().parent.parent


def question(
    name: str, qtype: str = "A", *, rd: int = 1, trail: bool = False
) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    query.header.rd = rd
    if trail:
        query.add_ar(EDNS0(udp_len=1232, opts=[trail_request()]))
    return query


def ask(chain: Chain, address: str, query: DNSRecord) -> DNSRecord:
    return asyncio.run(chain.network.query(query, address, 53, 5.0))


def cached(chain: Chain, address: str, name: str, qtype: str = "A") -> list[str]:
    hit = chain.recursors[address].cache.lookup(
        DNSLabel(name), QTYPE.reverse[qtype], Credibility.ANSWER
    )
    if hit is None:
        return []
    return [str(rr.rdata) for rr in hit.records]


@pytest.fixture
def chain() -> Chain:
    return build_chain()


# The chain: root -> TLD -> authoritative.


def test_root_asks_tld_asks_leaf(chain: Chain) -> None:
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.80"]
    assert chain.network.log == [
        (ROOT_ADDRESS, "www.example.com.", 1),
        (COM_ADDRESS, "www.example.com.", 1),
        (NS1_ADDRESS, "www.example.com.", 1),
    ]


def test_passed_on_answer_has_ra_not_aa(chain: Chain) -> None:
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.ra == 1
    assert reply.header.aa == 0
    assert reply.header.rd == 1


def test_each_server_caches_what_it_passed_on(chain: Chain) -> None:
    ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert cached(chain, ROOT_ADDRESS, "www.example.com") == ["192.0.2.80"]
    assert cached(chain, COM_ADDRESS, "www.example.com") == ["192.0.2.80"]
    # The authoritative server answered from its zone and cached nothing.
    assert len(chain.recursors[NS1_ADDRESS].cache) == 0


def test_cache_answer_has_remaining_ttl(chain: Chain) -> None:
    ask(chain, ROOT_ADDRESS, question("www.example.com"))
    before = len(chain.network.log)
    chain.clock.advance(100)
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com", trail=True))
    assert len(chain.network.log) == before + 1  # only the query to the root
    # Stored one round trip before the first reply reached the client, and
    # a remaining TTL is rounded down.
    assert [rr.ttl for rr in reply.rr] == [3499]
    assert reply.header.aa == 0
    trail = read_trail(reply)
    assert trail is not None
    assert trail.source == SOURCE_CACHE
    assert trail.hops == ()


def test_cache_entry_expires(chain: Chain) -> None:
    ask(chain, ROOT_ADDRESS, question("www.example.com"))
    chain.clock.advance(3601)
    ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert chain.network.sent_to(NS1_ADDRESS) == 2


def test_own_zone_answer_keeps_aa(chain: Chain) -> None:
    reply = ask(chain, NS1_ADDRESS, question("www.example.com", trail=True))
    assert reply.header.aa == 1
    assert reply.header.ra == 1
    assert len(chain.network.log) == 1
    trail = read_trail(reply)
    assert trail is not None
    assert trail.source == SOURCE_AUTHORITY


def test_rd0_gets_referral_with_ra(chain: Chain) -> None:
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com", rd=0))
    assert reply.header.ra == 1
    assert reply.rr == []
    assert {str(rr.rname) for rr in reply.auth} == {"com."}
    assert len(chain.network.log) == 1


def test_without_recursor_rd1_gets_referral() -> None:
    chain = build_chain(recursing=False)
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.ra == 0
    assert reply.header.aa == 0
    assert reply.rr == []
    assert {str(rr.rname) for rr in reply.auth} == {"com."}
    assert len(chain.network.log) == 1


def test_nxdomain_passed_on_and_cached(chain: Chain) -> None:
    reply = ask(chain, ROOT_ADDRESS, question("nosuch.example.com"))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]
    before = len(chain.network.log)
    again = ask(chain, ROOT_ADDRESS, question("nosuch.example.com"))
    assert again.header.rcode == RCODE.NXDOMAIN
    assert len(chain.network.log) == before + 1


# Names outside a server's zones, glueless delegations and CNAMEs.


def test_refused_name_goes_to_root(chain: Chain) -> None:
    reply = ask(chain, NS1_ADDRESS, question("www.example.org"))
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.90"]
    assert chain.network.log[1] == (ROOT_ADDRESS, "www.example.org.", 1)


def test_glueless_ns_resolved_then_asked(chain: Chain) -> None:
    reply = ask(chain, ORG_ADDRESS, question("www.example.org", trail=True))
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.90"]
    # org. has no address for ns3.example.com, so it looks it up first.
    assert (ROOT_ADDRESS, "ns3.example.com.", 1) in chain.network.log
    assert chain.network.log[-1] == (NS3_ADDRESS, "www.example.org.", 1)
    assert cached(chain, ORG_ADDRESS, "ns3.example.com") == ["192.0.2.3"]
    trail = read_trail(reply)
    assert trail is not None
    assert trail.source == SOURCE_RECURSION
    asked = [(hop.depth, hop.qname, hop.address) for hop in trail.hops]
    assert (0, "ns3.example.com.", ROOT_ADDRESS) in asked
    assert (0, "www.example.org.", NS3_ADDRESS) in asked


def test_cname_target_chased(chain: Chain) -> None:
    reply = ask(chain, NS1_ADDRESS, question("alias.example.com"))
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME", "A"]
    assert str(reply.rr[1].rdata) == "192.0.2.90"
    # Part of the answer came from elsewhere, so it is not authoritative.
    assert reply.header.aa == 0


def test_cname_inside_zone_not_chased(chain: Chain) -> None:
    reply = ask(chain, NS1_ADDRESS, question("ftp.example.com"))
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME", "A"]
    assert reply.header.aa == 1
    assert len(chain.network.log) == 1


# Failures and bounds.


def test_silent_leaf_fails_over(chain: Chain) -> None:
    del chain.network.nodes[NS1_ADDRESS]
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.rcode == RCODE.NOERROR
    assert chain.network.sent_to(NS1_ADDRESS) == 1
    assert chain.network.sent_to(NS2_ADDRESS) == 1


def test_next_server_hears_back_before_timeout(chain: Chain) -> None:
    # ns1 is silent: the TLD server must give up on it and get ns2's answer
    # while the root, and the client, still wait.
    del chain.network.nodes[NS1_ADDRESS]
    started = chain.clock()
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.rcode == RCODE.NOERROR
    assert chain.network.sent_to(COM2_ADDRESS) == 0
    assert chain.clock() - started < 4.0


def test_servfail_passed_on_not_retried(chain: Chain) -> None:
    async def failing(query: DNSRecord) -> DNSRecord:
        reply = query.reply(ra=1, aa=0)
        reply.header.rcode = RCODE.SERVFAIL
        return reply

    chain.network.nodes[COM_ADDRESS] = failing
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert reply.header.ra == 1
    assert chain.network.sent_to(COM2_ADDRESS) == 0


def test_non_recursing_tld_skipped() -> None:
    chain = build_chain()
    for address in (COM_ADDRESS, COM2_ADDRESS):
        node = chain.network.nodes[address]
        node.recursor = None  # type: ignore[union-attr]
    reply = ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert chain.network.sent_to(COM_ADDRESS) == 1
    assert chain.network.sent_to(COM2_ADDRESS) == 1
    assert chain.network.sent_to(NS1_ADDRESS) == 0


def test_hop_limit_gives_servfail(chain: Chain) -> None:
    query = question("www.example.com")
    query.add_ar(EDNS0(udp_len=1232, opts=[budget_option(Budget(MAX_HOPS, 3000))]))
    reply = ask(chain, ROOT_ADDRESS, query)
    assert reply.header.rcode == RCODE.SERVFAIL
    assert len(chain.network.log) == 1


def test_hop_count_grows_down_chain(chain: Chain) -> None:
    seen: list[int] = []
    leaf = chain.network.nodes[NS1_ADDRESS]

    async def recording(query: DNSRecord) -> DNSRecord | None:
        budget = read_budget(query)
        seen.append(-1 if budget is None else budget.hops)
        assert leaf.recursor is not None  # type: ignore[union-attr]
        return await leaf.recursor.respond(query, leaf.catalog)  # type: ignore[union-attr]

    chain.network.nodes[NS1_ADDRESS] = recording
    ask(chain, ROOT_ADDRESS, question("www.example.com"))
    assert seen == [2]


def test_in_zone_loop_fails_without_queries() -> None:
    # loop.org. is served by ns.loop.org. without glue: finding that
    # server's address needs the address itself.
    chain = build_chain()
    org = chain.network.nodes[ORG_ADDRESS]
    org.catalog = authority(ORG + "loop IN NS ns.loop.org.\n")  # type: ignore[union-attr]
    reply = ask(chain, ROOT_ADDRESS, question("www.loop.org"))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert chain.network.log == [
        (ROOT_ADDRESS, "www.loop.org.", 1),
        (ORG_ADDRESS, "www.loop.org.", 1),
    ]


def test_cross_server_loop_stops_at_hop_limit() -> None:
    # x.com. is served by ns.x.org. and x.org. by ns.x.com., neither with
    # glue, on different servers: each lookup sends the next one down.
    chain = build_chain()
    com = chain.network.nodes[COM_ADDRESS]
    org = chain.network.nodes[ORG_ADDRESS]
    com.catalog = authority(COM + "x IN NS ns.x.org.\n")  # type: ignore[union-attr]
    org.catalog = authority(ORG + "x IN NS ns.x.com.\n")  # type: ignore[union-attr]
    reply = ask(chain, ROOT_ADDRESS, question("www.x.com"))
    assert reply.header.rcode == RCODE.SERVFAIL
    # One query per hop, until the hop count or the time each server
    # passes on runs out: a SERVFAIL is passed up, never retried elsewhere.
    assert 4 <= len(chain.network.log) <= MAX_HOPS + 1
    assert chain.network.sent_to(COM2_ADDRESS) == 0
    assert chain.network.sent_to(ROOT2_ADDRESS) == 0


def test_server_name_made_absolute() -> None:
    assert server_name("a.root-servers.net") == "a.root-servers.net."
    assert server_name("127.0.0.2") == "127.0.0.2"


def test_hints_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.hints"
    empty.write_text("; nothing\n")
    with pytest.raises(TopologyError, match="no A records"):
        Recursor.from_hints_file(empty, "ns", 53)
    with pytest.raises(TopologyError, match="not found"):
        Recursor.from_hints_file(tmp_path / "missing.hints", "ns", 53)


# A real server without --recursion keeps the plain authority's behaviour.


def test_serve_without_recursion_has_ra0(tmp_path: Path) -> None:
    zone = REPO / "zones" / "root.zone"
    server = NameServer([zone], "127.0.0.2", tmp_path / "serve.log")
    try:
        server.wait_until_answering(".")
        reply = server.query("www.example.com")
    finally:
        assert server.stop() == 0
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.RA == 0
    assert reply.flags & dns.flags.AA == 0
    assert reply.answer == []
    assert {str(rrset.name) for rrset in reply.authority} == {"com."}


def test_serve_with_recursion_sets_ra(tmp_path: Path) -> None:
    zone = REPO / "zones" / "example.com.zone"
    hints = tmp_path / "root.hints"
    # No root server listens here, so a recursion would time out. The
    # name asked is the server's own, so none is needed.
    hints.write_text(
        ".  3600000  NS  a.root.test.\na.root.test.  3600000  A  127.0.0.2\n"
    )
    server = NameServer(
        [zone],
        "127.0.0.8",
        tmp_path / "serve.log",
        "--recursion",
        "--root-hints",
        str(hints),
    )
    try:
        server.wait_until_answering("example.com.")
        reply = server.query("www.example.com")
    finally:
        assert server.stop() == 0
    assert reply.flags & dns.flags.RA
    assert reply.flags & dns.flags.AA
    assert [str(rr) for rrset in reply.answer for rr in rrset] == ["192.0.2.10"]
