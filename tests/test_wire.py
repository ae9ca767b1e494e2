"""Size limits and truncation of replies (RFC 1035, RFC 2181 section 9,
RFC 6891, RFC 9471), and the FORMERR reply to undecodable queries."""

import struct

from dnslib import EDNS0, NS, QTYPE, RR, TXT, A, DNSHeader, DNSRecord

from dns_toy.wire import describe_message, encode_response, formerr_for, max_udp_size


def referral(glue_count: int, in_domain: bool) -> DNSRecord:
    reply = DNSRecord(DNSHeader(id=7, qr=1), q=DNSRecord.question("www.example.com").q)
    suffix = "example.com" if in_domain else "example.net"
    for i in range(glue_count):
        host = f"ns{i:02d}-server.{suffix}"
        reply.add_auth(RR("example.com", QTYPE.NS, rdata=NS(host), ttl=3600))
        reply.add_ar(RR(host, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=3600))
    return reply


def plain_query() -> DNSRecord:
    return DNSRecord.question("www.example.com")


def edns_query(size: int) -> DNSRecord:
    query = DNSRecord.question("www.example.com")
    query.add_ar(EDNS0(udp_len=size))
    return query


def flags_of(data: bytes) -> int:
    return struct.unpack_from("!H", data, 2)[0]


def test_udp_size_without_edns_is_512() -> None:
    assert max_udp_size(plain_query(), 1232) == 512


def test_udp_size_is_smaller_of_both_sides() -> None:
    assert max_udp_size(edns_query(4096), 1232) == 1232
    assert max_udp_size(edns_query(800), 1232) == 800


def test_udp_size_never_below_512() -> None:
    assert max_udp_size(edns_query(100), 1232) == 512


def test_small_reply_sent_whole() -> None:
    reply = referral(2, in_domain=True)
    data = encode_response(reply, plain_query(), "udp")
    assert data == referral(2, in_domain=True).pack()
    assert not flags_of(data) & 0x0200


def test_missing_in_domain_glue_sets_tc() -> None:
    data = encode_response(referral(13, in_domain=True), plain_query(), "udp")
    assert len(data) <= 512
    assert flags_of(data) & 0x0200
    parsed = DNSRecord.parse(data)
    assert len(parsed.auth) == 13  # the NS RRset itself is kept whole


def test_missing_sibling_glue_keeps_tc_clear() -> None:
    data = encode_response(referral(13, in_domain=False), plain_query(), "udp")
    parsed = DNSRecord.parse(data)
    assert len(data) <= 512
    assert not flags_of(data) & 0x0200
    assert len(parsed.auth) == 13
    assert len(parsed.ar) < 13


def test_tcp_reply_never_truncated() -> None:
    reply = referral(13, in_domain=True)
    data = encode_response(reply, plain_query(), "tcp")
    assert not flags_of(data) & 0x0200
    assert len(DNSRecord.parse(data).ar) == 13


def test_oversized_answer_gives_header_only_tc() -> None:
    reply = DNSRecord(DNSHeader(id=9, qr=1, aa=1), q=DNSRecord.question("big.example.com", "TXT").q)
    for i in range(30):
        reply.add_answer(RR("big.example.com", QTYPE.TXT, rdata=TXT("x" * 40 + str(i))))
    reply.add_ar(EDNS0(udp_len=1232))
    data = encode_response(reply, edns_query(512), "udp")
    parsed = DNSRecord.parse(data)
    assert parsed.header.tc == 1
    assert parsed.rr == []
    assert str(parsed.q.qname) == "big.example.com."
    assert [rr.rtype for rr in parsed.ar] == [QTYPE.OPT]  # OPT survives truncation


def test_formerr_keeps_id_and_opcode() -> None:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    reply = formerr_for(header + b"\xff")
    assert reply is not None
    ident, flags = struct.unpack_from("!HH", reply)
    assert ident == 0x1234
    assert flags & 0x8000
    assert flags & 0x0100  # RD copied
    assert flags & 0x000F == 1


def test_formerr_not_sent_for_short_or_reply() -> None:
    assert formerr_for(b"\x00" * 11) is None
    reply_header = struct.pack("!HHHHHH", 1, 0x8000, 0, 0, 0, 0)
    assert formerr_for(reply_header) is None


def test_describe_message_reads_question() -> None:
    query = DNSRecord.question("WWW.Example.com", "MX")
    query.header.rd = 1
    assert describe_message(query.pack()) == ("WWW.Example.com.", "MX", "NOERROR", "rd")
