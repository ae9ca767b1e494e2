"""Authoritative answering (RFC 1034 section 4.3.2), as tables of zone text."""

import pytest
from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSQuestion, DNSRecord

from dns_toy.authority import Catalog, RRsetOrder, answer_query
from dns_toy.zonefile import parse_zone_text

EXAMPLE = """\
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 2026120401 7200 900 1209600 300
         IN NS  ns1
         IN NS  ns2.example.net.
         IN MX  10 mail
ns1      IN A   192.0.2.1
mail     IN A   192.0.2.25
WWW      IN A   192.0.2.80
alias    IN CNAME www
outside  IN CNAME www.example.net.
chain    IN CNAME alias
loop1    IN CNAME loop2
loop2    IN CNAME loop1
dangling IN CNAME nothing-here
a.b.c    IN TXT "deep name"
*.wild   IN A   192.0.2.99
sub      IN NS  ns.sub
         IN NS  ns.elsewhere.org.
ns.sub   IN A   192.0.2.53
"""

CHILD = """\
$ORIGIN sub.example.com.
$TTL 60
@    IN SOA ns hostmaster 7 3600 600 86400 30
     IN NS  ns
ns   IN A   192.0.2.53
www  IN A   192.0.2.54
"""

OTHER = """\
$ORIGIN example.net.
$TTL 600
@    IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 120
     IN NS  ns1.example.com.
www  IN A   198.51.100.1
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    zones = [parse_zone_text(EXAMPLE), parse_zone_text(OTHER)]
    return Catalog(zones, server_name="ns1.example.com")


def ask(catalog: Catalog, name: str, qtype: str = "A", **header: int) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    for key, value in header.items():
        setattr(query.header, key, value)
    reply = answer_query(query, catalog)
    # Every reply must survive a round trip through the wire format.
    return DNSRecord.parse(reply.pack())


def records(section: list) -> set[tuple[str, str, int, str]]:
    return {
        (str(rr.rname).lower(), QTYPE[rr.rtype], rr.ttl, str(rr.rdata).lower())
        for rr in section
    }


def test_answer_is_authoritative(catalog: Catalog) -> None:
    reply = ask(catalog, "mail.example.com")
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 1
    assert reply.header.ra == 0
    assert records(reply.rr) == {("mail.example.com.", "A", 3600, "192.0.2.25")}
    assert reply.auth == []


def test_match_ignores_case_keeps_owner_case(catalog: Catalog) -> None:
    reply = ask(catalog, "www.EXAMPLE.com")
    assert str(reply.q.qname) == "www.EXAMPLE.com."
    assert [str(rr.rname) for rr in reply.rr] == ["WWW.example.com."]


def test_mx_answer_adds_target_address(catalog: Catalog) -> None:
    reply = ask(catalog, "example.com", "MX")
    assert records(reply.rr) == {("example.com.", "MX", 3600, "10 mail.example.com.")}
    assert records(reply.ar) == {("mail.example.com.", "A", 3600, "192.0.2.25")}


def test_apex_ns_answer_adds_in_zone_address(catalog: Catalog) -> None:
    reply = ask(catalog, "example.com", "NS")
    assert reply.header.aa == 1
    assert len(reply.rr) == 2
    assert records(reply.ar) == {("ns1.example.com.", "A", 3600, "192.0.2.1")}


@pytest.mark.parametrize(
    "name",
    ["sub.example.com", "www.sub.example.com", "ns.sub.example.com", "a.b.sub.example.com"],
)
def test_names_at_or_below_cut_get_referral(catalog: Catalog, name: str) -> None:
    reply = ask(catalog, name)
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 0
    assert reply.rr == []
    assert records(reply.auth) == {
        ("sub.example.com.", "NS", 3600, "ns.sub.example.com."),
        ("sub.example.com.", "NS", 3600, "ns.elsewhere.org."),
    }
    # Only the in-bailiwick NS name has glue; ns.elsewhere.org has none.
    assert records(reply.ar) == {("ns.sub.example.com.", "A", 3600, "192.0.2.53")}


def test_ds_at_cut_answered_by_parent(catalog: Catalog) -> None:
    reply = ask(catalog, "sub.example.com", "DS")
    assert reply.header.aa == 1
    assert reply.rr == []
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_nxdomain_carries_soa_with_negative_ttl(catalog: Catalog) -> None:
    reply = ask(catalog, "nosuchname.example.com")
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.header.aa == 1
    assert reply.rr == []
    assert len(reply.auth) == 1
    soa = reply.auth[0]
    assert soa.rtype == QTYPE.SOA
    assert str(soa.rname) == "example.com."
    # min(SOA TTL 3600, SOA MINIMUM 300)
    assert soa.ttl == 300


def test_nodata_carries_soa(catalog: Catalog) -> None:
    reply = ask(catalog, "mail.example.com", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 1
    assert reply.rr == []
    assert [(QTYPE[rr.rtype], rr.ttl) for rr in reply.auth] == [("SOA", 300)]


@pytest.mark.parametrize("name", ["b.c.example.com", "c.example.com"])
def test_empty_non_terminal_is_nodata(catalog: Catalog, name: str) -> None:
    reply = ask(catalog, name)
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.rr == []
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_cname_followed_inside_zone(catalog: Catalog) -> None:
    reply = ask(catalog, "chain.example.com")
    assert reply.header.aa == 1
    assert [(str(rr.rname).lower(), QTYPE[rr.rtype]) for rr in reply.rr] == [
        ("chain.example.com.", "CNAME"),
        ("alias.example.com.", "CNAME"),
        ("www.example.com.", "A"),
    ]


def test_cname_followed_into_other_served_zone(catalog: Catalog) -> None:
    reply = ask(catalog, "outside.example.com")
    assert records(reply.rr) == {
        ("outside.example.com.", "CNAME", 3600, "www.example.net."),
        ("www.example.net.", "A", 600, "198.51.100.1"),
    }


def test_cname_query_returns_cname_itself(catalog: Catalog) -> None:
    reply = ask(catalog, "alias.example.com", "CNAME")
    assert records(reply.rr) == {("alias.example.com.", "CNAME", 3600, "www.example.com.")}


def test_cname_loop_stops(catalog: Catalog) -> None:
    reply = ask(catalog, "loop1.example.com")
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME", "CNAME"]
    assert reply.header.rcode == RCODE.NOERROR


def test_dangling_cname_is_nxdomain_with_chain(catalog: Catalog) -> None:
    reply = ask(catalog, "dangling.example.com")
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME"]
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_wildcard_synthesises_query_name(catalog: Catalog) -> None:
    reply = ask(catalog, "anything.wild.example.com")
    assert records(reply.rr) == {("anything.wild.example.com.", "A", 3600, "192.0.2.99")}


def test_outside_every_zone_is_refused(catalog: Catalog) -> None:
    reply = ask(catalog, "www.example.org")
    assert reply.header.rcode == RCODE.REFUSED
    assert reply.header.aa == 0
    assert reply.rr == []


def test_deepest_zone_answers() -> None:
    catalog = Catalog([parse_zone_text(EXAMPLE), parse_zone_text(CHILD)])
    reply = ask(catalog, "www.sub.example.com")
    assert reply.header.aa == 1
    assert records(reply.rr) == {("www.sub.example.com.", "A", 60, "192.0.2.54")}


def test_query_flags_are_echoed(catalog: Catalog) -> None:
    reply = ask(catalog, "www.example.com", rd=1)
    assert reply.header.qr == 1
    assert reply.header.rd == 1
    assert reply.header.ra == 0


def test_other_opcode_is_notimp(catalog: Catalog) -> None:
    reply = ask(catalog, "www.example.com", opcode=OPCODE.STATUS)
    assert reply.header.rcode == RCODE.NOTIMP


def test_two_questions_is_formerr(catalog: Catalog) -> None:
    query = DNSRecord.question("www.example.com")
    query.add_question(DNSQuestion("mail.example.com"))
    reply = answer_query(query, catalog)
    assert reply.header.rcode == RCODE.FORMERR


def test_chaos_id_server_names_server(catalog: Catalog) -> None:
    query = DNSRecord.question("id.server", "TXT", "CH")
    reply = DNSRecord.parse(answer_query(query, catalog).pack())
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ['"ns1.example.com"']
    assert reply.rr[0].rclass == CLASS.CH


def test_other_class_is_refused(catalog: Catalog) -> None:
    query = DNSRecord.question("www.example.com", "A", "CH")
    assert answer_query(query, catalog).header.rcode == RCODE.REFUSED


def test_edns_query_gets_opt_back(catalog: Catalog) -> None:
    query = DNSRecord.question("www.example.com")
    query.add_ar(EDNS0(udp_len=4096))
    reply = DNSRecord.parse(answer_query(query, catalog).pack())
    options = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    assert len(options) == 1
    assert options[0].rclass == 1232


def test_edns_version_one_is_badvers(catalog: Catalog) -> None:
    query = DNSRecord.question("www.example.com")
    query.add_ar(EDNS0(udp_len=4096, version=1))
    reply = DNSRecord.parse(answer_query(query, catalog).pack())
    options = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    assert reply.header.rcode == 0
    assert options[0].edns_rcode == 1


POOL = """\
$ORIGIN pool.test.
$TTL 60
@    IN SOA ns hostmaster 1 3600 600 86400 30
     IN NS  ns
ns   IN A   192.0.2.1
www  IN A   192.0.2.11
www  IN A   192.0.2.12
www  IN A   192.0.2.13
"""


def answer_addresses(catalog: Catalog) -> list[str]:
    return [str(rr.rdata) for rr in ask(catalog, "www.pool.test").rr]


def test_fixed_order_keeps_file_order() -> None:
    catalog = Catalog([parse_zone_text(POOL)], order=RRsetOrder.FIXED)
    first = answer_addresses(catalog)
    assert first == ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
    assert answer_addresses(catalog) == first


def test_cyclic_order_rotates_per_query() -> None:
    catalog = Catalog([parse_zone_text(POOL)], order=RRsetOrder.CYCLIC)
    seen = [answer_addresses(catalog) for _ in range(4)]
    assert seen == [
        ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
        ["192.0.2.12", "192.0.2.13", "192.0.2.11"],
        ["192.0.2.13", "192.0.2.11", "192.0.2.12"],
        ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
    ]


def test_random_order_keeps_the_rrset() -> None:
    catalog = Catalog([parse_zone_text(POOL)], order=RRsetOrder.RANDOM)
    orders = {tuple(answer_addresses(catalog)) for _ in range(60)}
    assert all(sorted(order) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"] for order in orders)
    assert len(orders) > 1


def test_ds_at_child_apex_answered_by_parent() -> None:
    catalog = Catalog([parse_zone_text(EXAMPLE), parse_zone_text(CHILD)])
    reply = ask(catalog, "sub.example.com", "DS")
    assert reply.header.aa == 1
    assert reply.rr == []
    # The parent's SOA: the DS RRset lives on the parent side of the cut.
    assert [(str(rr.rname), QTYPE[rr.rtype]) for rr in reply.auth] == [("example.com.", "SOA")]


def test_ds_at_apex_without_parent_from_child() -> None:
    catalog = Catalog([parse_zone_text(CHILD)])
    reply = ask(catalog, "sub.example.com", "DS")
    assert reply.header.aa == 1
    assert [(str(rr.rname), QTYPE[rr.rtype]) for rr in reply.auth] == [("sub.example.com.", "SOA")]


HOLLOW = """\
$ORIGIN hollow.test.
$TTL 60
@              IN SOA ns hostmaster 1 3600 600 86400 30
               IN NS  ns
ns             IN A   192.0.2.1
below.*.empty  IN TXT "makes *.empty an empty non-terminal"
"""


def test_empty_wildcard_gives_nodata() -> None:
    catalog = Catalog([parse_zone_text(HOLLOW)])
    reply = ask(catalog, "anything.empty.hollow.test")
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.rr == []
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_missing_wildcard_gives_nxdomain() -> None:
    catalog = Catalog([parse_zone_text(HOLLOW)])
    reply = ask(catalog, "anything.hollow.test")
    assert reply.header.rcode == RCODE.NXDOMAIN
