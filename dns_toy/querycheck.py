"""Structural checks on a query's wire form that dnslib does not make.

dnslib decodes names with labels over 63 octets, OPT records in any
section and OPT records with a root-less owner, and it fails only later,
when a reply is packed. These checks walk the raw message once, so a
server can answer FORMERR before any DNS logic runs.
"""

import struct

from dnslib import QTYPE, DNSError, DNSRecord

MAX_LABEL = 63
MAX_NAME = 255
POINTER_MASK = 0xC0
ADDITIONAL = 3  # section index: question=0 is walked apart; 1-3 hold RRs


class MalformedMessage(Exception):
    """A message that breaks RFC 1035 or RFC 6891 structure rules."""


def check_query(data: bytes) -> None:
    """Raise MalformedMessage when names or OPT records of `data` break
    the rules of RFC 1035 section 2.3.4 or RFC 6891 section 6.1."""
    if len(data) < 12:
        raise MalformedMessage("message shorter than its 12-octet header")
    counts = struct.unpack_from("!HHHH", data, 4)
    offset = 12
    for _ in range(counts[0]):
        offset = _skip_name(data, offset) + 4
    opt_seen = False
    for section, count in enumerate(counts[1:], start=1):
        for _ in range(count):
            start = offset
            offset = _skip_name(data, offset)
            if offset + 10 > len(data):
                raise MalformedMessage("record header cut short")
            rtype, _, _, length = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            if offset + length > len(data):
                raise MalformedMessage("rdata runs past the end of the message")
            if rtype == QTYPE.OPT:
                _check_opt(data, start, offset, length, section, opt_seen)
                opt_seen = True
            offset += length


def _check_opt(
    data: bytes, owner: int, rdata: int, length: int, section: int, seen: bool
) -> None:
    # RFC 6891 section 6.1.1: one OPT at most, in the additional section,
    # owned by the root name, its rdata a sequence of whole options.
    if section != ADDITIONAL:
        raise MalformedMessage("OPT record outside the additional section")
    if seen:
        raise MalformedMessage("more than one OPT record")
    if data[owner] != 0:
        raise MalformedMessage("OPT record owner is not the root name")
    offset, end = rdata, rdata + length
    while offset < end:
        if offset + 4 > end:
            raise MalformedMessage("EDNS option header cut short")
        (option_length,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + option_length
        if offset > end:
            raise MalformedMessage("EDNS option runs past the OPT rdata")


def _skip_name(data: bytes, offset: int) -> int:
    """Return the offset after the name at `offset`, checking its lengths.

    Compression pointers are followed (to measure the name) only backwards,
    so a pointer loop cannot run forever.
    """
    total = 1
    position = offset
    end_of_name: int | None = None
    while True:
        if position >= len(data):
            raise MalformedMessage("name runs past the end of the message")
        length = data[position]
        if length & POINTER_MASK == POINTER_MASK:
            if position + 1 >= len(data):
                raise MalformedMessage("compression pointer cut short")
            target = struct.unpack_from("!H", data, position)[0] & 0x3FFF
            if end_of_name is None:
                end_of_name = position + 2
            if target >= position:
                raise MalformedMessage("compression pointer does not point back")
            position = target
            continue
        if length & POINTER_MASK:
            raise MalformedMessage(f"unknown label type {length:#04x}")
        if length == 0:
            return end_of_name if end_of_name is not None else position + 1
        if length > MAX_LABEL:
            raise MalformedMessage(f"label of {length} octets, over {MAX_LABEL}")
        total += length + 1
        if total > MAX_NAME:
            raise MalformedMessage(f"name over {MAX_NAME} octets")
        position += length + 1


def decode_query(data: bytes) -> DNSRecord:
    """Decode a query with dnslib after the structural checks; raise
    MalformedMessage for anything that deserves FORMERR."""
    check_query(data)
    try:
        return DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, UnicodeError, struct.error) as exc:
        raise MalformedMessage(f"undecodable message: {exc}") from None
