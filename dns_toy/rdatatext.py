"""Read the rdata of one zone-file record into a dnslib RD object.

`_Rdata` is a cursor over the rdata tokens of one record. Each supported type
has a parser of its text form in `_RDATA_PARSERS`. Any type may also be
written in the RFC 3597 form `\\# length hex`, which is decoded with dnslib's
class for the type when dnslib has one.

dnslib 0.9 has no HINFO class, so this module defines one and registers it in
dnslib's RDMAP when it is imported.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
from collections.abc import Callable

import dnslib.dns
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
    RRSIG,
    SOA,
    SRV,
    TXT,
    A,
    DNSBuffer,
    DNSError,
    DNSLabel,
)
from dnslib.buffer import BufferError as WireBufferError
from dnslib.label import DNSLabelError

from .zonefields import (
    MAX_UINT8,
    MAX_UINT16,
    MAX_UINT32,
    _parse_duration,
    _parse_integer,
    _parse_name,
    _parse_signature_time,
    _parse_type_code,
    _type_name,
)
from .zonelexer import _show, _Token, _TokenError, _unescape

MAX_RDATA_LENGTH = 65535


class HINFO(RD):
    """HINFO rdata (RFC 1035 section 3.3.2): the host's CPU and OS.

    dnslib 0.9 has no HINFO class. Importing this module adds this one to
    dnslib's RDMAP, so dnslib also decodes HINFO records off the wire.
    """

    attrs = ("cpu", "os")

    def __init__(self, cpu: bytes, os: bytes) -> None:
        for value in (cpu, os):
            if len(value) > 255:
                raise DNSError(f"HINFO string longer than 255 octets: {value!r}")
        self.cpu = bytes(cpu)
        self.os = bytes(os)

    @classmethod
    def parse(cls, buffer: DNSBuffer, length: int) -> HINFO:
        end = buffer.offset + length
        try:
            cpu = _unpack_character_string(buffer)
            os = _unpack_character_string(buffer)
        except WireBufferError as error:
            raise DNSError(f"Error unpacking HINFO: {error}") from error
        if buffer.offset != end:
            raise DNSError(f"HINFO rdata of {length} octets is not two strings")
        return cls(cpu, os)

    def pack(self, buffer: DNSBuffer) -> None:
        for value in (self.cpu, self.os):
            buffer.pack("!B", len(value))
            buffer.append(value)

    def __repr__(self) -> str:
        return (
            f"{_format_character_string(self.cpu)} {_format_character_string(self.os)}"
        )


dnslib.dns.RDMAP["HINFO"] = HINFO


def _format_character_string(value: bytes) -> str:
    """Return `value` as a quoted zone-file string, \\DDD for unprintable octets."""
    parts = ['"']
    for octet in value:
        char = chr(octet)
        if char in '"\\':
            parts.append("\\" + char)
        elif 0x20 <= octet < 0x7F:
            parts.append(char)
        else:
            parts.append(f"\\{octet:03d}")
    parts.append('"')
    return "".join(parts)


def _unpack_character_string(buffer: DNSBuffer) -> bytes:
    (length,) = buffer.unpack("!B")
    return bytes(buffer.get(length))


class _Rdata:
    """A cursor over the rdata tokens of one record."""

    def __init__(
        self,
        tokens: list[_Token],
        rtype: int,
        type_token: _Token,
        origin: DNSLabel | None,
    ) -> None:
        self.tokens = tokens
        self.index = 0
        self.type_name = _type_name(rtype)
        self.type_token = type_token
        self.origin = origin

    def at_end(self) -> bool:
        return self.index == len(self.tokens)

    def next(self) -> _Token:
        if self.at_end():
            last = self.tokens[-1] if self.tokens else self.type_token
            raise _TokenError(last, f"missing rdata for {self.type_name}")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def word(self) -> _Token:
        token = self.next()
        if token.quoted:
            raise _TokenError(
                token, f"unexpected string {_show(token)} in {self.type_name} rdata"
            )
        return token

    def finish(self) -> None:
        if not self.at_end():
            extra = self.tokens[self.index]
            raise _TokenError(
                extra, f"unexpected {_show(extra)} after the {self.type_name} rdata"
            )

    def name(self) -> DNSLabel:
        return _parse_name(self.next(), self.origin)

    def integer(self, field: str, maximum: int) -> int:
        return _parse_integer(self.word(), f"{self.type_name} {field}", maximum)

    def duration(self, field: str, maximum: int) -> int:
        return _parse_duration(self.word(), f"{self.type_name} {field}", maximum)

    def character_string(self) -> bytes:
        token = self.next()
        octets = _unescape(token)
        if len(octets) > 255:
            raise _TokenError(
                token, f"character-string longer than 255 octets: {_show(token)}"
            )
        return octets

    def joined_words(self) -> tuple[_Token, str]:
        """Join the remaining words, because base64 and hex may be split by spaces."""
        first = self.word()
        parts = [first.text]
        while not self.at_end():
            parts.append(self.word().text)
        return first, "".join(parts)

    def base64(self, field: str) -> bytes:
        first, text = self.joined_words()
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            message = f"invalid base64 in the {self.type_name} {field}: {_show(first)}"
            raise _TokenError(first, message) from None

    def hex(self, field: str) -> bytes:
        first, text = self.joined_words()
        try:
            return bytes.fromhex(text)
        except ValueError:
            message = f"invalid hex in the {self.type_name} {field}: {_show(first)}"
            raise _TokenError(first, message) from None


def _parse_rdata(
    rtype: int, type_token: _Token, tokens: list[_Token], origin: DNSLabel | None
) -> RD:
    fields = _Rdata(tokens, rtype, type_token, origin)
    if tokens and tokens[0].text == "\\#" and not tokens[0].quoted:
        return _parse_generic_rdata(fields, rtype)
    parser = _RDATA_PARSERS.get(rtype)
    if parser is None:
        raise _TokenError(
            type_token,
            f"{fields.type_name} rdata is supported only in the RFC 3597 form "
            "'\\# length hex'",
        )
    rdata = parser(fields)
    fields.finish()
    _check_rdata_length(rdata, type_token)
    return rdata


def _check_rdata_length(rdata: RD, type_token: _Token) -> None:
    # RDLENGTH is a 16-bit field (RFC 1035 section 3.2.1), so longer rdata
    # could never be sent.
    length = len(_pack_uncompressed(rdata))
    if length > MAX_RDATA_LENGTH:
        raise _TokenError(
            type_token, f"rdata of {length} octets, over the maximum of 65535"
        )


def _parse_generic_rdata(fields: _Rdata, rtype: int) -> RD:
    """Read RFC 3597 `\\# length hex` rdata, decoding it for known types."""
    fields.word()
    length_token = fields.word()
    length = _parse_integer(length_token, "\\# rdata length", MAX_UINT16)
    data = b"" if fields.at_end() else fields.hex("\\# rdata")
    if len(data) != length:
        raise _TokenError(
            length_token,
            f"\\# rdata length {length} does not match the {len(data)} octets given",
        )
    rd_class = dnslib.dns.RDMAP.get(QTYPE.get(rtype), RD)
    if rd_class is RD:
        return RD(data)
    return _decode_wire_rdata(rd_class, data, fields.type_name, length_token)


# dnslib 0.9.26's parsers report malformed data with DNSError, but also with
# IndexError (a short NSEC bitmap) and UnicodeDecodeError (NAPTR strings).
_DNSLIB_DECODE_ERRORS = (
    DNSError,
    DNSLabelError,
    WireBufferError,
    IndexError,
    ValueError,
    struct.error,
)


def _decode_wire_rdata(
    rd_class: type[RD], data: bytes, type_name: str, token: _Token
) -> RD:
    message = f"invalid {type_name} rdata in the \\# form"
    try:
        rdata = rd_class.parse(DNSBuffer(data), len(data))
        packed = _pack_uncompressed(rdata)
    except _DNSLIB_DECODE_ERRORS:
        raise _TokenError(token, message) from None
    # Re-encoding catches trailing octets and compressed names, which
    # RFC 3597 section 4 does not allow in this form.
    if packed != data:
        raise _TokenError(token, f"{message}: octets left over or names compressed")
    return rdata


class _UncompressedBuffer(DNSBuffer):
    """A DNSBuffer that writes every name in full, never as a pointer."""

    def encode_name(self, name: DNSLabel) -> None:
        self.encode_name_nocompress(name)


def _pack_uncompressed(rdata: RD) -> bytes:
    buffer = _UncompressedBuffer()
    rdata.pack(buffer)
    return bytes(buffer.data)


# Rdata in text form, one parser per type (RFC 1035 section 3.3, RFC 3596,
# RFC 2782, RFC 4034).


def _parse_a(fields: _Rdata) -> RD:
    token = fields.word()
    try:
        address = ipaddress.IPv4Address(token.text)
    except ValueError:
        raise _TokenError(token, f"invalid IPv4 address {_show(token)}") from None
    return A(tuple(address.packed))


def _parse_aaaa(fields: _Rdata) -> RD:
    token = fields.word()
    try:
        if "%" in token.text:
            raise ValueError("a zone scope is not part of an address")
        address = ipaddress.IPv6Address(token.text)
    except ValueError:
        raise _TokenError(token, f"invalid IPv6 address {_show(token)}") from None
    return AAAA(tuple(address.packed))


def _parse_soa(fields: _Rdata) -> RD:
    mname = fields.name()
    rname = fields.name()
    serial = fields.integer("serial", MAX_UINT32)
    timers = [
        fields.duration(timer, MAX_UINT32)
        for timer in ("refresh", "retry", "expire", "minimum")
    ]
    return SOA(mname, rname, (serial, *timers))


def _parse_mx(fields: _Rdata) -> RD:
    preference = fields.integer("preference", MAX_UINT16)
    return MX(fields.name(), preference)


def _parse_txt(fields: _Rdata) -> RD:
    strings = [fields.character_string()]
    while not fields.at_end():
        strings.append(fields.character_string())
    return TXT(strings)


def _parse_hinfo(fields: _Rdata) -> RD:
    cpu = fields.character_string()
    return HINFO(cpu, fields.character_string())


def _parse_srv(fields: _Rdata) -> RD:
    priority = fields.integer("priority", MAX_UINT16)
    weight = fields.integer("weight", MAX_UINT16)
    port = fields.integer("port", MAX_UINT16)
    return SRV(priority, weight, port, fields.name())


def _parse_ds(fields: _Rdata) -> RD:
    key_tag = fields.integer("key tag", MAX_UINT16)
    algorithm = fields.integer("algorithm", MAX_UINT8)
    digest_type = fields.integer("digest type", MAX_UINT8)
    return DS(key_tag, algorithm, digest_type, fields.hex("digest"))


def _parse_dnskey(fields: _Rdata) -> RD:
    flags = fields.integer("flags", MAX_UINT16)
    protocol = fields.integer("protocol", MAX_UINT8)
    algorithm = fields.integer("algorithm", MAX_UINT8)
    return DNSKEY(flags, protocol, algorithm, fields.base64("public key"))


def _parse_rrsig(fields: _Rdata) -> RD:
    covered = _parse_type_code(fields.word())
    algorithm = fields.integer("algorithm", MAX_UINT8)
    labels = fields.integer("labels", MAX_UINT8)
    original_ttl = fields.duration("original TTL", MAX_UINT32)
    expiration = _parse_signature_time(fields.word(), "RRSIG expiration")
    inception = _parse_signature_time(fields.word(), "RRSIG inception")
    key_tag = fields.integer("key tag", MAX_UINT16)
    signer = fields.name()
    signature = fields.base64("signature")
    return RRSIG(
        covered,
        algorithm,
        labels,
        original_ttl,
        expiration,
        inception,
        key_tag,
        signer,
        signature,
    )


def _parse_nsec(fields: _Rdata) -> RD:
    next_token = fields.next()
    next_name = _parse_name(next_token, fields.origin)
    codes = set()
    while not fields.at_end():
        codes.add(_parse_type_code(fields.word()))
    if not codes:
        # dnslib 0.9.26 fails to encode an empty type bitmap.
        raise _TokenError(next_token, "NSEC rdata with no types is not supported")
    # Sorted, as decoding the type bitmap off the wire returns them, so that
    # equal NSEC records compare equal.
    return NSEC(next_name, [_type_name(code) for code in sorted(codes)])


def _parse_single_name(rd_class: type[RD]) -> Callable[[_Rdata], RD]:
    def parse(fields: _Rdata) -> RD:
        return rd_class(fields.name())

    return parse


_RDATA_PARSERS: dict[int, Callable[[_Rdata], RD]] = {
    QTYPE.A: _parse_a,
    QTYPE.NS: _parse_single_name(NS),
    QTYPE.CNAME: _parse_single_name(CNAME),
    QTYPE.SOA: _parse_soa,
    QTYPE.PTR: _parse_single_name(PTR),
    QTYPE.HINFO: _parse_hinfo,
    QTYPE.MX: _parse_mx,
    QTYPE.TXT: _parse_txt,
    QTYPE.AAAA: _parse_aaaa,
    QTYPE.SRV: _parse_srv,
    QTYPE.DS: _parse_ds,
    QTYPE.RRSIG: _parse_rrsig,
    QTYPE.NSEC: _parse_nsec,
    QTYPE.DNSKEY: _parse_dnskey,
}
