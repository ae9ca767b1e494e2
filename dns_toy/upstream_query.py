"""Queries the resolver sends to name servers.

Every query gets a random ID, so that a forged reply has to guess it
(RFC 5452), and RD=0, because the resolver follows referrals
itself. With case randomisation (draft-vixie-dnsext-dns0x20) the letters
of the query name also get a random case. Servers echo the question as
sent, so a forger must guess one more bit per letter, and the transport
compares the echoed name case-sensitively.
"""

import secrets

from dnslib import CLASS, EDNS0, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

# The EDNS UDP payload size that DNS Flag Day 2020 recommends.
EDNS_UDP_SIZE = 1232

# Setting bit 0x20 turns an ASCII upper-case letter into lower case.
_CASE_BIT = 0x20


def make_query(name: DNSLabel, qtype: int, *, randomise_case: bool) -> DNSRecord:
    """Build the query for `name` `qtype` of class IN, with EDNS."""
    sent = randomised_case(name) if randomise_case else name
    header = DNSHeader(id=secrets.randbits(16), rd=0)
    query = DNSRecord(header, q=DNSQuestion(sent, qtype, CLASS.IN))
    query.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
    return query


def randomised_case(name: DNSLabel) -> DNSLabel:
    """Return `name` with each ASCII letter in a random case."""
    return DNSLabel(tuple(_randomise_label(label) for label in name.label))


def _randomise_label(label: bytes) -> bytes:
    bits = secrets.randbits(max(len(label), 1))
    out = bytearray(label)
    for index, byte in enumerate(out):
        if chr(byte).isascii() and chr(byte).isalpha():
            lower = byte | _CASE_BIT
            out[index] = lower ^ (_CASE_BIT if (bits >> index) & 1 else 0)
    return bytes(out)
