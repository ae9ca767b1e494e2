"""Structural checks on raw queries (RFC 1035 section 2.3.4, RFC 6891)."""

import struct

import pytest
from dnslib import EDNS0, DNSRecord

from dns_toy.querycheck import MalformedMessage, check_query
from dns_toy.wire import describe_message

QUESTION = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
OPT = b"\x00\x00\x29\x04\xd0" + bytes(6)  # root owner, OPT, size 1232, no rdata


def header(answers: int = 0, authority: int = 0, additional: int = 0) -> bytes:
    return struct.pack("!6H", 0x1234, 0x0100, 1, answers, authority, additional)


def test_plain_query_passes() -> None:
    check_query(header() + QUESTION)


def test_edns_query_passes() -> None:
    query = DNSRecord.question("www.example.test")
    query.add_ar(EDNS0(udp_len=1232))
    check_query(query.pack())


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", "unknown label type 0x40"),
        (header() + b"\x3fa" * 1, "name runs past the end of the message"),
        (header() + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", "name over 255 octets"),
        (header() + b"\xc0\x0c\x00\x01\x00\x01", "compression pointer does not point back"),
        (header(authority=1, additional=1) + QUESTION + OPT + OPT, "OPT record outside the additional section"),
        (header(additional=2) + QUESTION + OPT + OPT, "more than one OPT record"),
        (header(additional=1) + QUESTION + b"\x01a" + OPT, "OPT record owner is not the root name"),
        (header(additional=1) + QUESTION + OPT[:-2] + b"\x00\x01\x00", "EDNS option header cut short"),
        (header(additional=1) + QUESTION + OPT[:-2] + b"\x00\x08\x00\x01\x00\x09abcd", "EDNS option runs past the OPT rdata"),
    ],
    ids=["label_64", "name_cut_short", "name_256", "pointer_forward", "opt_in_authority",
         "two_opt", "opt_owner", "option_header_cut", "option_too_long"],
)
def test_malformed_query_rejected(message: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage) as error:
        check_query(message)
    assert str(error.value) == reason


def test_query_log_escapes_control_octets() -> None:
    name = b"\x0fx\nforged.entry\\"
    message = header() + name + b"\x07example\x04test\x00\x00\x01\x00\x01"
    qname, _, _, _ = describe_message(message)
    assert qname == "x\\010forged\\046entry\\092.example.test."
    assert "\n" not in qname
