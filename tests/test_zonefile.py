"""The zone-file reader (RFC 1035 section 5), rule by rule and against dnspython."""

import base64
import calendar
import logging
import random
import time
from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from dnslib import (
    AAAA,
    CNAME,
    DNSKEY,
    DS,
    MX,
    NS,
    NSEC,
    PTR,
    QTYPE,
    RD,
    RR,
    RRSIG,
    SOA,
    SRV,
    TXT,
    A,
    DNSBuffer,
    DNSError,
    DNSLabel,
    DNSRecord,
)

from dns_toy.errors import ZoneFileError
from dns_toy.names import NameKey
from dns_toy.zone import Zone, ZoneRecord
from dns_toy.zonefile import HINFO, load_zone, parse_zone_text, read_records

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
FIXTURES = DATA / "zonefile"
ROOT_ZONE = DATA / "root-2018.zone"

# Three lines, so the first record after it is on line 4.
HEADER = """\
$ORIGIN example.com.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 900 1209600 300
"""


def zone_of(body: str, origin: str | None = None) -> Zone:
    return parse_zone_text(HEADER + body, origin)


def error_of(text: str, origin: str | None = None) -> str:
    with pytest.raises(ZoneFileError) as caught:
        parse_zone_text(text, origin)
    return str(caught.value)


def rdatas(zone: Zone, name: str, rtype: int) -> tuple[RD, ...]:
    rrsets = zone.rrsets_at(DNSLabel(name))
    assert rrsets is not None, f"no records at {name}"
    return rrsets[rtype].rdatas


def ttl_of(zone: Zone, name: str, rtype: int) -> int:
    rrsets = zone.rrsets_at(DNSLabel(name))
    assert rrsets is not None, f"no records at {name}"
    return rrsets[rtype].ttl


def records_of(tmp_path: Path, text: str) -> list[ZoneRecord]:
    path = tmp_path / "test.zone"
    path.write_text(text)
    _, records = read_records(str(path))
    return records


# Origin


def test_origin_absolute() -> None:
    zone = parse_zone_text("$ORIGIN example.org.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n")
    assert zone.origin == DNSLabel("example.org.")


def test_origin_relative_joins_current() -> None:
    zone = zone_of("$ORIGIN sub\nwww A 192.0.2.1\n$ORIGIN deeper\nx A 192.0.2.2\n")
    assert rdatas(zone, "www.sub.example.com.", QTYPE.A) == (A("192.0.2.1"),)
    assert rdatas(zone, "x.deeper.sub.example.com.", QTYPE.A) == (A("192.0.2.2"),)


def test_origin_from_argument() -> None:
    zone = parse_zone_text(
        "$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n", "example.net"
    )
    assert zone.origin == DNSLabel("example.net.")
    assert rdatas(zone, "www.example.net.", QTYPE.A) == (A("192.0.2.1"),)


def test_origin_argument_wins_over_directive() -> None:
    text = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n"
    zone = parse_zone_text(text, "example.com.")
    assert zone.origin == DNSLabel("example.com.")


def test_origin_from_first_soa_owner() -> None:
    text = "example.org. 60 SOA ns h 1 2 3 4 5\nwww 60 A 192.0.2.1\n"
    zone = parse_zone_text(text)
    assert zone.origin == DNSLabel("example.org.")
    assert rdatas(zone, "www.example.org.", QTYPE.A) == (A("192.0.2.1"),)
    assert rdatas(zone, "example.org.", QTYPE.SOA)[0].mname == DNSLabel(
        "ns.example.org."
    )


def test_no_origin_for_relative_name() -> None:
    assert error_of("$TTL 60\n@ SOA ns h 1 2 3 4 5\n") == (
        "<text>:2: no origin: the name '@' is relative; add $ORIGIN or pass an origin"
    )


def test_no_origin_anywhere() -> None:
    assert error_of("x.example. 60 A 192.0.2.1\n") == (
        "<text>:1: no origin: the file has no $ORIGIN and no SOA record with an "
        "absolute owner; add $ORIGIN or pass an origin"
    )


def test_origin_argument_invalid() -> None:
    assert error_of(HEADER, "a..b") == (
        "<text>:0: invalid origin argument: empty label in 'a..b'"
    )


# TTL


def test_ttl_directive_default() -> None:
    zone = zone_of("www A 192.0.2.1\n$TTL 1d\nftp A 192.0.2.2\n")
    assert ttl_of(zone, "www.example.com.", QTYPE.A) == 3600
    assert ttl_of(zone, "ftp.example.com.", QTYPE.A) == 86400


def test_ttl_previous_record_without_directive() -> None:
    text = "$ORIGIN example.com.\n@ 300 SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n"
    zone = parse_zone_text(text)
    assert ttl_of(zone, "www.example.com.", QTYPE.A) == 300


def test_ttl_missing_error() -> None:
    assert error_of("$ORIGIN example.com.\n@ SOA ns h 1 2 3 4 5\n") == (
        "<text>:2: missing TTL and no $TTL"
    )


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        ("90", 90),
        ("0", 0),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1H", 3600),
        ("10S", 10),
        ("1w2d3h4m5s", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("2147483647", 2**31 - 1),
    ],
)
def test_ttl_units(ttl: str, seconds: int) -> None:
    zone = zone_of(f"www {ttl} IN A 192.0.2.1\n")
    assert ttl_of(zone, "www.example.com.", QTYPE.A) == seconds


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("1x", "invalid TTL '1x'"),
        ("1h30", "invalid TTL '1h30'"),
        ("1.5h", "invalid TTL '1.5h'"),
        ("2147483648", "invalid TTL '2147483648': more than 2147483647 seconds"),
        ("9" * 30, f"invalid TTL '{'9' * 30}'"),
    ],
)
def test_ttl_invalid(ttl: str, message: str) -> None:
    assert error_of(HEADER + f"www {ttl} IN A 192.0.2.1\n") == f"<text>:4: {message}"


def test_ttl_directive_invalid() -> None:
    assert error_of("$ORIGIN example.com.\n$TTL 1x\n") == "<text>:2: invalid TTL '1x'"


@pytest.mark.parametrize(
    "fields", ["300 IN A", "IN 300 A", "IN A", "300 A", "A", "300 CLASS1 A"]
)
def test_ttl_and_class_any_order(fields: str) -> None:
    zone = zone_of(f"www {fields} 192.0.2.1\n")
    expected_ttl = 300 if "300" in fields else 3600
    assert ttl_of(zone, "www.example.com.", QTYPE.A) == expected_ttl
    assert rdatas(zone, "www.example.com.", QTYPE.A) == (A("192.0.2.1"),)


def test_lowercase_mnemonics() -> None:
    text = "$origin example.com.\n$ttl 60\n@ in soa ns h 1 2 3 4 5\n@ mx 10 mail\n"
    zone = parse_zone_text(text + "mail in a 192.0.2.25\n")
    assert rdatas(zone, "example.com.", QTYPE.MX) == (MX("mail.example.com.", 10),)
    assert rdatas(zone, "mail.example.com.", QTYPE.A) == (A("192.0.2.25"),)


# Owner names and domain names


def test_at_sign_is_origin() -> None:
    zone = zone_of("@ NS ns1\nwww CNAME @\n")
    assert rdatas(zone, "example.com.", QTYPE.NS) == (NS("ns1.example.com."),)
    assert rdatas(zone, "www.example.com.", QTYPE.CNAME) == (CNAME("example.com."),)


def test_relative_names_get_origin() -> None:
    zone = zone_of("www CNAME host.a\nmx MX 5 other.example.net.\n")
    assert rdatas(zone, "www.example.com.", QTYPE.CNAME) == (
        CNAME("host.a.example.com."),
    )
    assert rdatas(zone, "mx.example.com.", QTYPE.MX) == (MX("other.example.net.", 5),)


def test_blank_owner_inherits_previous(tmp_path: Path) -> None:
    records = records_of(tmp_path, HEADER + "www A 192.0.2.1\n\tAAAA 2001:db8::1\n")
    assert [(str(r.name), r.rtype, r.line) for r in records] == [
        ("example.com.", QTYPE.SOA, 3),
        ("www.example.com.", QTYPE.A, 4),
        ("www.example.com.", QTYPE.AAAA, 5),
    ]


def test_blank_owner_first_record_error() -> None:
    assert error_of("$ORIGIN example.com.\n  A 192.0.2.1\n") == (
        "<text>:2: missing owner name: no previous record to take it from"
    )


def test_name_escapes() -> None:
    zone = zone_of(r"a\.b\046c.d PTR sp\032ace.\065bc.example.org." + "\n")
    owner = DNSLabel([b"a.b.c", b"d", b"example", b"com"])
    (rdata,) = rdatas(zone, owner, QTYPE.PTR)
    assert rdata.label.label == (b"sp ace", b"Abc", b"example", b"org")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (r"a\256", r"invalid escape '\256' in 'a\256'"),
        (r"a\12", r"invalid escape '\12' in 'a\12'"),
        ("a..b", "empty label in 'a..b'"),
        (".a", "empty label in '.a'"),
        ("x" * 64, f"label longer than 63 octets in '{'x' * 57}...'"),
        (r"\200x", r"label is not UTF-8 in '\200x'"),
        ('"www"', "invalid domain name '\"www\"': quoted"),
    ],
)
def test_name_invalid(name: str, message: str) -> None:
    assert error_of(HEADER + f"{name} A 192.0.2.1\n") == f"<text>:4: {message}"


def test_name_longer_than_255_octets() -> None:
    # Four labels of 62 octets take 252 octets in wire form, and example.com.
    # adds 13 more.
    name = ".".join(["x" * 62] * 4)
    assert error_of(HEADER + f"{name} A 192.0.2.1\n") == (
        f"<text>:4: name longer than 255 octets: '{name[:57]}...'"
    )


def test_name_of_255_octets_accepted() -> None:
    name = ".".join(["x" * 63] * 3 + ["x" * 61]) + "."
    zone = parse_zone_text(f"{name} 60 SOA ns. h. 1 2 3 4 5\n")
    assert len(zone.origin.label) == 4


# Lexing: parentheses, comments, quoted strings


def test_parentheses_span_lines() -> None:
    text = """\
$ORIGIN example.com.
$TTL 60
@ IN SOA ns1 hostmaster (
        2026120401 ; serial
        7200       ; refresh
        3600 1209600
        60 )       ; minimum
txt TXT ( "one"
          "two" )
"""
    zone = parse_zone_text(text)
    expected = SOA(
        "ns1.example.com.",
        "hostmaster.example.com.",
        (2026120401, 7200, 3600, 1209600, 60),
    )
    assert rdatas(zone, "example.com.", QTYPE.SOA) == (expected,)
    assert rdatas(zone, "txt.example.com.", QTYPE.TXT) == (TXT([b"one", b"two"]),)


def test_unclosed_parenthesis_error() -> None:
    assert error_of(HEADER + 'txt TXT ( "one"\n  "two"\n\n') == (
        "<text>:4: unclosed '(' opened here"
    )


def test_unexpected_close_parenthesis() -> None:
    assert error_of(HEADER + "www A 192.0.2.1 )\n") == "<text>:4: unexpected ')'"


def test_error_names_line_inside_parentheses() -> None:
    text = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h (\n 1\n 7200\n 1x\n 4 5 )\n"
    assert error_of(text) == "<text>:6: invalid SOA retry '1x'"


def test_comments_outside_quotes() -> None:
    zone = zone_of('; a whole line\nt TXT "not; a comment" ; a comment "x"\n')
    assert rdatas(zone, "t.example.com.", QTYPE.TXT) == (TXT([b"not; a comment"]),)


def test_quoted_string_escapes() -> None:
    zone = zone_of(r't TXT "say \"hi\"" "back\\slash" "\065\066" plain\;semi' + "\n")
    expected = TXT([b'say "hi"', b"back\\slash", b"AB", b"plain;semi"])
    assert rdatas(zone, "t.example.com.", QTYPE.TXT) == (expected,)


def test_quoted_string_keeps_utf8_octets() -> None:
    zone = zone_of('t TXT "café"\n')
    assert rdatas(zone, "t.example.com.", QTYPE.TXT) == (TXT(["café".encode()]),)


def test_unterminated_quote_error() -> None:
    assert error_of(HEADER + 't TXT "open\n') == "<text>:4: unterminated quoted string"


def test_backslash_at_end_of_line_error() -> None:
    assert (
        error_of(HEADER + "t TXT abc\\\n") == "<text>:4: backslash at the end of a line"
    )


def test_character_string_too_long() -> None:
    text = "x" * 256
    assert error_of(HEADER + f'{"t"} TXT "{text}"\n') == (
        f"<text>:4: character-string longer than 255 octets: '\"{text[:56]}...'"
    )


# Record types


@pytest.mark.parametrize(
    ("rdata_text", "rtype", "expected"),
    [
        ("A 192.0.2.1", QTYPE.A, A("192.0.2.1")),
        ("AAAA 2001:db8::1", QTYPE.AAAA, AAAA("2001:db8::1")),
        ("NS ns2.example.net.", QTYPE.NS, NS("ns2.example.net.")),
        ("CNAME www", QTYPE.CNAME, CNAME("www.example.com.")),
        ("PTR host.example.org.", QTYPE.PTR, PTR("host.example.org.")),
        ("MX 10 mail", QTYPE.MX, MX("mail.example.com.", 10)),
        ('TXT "v=spf1 -all" second', QTYPE.TXT, TXT([b"v=spf1 -all", b"second"])),
        ("SRV 0 5 5060 sip", QTYPE.SRV, SRV(0, 5, 5060, "sip.example.com.")),
        (
            "DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            QTYPE.DS,
            DS(60485, 5, 1, bytes.fromhex("2BB183AF5F22588179A53B0A98631FAD1A292118")),
        ),
        (
            "DNSKEY 256 3 8 AwEAAQ==",
            QTYPE.DNSKEY,
            DNSKEY(256, 3, 8, b"\x03\x01\x00\x01"),
        ),
        (
            "NSEC next A NS RRSIG TYPE65534",
            QTYPE.NSEC,
            NSEC("next.example.com.", ["A", "NS", "RRSIG", "TYPE65534"]),
        ),
        ('HINFO "PC" "Linux"', QTYPE.HINFO, HINFO(b"PC", b"Linux")),
    ],
)
def test_record_type(rdata_text: str, rtype: int, expected: RD) -> None:
    zone = zone_of(f"r {rdata_text}\n")
    assert rdatas(zone, "r.example.com.", rtype) == (expected,)


def test_soa_timers_with_units() -> None:
    text = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h.ostmaster 7 1h 15m 2w 1d\n"
    (soa,) = rdatas(parse_zone_text(text), "example.com.", QTYPE.SOA)
    assert soa.rname == DNSLabel("h.ostmaster.example.com.")
    assert soa.times == (7, 3600, 900, 1209600, 86400)


def test_soa_serial_rejects_units() -> None:
    text = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1h 1 2 3 4\n"
    assert error_of(text) == (
        "<text>:3: invalid SOA serial '1h': expected an integer 0..4294967295"
    )


def test_rrsig_time_forms() -> None:
    zone = zone_of(
        "www A 192.0.2.1\n"
        "www RRSIG A 8 3 1h 20180312000000 1519862400 12345 example.com. AAAA\n"
    )
    expiration = calendar.timegm((2018, 3, 12, 0, 0, 0))
    expected = RRSIG(
        QTYPE.A, 8, 3, 3600, expiration, 1519862400, 12345, "example.com.", b"\0\0\0"
    )
    assert rdatas(zone, "www.example.com.", QTYPE.RRSIG) == (expected,)


def test_rrsig_invalid_date() -> None:
    body = "www RRSIG A 8 3 60 20181312000000 1 1 example.com. AAAA\n"
    assert (
        error_of(HEADER + body) == "<text>:4: invalid RRSIG expiration '20181312000000'"
    )


def test_base64_and_hex_split_over_tokens() -> None:
    key = bytes(range(40))
    encoded = base64.b64encode(key).decode()
    zone = zone_of(
        f"k DNSKEY 257 3 8 ( {encoded[:10]}\n {encoded[10:30]} {encoded[30:]} )\n"
        "d DS 1 8 2 ABCD EF01 (\n 23 )\n"
    )
    assert rdatas(zone, "k.example.com.", QTYPE.DNSKEY) == (DNSKEY(257, 3, 8, key),)
    assert rdatas(zone, "d.example.com.", QTYPE.DS) == (
        DS(1, 8, 2, bytes.fromhex("ABCDEF0123")),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("www A 1.2.3", "invalid IPv4 address '1.2.3'"),
        ("www A 1.2.3.256", "invalid IPv4 address '1.2.3.256'"),
        ("www A 2001:db8::1", "invalid IPv4 address '2001:db8::1'"),
        ("www AAAA 192.0.2.1", "invalid IPv6 address '192.0.2.1'"),
        ("www AAAA fe80::1%eth0", "invalid IPv6 address 'fe80::1%eth0'"),
        ("www DS 1 8 2 XYZ", "invalid hex in the DS digest: 'XYZ'"),
        ("www DS 1 8 2 ABC", "invalid hex in the DS digest: 'ABC'"),
        ("www DNSKEY 257 3 8 A===", "invalid base64 in the DNSKEY public key: 'A==='"),
        ("www NSEC next FOO", "unknown record type 'FOO'"),
        ("www NSEC next", "NSEC rdata with no types is not supported"),
        ('www A "192.0.2.1"', "unexpected string '\"192.0.2.1\"' in A rdata"),
    ],
)
def test_invalid_rdata_field(body: str, message: str) -> None:
    assert error_of(HEADER + body + "\n") == f"<text>:4: {message}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "www MX 65536 mail",
            "invalid MX preference '65536': expected an integer 0..65535",
        ),
        ("www MX -1 mail", "invalid MX preference '-1': expected an integer 0..65535"),
        (
            "www SRV 1 2 70000 x",
            "invalid SRV port '70000': expected an integer 0..65535",
        ),
        ("www DS 1 256 2 AB", "invalid DS algorithm '256': expected an integer 0..255"),
        (
            "www DNSKEY 65536 3 8 AQ==",
            "invalid DNSKEY flags '65536': expected an integer 0..65535",
        ),
    ],
)
def test_integer_out_of_range(body: str, message: str) -> None:
    assert error_of(HEADER + body + "\n") == f"<text>:4: {message}"


def test_unknown_record_type() -> None:
    assert (
        error_of(HEADER + "www AA 192.0.2.1\n") == "<text>:4: unknown record type 'AA'"
    )


def test_missing_record_type() -> None:
    assert error_of(HEADER + "www 300 IN\n") == "<text>:4: missing record type"


def test_missing_rdata() -> None:
    assert error_of(HEADER + "www MX 10\n") == "<text>:4: missing rdata for MX"


def test_extra_rdata() -> None:
    assert error_of(HEADER + "www A 192.0.2.1 192.0.2.2\n") == (
        "<text>:4: unexpected '192.0.2.2' after the A rdata"
    )


def test_meta_type_rejected() -> None:
    assert error_of(HEADER + "www ANY \\# 0\n") == (
        "<text>:4: record type 'ANY' is not allowed in a zone"
    )


def test_type_without_text_form() -> None:
    assert error_of(HEADER + 'www CAA 0 issue "ca.example"\n') == (
        "<text>:4: CAA rdata is supported only in the RFC 3597 form '\\# length hex'"
    )


# RFC 3597 unknown types and classes


def test_generic_unknown_type() -> None:
    zone = zone_of("u TYPE65534 \\# 3 ABCD ef\nz TYPE65535 \\# 0\n")
    assert rdatas(zone, "u.example.com.", 65534) == (RD(b"\xab\xcd\xef"),)
    assert rdatas(zone, "z.example.com.", 65535) == (RD(b""),)


@pytest.mark.parametrize(
    ("body", "rtype", "expected"),
    [
        ("TYPE1 \\# 4 C0000201", QTYPE.A, A("192.0.2.1")),
        ("A \\# 4 C0000201", QTYPE.A, A("192.0.2.1")),
        ("MX \\# 8 000A 046D61696C 00", QTYPE.MX, MX("mail.", 10)),
        ("HINFO \\# 5 02 5043 01 78", QTYPE.HINFO, HINFO(b"PC", b"x")),
    ],
)
def test_generic_known_type(body: str, rtype: int, expected: RD) -> None:
    zone = zone_of(f"g {body}\n")
    assert rdatas(zone, "g.example.com.", rtype) == (expected,)


def test_generic_length_mismatch() -> None:
    assert error_of(HEADER + "g MX \\# 4 000A 00\n") == (
        "<text>:4: \\# rdata length 4 does not match the 3 octets given"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("g A \\# 3 C00002", "invalid A rdata in the \\# form"),
        # A pointer may only point back to an earlier octet.
        ("g MX \\# 4 000A C00C", "invalid MX rdata in the \\# form"),
        (
            "g A \\# 5 C000020100",
            "invalid A rdata in the \\# form: octets left over or names compressed",
        ),
        # The rname points back to the mname: compression, which RFC 3597
        # does not allow in this form.
        (
            "@ SOA \\# 25 016100 C000 00000001 00000002 00000003 00000004 00000005",
            "invalid SOA rdata in the \\# form: octets left over or names compressed",
        ),
    ],
)
def test_generic_invalid_for_type(body: str, message: str) -> None:
    text = "$ORIGIN example.com.\n$TTL 60\n" + body + "\n"
    assert error_of(text) == f"<text>:3: {message}"


@pytest.mark.parametrize("rclass", ["CH", "HS", "cs", "CLASS3", "CLASS255"])
def test_class_other_than_in_rejected(rclass: str) -> None:
    assert error_of(HEADER + f"www {rclass} A 192.0.2.1\n") == (
        "<text>:4: only class IN is supported in zone files"
    )


# $INCLUDE and other directives


def test_include_relative_path_and_origin() -> None:
    path = FIXTURES / "include-main.zone"
    origin, records = read_records(str(path))
    assert origin == DNSLabel("example.com.")
    by_name = {str(r.name): r for r in records}
    www = by_name["www.sub.example.com."]
    assert www.path == str(FIXTURES / "hosts" / "sub.zone")
    assert www.line == 2
    assert "deep.inner.sub.example.com." in by_name
    # The $ORIGIN inside the included file ends with it.
    assert by_name["after.example.com."].line == 9


def test_include_loop_error() -> None:
    with pytest.raises(ZoneFileError) as caught:
        load_zone(str(FIXTURES / "loop-a.zone"))
    loop_b = FIXTURES / "loop-b.zone"
    assert str(caught.value) == (
        f"{loop_b}:2: include loop: 'loop-a.zone' is already being read"
    )


def write_include_chain(tmp_path: Path, includes: int) -> Path:
    """Write zone files 0..includes, each including the next one."""
    for level in range(includes + 1):
        lines = [f"host{level} A 192.0.2.{level}"]
        if level == 0:
            lines = [HEADER.rstrip("\n"), *lines]
        if level < includes:
            lines.append(f"$INCLUDE level{level + 1}.zone")
        (tmp_path / f"level{level}.zone").write_text("\n".join(lines) + "\n")
    return tmp_path / "level0.zone"


def test_include_depth_16_accepted(tmp_path: Path) -> None:
    zone = load_zone(str(write_include_chain(tmp_path, 16)))
    assert rdatas(zone, "host16.example.com.", QTYPE.A) == (A("192.0.2.16"),)


def test_include_depth_17_rejected(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError) as caught:
        load_zone(str(write_include_chain(tmp_path, 17)))
    assert str(caught.value) == (
        f"{tmp_path / 'level16.zone'}:2: $INCLUDE nested more than 16 deep"
    )


def test_include_missing_file() -> None:
    assert error_of(HEADER + "$INCLUDE no-such-file.zone\n") == (
        "<text>:4: cannot read include file 'no-such-file.zone': "
        "No such file or directory"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("$GENERATE 1-2 h$ A 192.0.2.$", "unknown directive '$GENERATE'"),
        ("$ORIGIN", "missing argument for $ORIGIN"),
        ("$ORIGIN a. b.", "unexpected 'b.' after $ORIGIN"),
        ("$INCLUDE a b c", "unexpected 'c' after $INCLUDE"),
        ("  $TTL 60", "directive '$TTL' must start its line"),
    ],
)
def test_directive_error(line: str, message: str) -> None:
    assert error_of(HEADER + line + "\n") == f"<text>:4: {message}"


def test_load_zone_unreadable_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_zone(str(tmp_path / "missing.zone"))


def test_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "x.zone"
    path.write_text(HEADER + "\n" * 10 + "www 1x A 192.0.2.1\n")
    with pytest.raises(ZoneFileError) as caught:
        load_zone(str(path))
    assert str(caught.value) == f"{path}:14: invalid TTL '1x'"
    assert caught.value.line == 14


# HINFO in dnslib


def test_hinfo_wire_round_trip() -> None:
    record = DNSRecord()
    rdata = HINFO(b"Intel x86", b"Linux")
    record.add_answer(RR("h.example.com.", QTYPE.HINFO, rdata=rdata, ttl=60))
    parsed = DNSRecord.parse(record.pack())
    assert isinstance(parsed.rr[0].rdata, HINFO)
    assert parsed.rr[0].rdata == rdata


def test_hinfo_parse_rejects_trailing_octets() -> None:
    with pytest.raises(DNSError):
        HINFO.parse(DNSBuffer(b"\x02PC\x01xZ"), 6)


def test_hinfo_repr_zone_format() -> None:
    zone = zone_of(r'h HINFO "Intel \"x86\"" "a\\b\007"' + "\n")
    (rdata,) = rdatas(zone, "h.example.com.", QTYPE.HINFO)
    assert rdata == HINFO(b'Intel "x86"', b"a\\b\x07")
    assert repr(rdata) == r'"Intel \"x86\"" "a\\b\007"'


# Random junk


JUNK_SEED = r"""$ORIGIN example.com.
$TTL 1h
@ IN SOA ns1 host\.master ( 1 1h 15m 1w 60 ) ; comment
  NS ns1
ns1 300 IN A 192.0.2.1
v6 IN 1d AAAA 2001:db8::1
t TXT "a \"q\" \065 ;" b
h HINFO "INTEL" "Linux"
s SRV 1 2 53 ns1
k DNSKEY 257 3 8 AwEA AQ==
sig RRSIG A 8 2 300 20180312000000 1520812800 1 example.com. AAAA
n NSEC a.example.com. A NS TYPE65534
u TYPE65534 \# 3 010203
g MX \# 7 000A 03616263 00
e\046x\.y PTR @
"""
JUNK_CHARACTERS = ' \t\n;()"\\.@$0123456789abcdefxyzINAMXTSOPHCRGDK#:/+=%é\x00\udcff'


def mutate(rng: random.Random, text: str) -> str:
    characters = list(text)
    for _ in range(rng.randrange(1, 6)):
        position = rng.randrange(len(characters))
        choice = rng.random()
        if choice < 0.4:
            characters.insert(position, rng.choice(JUNK_CHARACTERS))
        elif choice < 0.7:
            del characters[position]
        else:
            characters[position] = rng.choice(JUNK_CHARACTERS)
    return "".join(characters)


def test_junk_raises_only_zone_file_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    rng = random.Random(7)
    loaded = 0
    for _ in range(3000):
        text = mutate(rng, JUNK_SEED)
        try:
            zone = parse_zone_text(text)
        except ZoneFileError:
            continue
        loaded += 1
        # Every record read must also survive dnslib's encoder and decoder.
        for rrsets in zone.nodes.values():
            for rrset in rrsets.values():
                message = DNSRecord()
                for rr in rrset.to_rrs():
                    message.add_answer(rr)
                assert DNSRecord.parse(message.pack()).rr == message.rr
    assert loaded > 100


# dnspython as an independent oracle


Fact = tuple[NameKey, int, int, bytes]


def our_facts(zone: Zone) -> set[Fact]:
    """(owner, TTL, type, canonical rdata) of every record, via dnslib's wire."""
    facts: set[Fact] = set()
    for key, rrsets in zone.nodes.items():
        for rtype, rrset in rrsets.items():
            for rdata in rrset.rdatas:
                buffer = DNSBuffer()
                rdata.pack(buffer)
                wire = bytes(buffer.data)
                parsed = dns.rdata.from_wire(
                    dns.rdataclass.IN,
                    dns.rdatatype.RdataType(rtype),
                    wire,
                    0,
                    len(wire),
                )
                facts.add((key, rrset.ttl, rtype, parsed.to_digestable()))
    return facts


def dnspython_facts(zone: dns.zone.Zone) -> set[Fact]:
    facts: set[Fact] = set()
    for name, node in zone.nodes.items():
        key = tuple(label.lower() for label in name.labels[:-1])
        for rdataset in node:
            for rdata in rdataset:
                facts.add((key, rdataset.ttl, rdataset.rdtype, rdata.to_digestable()))
    return facts


def test_root_zone_matches_dnspython() -> None:
    started = time.perf_counter()
    zone = load_zone(str(ROOT_ZONE))
    print(f"root zone loaded in {time.perf_counter() - started:.2f} s")
    oracle = dns.zone.from_file(str(ROOT_ZONE), ".", relativize=False)

    ours = our_facts(zone)
    theirs = dnspython_facts(oracle)
    assert zone.record_count == 19597
    assert len(theirs) == 19597
    assert ours - theirs == set()
    assert theirs - ours == set()


def zone_files() -> list[object]:
    paths = sorted((REPO / "zones").glob("*.zone"))
    if not paths:
        reason = "zones/ holds no *.zone files yet"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(path, id=path.name) for path in paths]


@pytest.mark.parametrize("path", zone_files())
def test_zone_file_matches_dnspython(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = load_zone(str(path))
    # dnspython looks up $INCLUDE files from the working directory.
    monkeypatch.chdir(path.parent)
    oracle = dns.zone.from_file(path.name, None, relativize=False, check_origin=False)

    assert oracle.origin is not None
    assert zone.origin == DNSLabel(oracle.origin.to_text())
    ours = our_facts(zone)
    theirs = dnspython_facts(oracle)
    assert ours - theirs == set()
    assert theirs - ours == set()


def test_rdata_over_65535_octets_rejected() -> None:
    strings = " ".join(['"' + "x" * 200 + '"'] * 400)
    text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
    with pytest.raises(ZoneFileError) as error:
        parse_zone_text(text + f"a TXT {strings}\n", path="z")
    assert str(error.value) == "z:6: rdata of 80400 octets, over the maximum of 65535"
