"""Loading the real root zone and answering a referral from it, checked
against dnspython's reading of the same file."""

import time
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from dns_toy.authority import Catalog, answer_query
from dns_toy.zone import Zone
from dns_toy.zonefile import load_zone

ROOT_ZONE = Path(__file__).parent / "data" / "root-2018.zone"


@pytest.fixture(scope="module")
def root() -> Zone:
    started = time.monotonic()
    zone = load_zone(str(ROOT_ZONE))
    print(f"root zone loaded in {time.monotonic() - started:.2f} s")
    return zone


@pytest.fixture(scope="module")
def oracle() -> dns.zone.Zone:
    return dns.zone.from_file(str(ROOT_ZONE), origin=".", relativize=False)


def test_root_zone_serial_and_size(root: Zone) -> None:
    assert root.serial == 2018031200
    # One of the two identical SOA lines is dropped as a duplicate.
    lines = [line for line in ROOT_ZONE.read_text().splitlines() if line.strip()]
    assert root.record_count == len(lines) - 1


def test_root_referral_matches_zone_file(root: Zone, oracle: dns.zone.Zone) -> None:
    reply = answer_query(DNSRecord.question("www.example.com", "A"), Catalog([root]))
    reply = DNSRecord.parse(reply.pack())
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 0
    assert reply.rr == []

    com = dns.name.from_text("com.")
    expected_ns = {rd.target.to_text() for rd in oracle.find_rdataset(com, "NS")}
    assert {str(rr.rdata) for rr in reply.auth if rr.rtype == QTYPE.NS} == expected_ns
    assert {str(rr.rname) for rr in reply.auth} == {"com."}

    expected_glue = set()
    for target in expected_ns:
        for rdtype in ("A", "AAAA"):
            rdataset = oracle.get_rdataset(dns.name.from_text(target), rdtype)
            for rd in rdataset or []:
                expected_glue.add((target, rdtype, rd.to_text()))
    assert len(expected_glue) == 26
    glue = {(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.ar}
    assert glue == expected_glue


def test_root_nxdomain_for_missing_tld(root: Zone) -> None:
    reply = answer_query(DNSRecord.question("www.example.invalid", "A"), Catalog([root]))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.header.aa == 1
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]
    assert reply.auth[0].ttl == 86400


def test_root_ds_answered_at_cut(root: Zone, oracle: dns.zone.Zone) -> None:
    reply = answer_query(DNSRecord.question("com", "DS"), Catalog([root]))
    expected = {rd.to_text().upper() for rd in oracle.find_rdataset(dns.name.from_text("com."), "DS")}
    assert reply.header.aa == 1
    assert {str(rr.rdata).upper() for rr in reply.rr} == expected
