"""Wire-format helpers shared by servers: size limits, truncation, FORMERR
and the EDNS OPT record (RFC 6891).

Truncation follows RFC 2181 section 9: records are dropped from the end of
the additional section first, and TC=1 is set only when required data did
not fit. In a referral, glue for name servers inside the delegated zone is
required (RFC 9471), so dropping any of it sets TC=1 as well.
"""

import struct

from dnslib import EDNS0, OPCODE, QTYPE, RCODE, RR, DNSHeader, DNSRecord

from .names import is_subdomain

PLAIN_UDP_SIZE = 512
MAX_MESSAGE_SIZE = 65535
HEADER = struct.Struct("!HHHHHH")
FLAG_QR = 0x8000
FLAG_TC = 0x0200


def max_udp_size(query: DNSRecord, server_size: int) -> int:
    """Return the UDP payload size for the reply: the smaller of both sides'
    EDNS sizes (RFC 6891 section 6.2.5), never below 512."""
    for record in query.ar:
        if record.rtype == QTYPE.OPT:
            return max(PLAIN_UDP_SIZE, min(record.rclass, server_size))
    return PLAIN_UDP_SIZE


def find_opt_records(message: DNSRecord) -> list[RR]:
    """Return the OPT pseudo-records in the additional section of `message`."""
    return [rr for rr in message.ar if rr.rtype == QTYPE.OPT]


def edns_version(opt: RR) -> int:
    """Return the EDNS version of an OPT record: bits 16-23 of its TTL field
    (RFC 6891 section 6.1.3)."""
    return int(opt.ttl >> 16) & 0xFF


def reject_invalid_opt(
    reply: DNSRecord, opt_records: list[RR], udp_size: int
) -> DNSRecord | None:
    """Make `reply` the error that the query's OPT records call for.

    Returns `reply` as FORMERR for more than one OPT record (RFC 6891
    section 6.1.1) or as BADVERS for an EDNS version above 0, and None when
    the OPT records are valid. `udp_size` goes into the OPT record of a
    BADVERS reply.
    """
    if len(opt_records) > 1:
        reply.header.rcode = RCODE.FORMERR
        return reply
    if opt_records and edns_version(opt_records[0]) > 0:
        return _badvers(reply, udp_size)
    return None


def add_opt_record(
    reply: DNSRecord, query_opt_records: list[RR], udp_size: int
) -> None:
    """Add an OPT record with payload size `udp_size` to `reply` when the
    query had one."""
    # RFC 6891 section 7: a reply carries an OPT record only when the query did.
    if query_opt_records:
        reply.add_ar(EDNS0(udp_len=udp_size))


def start_reply(query: DNSRecord, *, ra: bool = False) -> DNSRecord:
    """Start the reply to `query`: QR=1, the query's ID, opcode, RD and CD.

    The question is echoed exactly, case included, for resolvers that
    randomise the case of query names (draft-vixie-dnsext-dns0x20).
    """
    header = DNSHeader(
        id=query.header.id,
        qr=1,
        opcode=query.header.opcode,
        rd=query.header.rd,
        ra=int(ra),
        cd=query.header.cd,
    )
    return DNSRecord(header, questions=list(query.questions))


def reject_unanswerable(
    query: DNSRecord, reply: DNSRecord, opt_records: list[RR], udp_size: int
) -> DNSRecord | None:
    """Make `reply` the error for a query that cannot be answered at all.

    Returns `reply` as `reject_invalid_opt` makes it, as NOTIMP for an
    opcode other than QUERY, or as FORMERR for other than one question.
    Returns None when the query can be answered.
    """
    rejected = reject_invalid_opt(reply, opt_records, udp_size)
    if rejected is not None:
        return rejected
    if query.header.opcode != OPCODE.QUERY:
        return finish_reply(reply, RCODE.NOTIMP, opt_records, udp_size)
    if len(query.questions) != 1:
        return finish_reply(reply, RCODE.FORMERR, opt_records, udp_size)
    return None


def finish_reply(
    reply: DNSRecord, rcode: int, query_opt_records: list[RR], udp_size: int
) -> DNSRecord:
    """Set the rcode of `reply` and add an OPT record when the query had one."""
    reply.header.rcode = rcode
    add_opt_record(reply, query_opt_records, udp_size)
    return reply


def _badvers(reply: DNSRecord, udp_size: int) -> DNSRecord:
    # BADVERS is extended rcode 16: the OPT record carries its upper eight
    # bits (value 1) and the header's rcode stays 0 (RFC 6891 section 6.1.3).
    reply.header.rcode = 0
    reply.add_ar(EDNS0(udp_len=udp_size, ext_rcode=1))
    return reply


def encode_response(
    response: DNSRecord, query: DNSRecord, transport: str, server_size: int = 1232
) -> bytes:
    """Pack `response`, truncating it to fit when sent over UDP."""
    data = response.pack()
    limit = MAX_MESSAGE_SIZE if transport == "tcp" else max_udp_size(query, server_size)
    if len(data) <= limit:
        return data
    return _truncate(response, limit)


def _truncate(response: DNSRecord, limit: int) -> bytes:
    options = [rr for rr in response.ar if rr.rtype == QTYPE.OPT]
    extra = [rr for rr in response.ar if rr.rtype != QTYPE.OPT]
    required = _in_domain_glue(response)
    # Drop optional records before required glue: the list is cut from the end.
    extra.sort(key=lambda rr: id(rr) not in required)
    lost_required = False
    while extra:
        dropped = extra.pop()
        lost_required = lost_required or id(dropped) in required
        response.ar = extra + options
        data = response.pack()
        if len(data) <= limit:
            return _with_tc(data) if lost_required else data
    return _header_only(response)


def _in_domain_glue(response: DNSRecord) -> set[int]:
    """Return the ids of glue records whose owner is inside the delegated
    zone: RFC 9471 requires TC=1 when any of them does not fit."""
    if response.rr:
        return set()
    cuts = [rr.rname for rr in response.auth if rr.rtype == QTYPE.NS]
    return {
        id(rr)
        for rr in response.ar
        if rr.rtype in (QTYPE.A, QTYPE.AAAA)
        and any(is_subdomain(rr.rname, cut) for cut in cuts)
    }


def _header_only(response: DNSRecord) -> bytes:
    options = [rr for rr in response.ar if rr.rtype == QTYPE.OPT]
    response.rr = []
    response.auth = []
    response.ar = options
    return _with_tc(response.pack())


def _with_tc(data: bytes) -> bytes:
    flags = struct.unpack_from("!H", data, 2)[0] | FLAG_TC
    return data[:2] + struct.pack("!H", flags) + data[4:]


def formerr_for(data: bytes) -> bytes | None:
    """Return a FORMERR reply to an undecodable query, or None when even the
    header is unreadable (too short) or the message is itself a reply."""
    if len(data) < HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    if flags & FLAG_QR:
        return None
    opcode_and_rd = flags & 0x7900
    reply_flags = FLAG_QR | opcode_and_rd | RCODE.FORMERR
    return HEADER.pack(ident, reply_flags, 0, 0, 0, 0)


def describe_message(data: bytes) -> tuple[str, str, str, str]:
    """Return (qname, qtype, rcode, flags) of a message for the query log,
    reading only the header and the first question."""
    if len(data) < HEADER.size:
        return ("-", "-", "-", "-")
    _, flags, qdcount = struct.unpack_from("!HHH", data)
    rcode = RCODE.get(flags & 0x000F, str(flags & 0x000F))
    names = {0x8000: "qr", 0x0400: "aa", 0x0200: "tc", 0x0100: "rd", 0x0080: "ra"}
    flag_text = ",".join(text for bit, text in names.items() if flags & bit) or "-"
    if qdcount == 0:
        return ("-", "-", str(rcode), flag_text)
    labels: list[str] = []
    offset = HEADER.size
    while offset < len(data):
        length = data[offset]
        if length == 0 or length > 63:
            break
        labels.append(_presentation(data[offset + 1 : offset + 1 + length]))
        offset += 1 + length
    offset += 1
    qtype = "-"
    if offset + 2 <= len(data):
        number = struct.unpack_from("!H", data, offset)[0]
        qtype = str(QTYPE.get(number, f"TYPE{number}"))
    return (".".join(labels) + ".", qtype, str(rcode), flag_text)


def _presentation(label: bytes) -> str:
    """Return a label in zone-file text: \\DDD for each octet that is not
    printable ASCII and for dots and backslashes, so a query name cannot
    forge query-log lines."""
    return "".join(
        chr(octet)
        if 0x21 <= octet <= 0x7E and octet not in (0x2E, 0x5C)
        else f"\\{octet:03d}"
        for octet in label
    )
