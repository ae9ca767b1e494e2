"""Read RFC 1035 section 5 master files (zone files) into zones.

Reading runs in three steps. `_lex` splits the text into entries, one per
line or per group of lines joined by parentheses, each a list of tokens that
keep their line number and their backslash escapes. `_Reader` turns each
entry into a directive ($ORIGIN, $TTL, $INCLUDE) or a record, and carries the
origin, default TTL, class and owner from one entry to the next. `_Rdata`
then reads the rdata fields of one record into a dnslib RD object.

Every error is one ZoneFileError that names the file, the line of the bad
token and the token itself. dnslib's own zone parser (0.9.26) is not used,
because it reports no line numbers and misreads valid files. It rejects a
`1h` TTL and the `IN 300` order, gives TTL 0 to a record without one, splits
a label at `\\046`, and takes a relative $ORIGIN as absolute.
"""

from __future__ import annotations

import base64
import calendar
import ipaddress
import re
import struct
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

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

from .errors import ZoneFileError
from .names import ROOT
from .zone import CLASS_IN, Zone, ZoneRecord, build_zone

# RFC 2181 section 8: a TTL is 0 to 2147483647 seconds.
MAX_TTL = 2**31 - 1
MAX_UINT32 = 2**32 - 1
MAX_UINT16 = 2**16 - 1
MAX_UINT8 = 2**8 - 1
MAX_INCLUDE_DEPTH = 16


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


def load_zone(path: str, origin: str | None = None) -> Zone:
    """Read the zone file at `path` and build its zone.

    The zone's origin is `origin` when given (a name without a final dot is
    still taken as absolute), else the first $ORIGIN, else the owner of the
    first SOA record when that owner is absolute. Raises ZoneFileError for
    bad content (at line 0 for an invalid `origin`) and OSError when `path`
    itself cannot be read.
    """
    zone_origin, records = read_records(path, _origin_argument(origin, path))
    return build_zone(zone_origin, records, path)


def read_records(
    path: str, origin: DNSLabel | None = None
) -> tuple[DNSLabel, list[ZoneRecord]]:
    """Read the records of the zone file at `path`, following $INCLUDE.

    Returns the zone's origin, found as load_zone describes, and the records
    in file order.
    """
    return _Reader(origin).read(path, _read_text(Path(path)))


def parse_zone_text(text: str, origin: str | None = None, path: str = "<text>") -> Zone:
    """Build a zone from zone-file text, naming it `path` in errors.

    A relative $INCLUDE path is taken from the directory of `path`.
    """
    zone_origin, records = _Reader(_origin_argument(origin, path)).read(path, text)
    return build_zone(zone_origin, records, path)


def _read_text(path: Path) -> str:
    # Zone files are octets. surrogateescape keeps every byte that is not
    # UTF-8, so strings and labels get back exactly the octets of the file.
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _origin_argument(origin: str | None, path: str) -> DNSLabel | None:
    if origin is None:
        return None
    try:
        return _parse_name(_Token(origin, False, 0), ROOT)
    except _TokenError as error:
        raise ZoneFileError(path, 0, f"invalid origin argument: {error}") from None


class _TokenError(Exception):
    """A bad token, raised by the parsing helpers and located by the reader."""

    def __init__(self, token: _Token, message: str) -> None:
        super().__init__(message)
        self.token = token


class _Reader:
    """The state that carries from one entry to the next, across $INCLUDE.

    Only the origin is restored when an included file ends (RFC 1035
    section 5.1). $TTL, the last TTL, class and owner carry on as if the
    included text stood in place of the $INCLUDE line.
    """

    def __init__(self, origin: DNSLabel | None) -> None:
        self.zone_origin = origin
        self.records: list[ZoneRecord] = []
        self.default_ttl: int | None = None
        self.last_ttl: int | None = None
        self.last_class = CLASS_IN
        self.last_owner: DNSLabel | None = None
        self.open_files: list[Path] = []

    def read(self, path: str, text: str) -> tuple[DNSLabel, list[ZoneRecord]]:
        self._read_file(path, text, self.zone_origin)
        if self.zone_origin is None:
            raise ZoneFileError(
                path,
                1,
                "no origin: the file has no $ORIGIN and no SOA record with an "
                "absolute owner; add $ORIGIN or pass an origin",
            )
        return self.zone_origin, self.records

    def _read_file(self, path: str, text: str, origin: DNSLabel | None) -> None:
        self.open_files.append(Path(path).resolve())
        for entry in _lex(text, path):
            try:
                origin = self._read_entry(entry, path, origin)
            except _TokenError as error:
                raise ZoneFileError(path, error.token.line, str(error)) from None
        self.open_files.pop()

    def _read_entry(
        self, entry: _Entry, path: str, origin: DNSLabel | None
    ) -> DNSLabel | None:
        """Apply one entry and return the origin for the entries after it."""
        if origin is None:
            origin = self.zone_origin
        first = entry.tokens[0]
        if first.text.startswith("$") and not first.quoted:
            if entry.blank_owner:
                raise _TokenError(
                    first, f"directive {_show(first)} must start its line"
                )
            return self._directive(entry, path, origin)
        self.records.append(self._record(entry, path, origin))
        return origin

    def _directive(
        self, entry: _Entry, path: str, origin: DNSLabel | None
    ) -> DNSLabel | None:
        keyword = entry.tokens[0].text.upper()
        if keyword == "$ORIGIN":
            (name,) = _arguments(entry, 1, 1)
            # A relative $ORIGIN is relative to the current origin.
            origin = _parse_name(name, origin)
            if self.zone_origin is None:
                self.zone_origin = origin
        elif keyword == "$TTL":
            (ttl,) = _arguments(entry, 1, 1)
            self.default_ttl = _parse_ttl(ttl)
        elif keyword == "$INCLUDE":
            self._include(_arguments(entry, 1, 2), path, origin)
        else:
            raise _TokenError(
                entry.tokens[0], f"unknown directive {_show(entry.tokens[0])}"
            )
        return origin

    def _include(
        self, arguments: list[_Token], path: str, origin: DNSLabel | None
    ) -> None:
        file_token = arguments[0]
        if len(arguments) == 2:
            origin = _parse_name(arguments[1], origin)
        if len(self.open_files) > MAX_INCLUDE_DEPTH:
            raise _TokenError(
                file_token, f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"
            )
        name = _unescape(file_token).decode("utf-8", "surrogateescape")
        if "\0" in name:
            raise _TokenError(
                file_token, f"invalid include file name {_show(file_token)}"
            )
        target = Path(path).parent / name
        try:
            looped = target.resolve() in self.open_files
            text = "" if looped else _read_text(target)
        except (OSError, RuntimeError) as error:
            # Path.resolve raises RuntimeError on a symlink loop (Python 3.11).
            reason = getattr(error, "strerror", None) or str(error)
            message = f"cannot read include file {_show(file_token)}: {reason}"
            raise _TokenError(file_token, message) from None
        if looped:
            message = f"include loop: {_show(file_token)} is already being read"
            raise _TokenError(file_token, message)
        self._read_file(str(target), text, origin)

    def _record(self, entry: _Entry, path: str, origin: DNSLabel | None) -> ZoneRecord:
        tokens = entry.tokens
        owner = self._owner(entry, origin)
        ttl, rclass, index = _parse_ttl_and_class(tokens, 0 if entry.blank_owner else 1)
        if index == len(tokens):
            raise _TokenError(tokens[-1], "missing record type")
        rtype = _parse_record_type(tokens[index])
        if rtype == QTYPE.SOA and self.zone_origin is None:
            # With no origin argument and no $ORIGIN so far, the owner of the
            # first SOA names the zone. That owner is absolute, because a
            # relative one has already failed for lack of an origin.
            self.zone_origin = origin = owner
        rdata = _parse_rdata(rtype, tokens[index], tokens[index + 1 :], origin)
        ttl = self._resolve_ttl(ttl, tokens[0])
        rclass = self._resolve_class(rclass)
        self.last_owner = owner
        return ZoneRecord(owner, ttl, rclass, rtype, rdata, path, entry.line)

    def _owner(self, entry: _Entry, origin: DNSLabel | None) -> DNSLabel:
        # RFC 1035 section 5.1: a blank owner is the last stated owner.
        if not entry.blank_owner:
            return _parse_name(entry.tokens[0], origin)
        if self.last_owner is None:
            raise _TokenError(
                entry.tokens[0],
                "missing owner name: no previous record to take it from",
            )
        return self.last_owner

    def _resolve_ttl(self, ttl: int | None, token: _Token) -> int:
        # RFC 2308 section 4: a record without a TTL takes the $TTL value.
        # Without $TTL it takes the previous record's TTL (RFC 1035 5.1).
        if ttl is None:
            ttl = self.default_ttl
        if ttl is None:
            ttl = self.last_ttl
        if ttl is None:
            raise _TokenError(token, "missing TTL and no $TTL")
        self.last_ttl = ttl
        return ttl

    def _resolve_class(self, rclass: int | None) -> int:
        # RFC 1035 section 5.1: an omitted class is the last stated class.
        if rclass is None:
            rclass = self.last_class
        self.last_class = rclass
        return rclass


def _arguments(entry: _Entry, minimum: int, maximum: int) -> list[_Token]:
    keyword = entry.tokens[0].text.upper()
    arguments = entry.tokens[1:]
    if len(arguments) < minimum:
        raise _TokenError(entry.tokens[-1], f"missing argument for {keyword}")
    if len(arguments) > maximum:
        extra = arguments[maximum]
        raise _TokenError(extra, f"unexpected {_show(extra)} after {keyword}")
    return arguments


# Lexing (RFC 1035 section 5.1). Every character matches one alternative.
# Only two reach "other": a quote that does not close on its line, and a
# backslash that ends a line.
_LEXEME = re.compile(
    r"""
    (?P<newline>\n)
    | (?P<space>[^\S\n]+)
    | (?P<comment>;[^\n]*)
    | "(?P<quoted>(?:[^"\\\n]|\\[^\n])*)"
    | (?P<word>(?:[^\s;()"\\]|\\[^\n])+)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)


class _Token(NamedTuple):
    """One field of an entry, with its escapes kept, and its line number."""

    text: str
    quoted: bool
    line: int


class _Entry(NamedTuple):
    """The tokens of one line, or of several lines joined by parentheses."""

    line: int
    blank_owner: bool
    tokens: list[_Token]


def _lex(text: str, path: str) -> Iterator[_Entry]:
    line = 1
    depth = 0
    open_line = 0
    blank_owner = False
    at_line_start = True
    tokens: list[_Token] = []
    for match in _LEXEME.finditer(text):
        kind = match.lastgroup
        if at_line_start and depth == 0:
            # A line that starts with white space has a blank owner.
            blank_owner = kind == "space"
        at_line_start = kind == "newline"
        if kind == "newline":
            if depth == 0 and tokens:
                yield _Entry(tokens[0].line, blank_owner, tokens)
                tokens = []
            line += 1
        elif kind == "word" or kind == "quoted":
            tokens.append(_Token(match.group(kind), kind == "quoted", line))
        elif kind == "open":
            open_line = line if depth == 0 else open_line
            depth += 1
        elif kind == "close":
            if depth == 0:
                raise ZoneFileError(path, line, "unexpected ')'")
            depth -= 1
        elif kind == "other":
            message = "unterminated quoted string"
            if match.group() == "\\":
                message = "backslash at the end of a line"
            raise ZoneFileError(path, line, message)
    if depth:
        raise ZoneFileError(path, open_line, "unclosed '(' opened here")
    if tokens:
        yield _Entry(tokens[0].line, blank_owner, tokens)


# Record headers: owner, then TTL and class in either order or omitted, then
# the type (RFC 1035 section 5.1).
_CLASS_CODES = {"IN": 1, "CS": 2, "CH": 3, "HS": 4}
_GENERIC_CLASS = re.compile(r"CLASS([0-9]{1,5})")
_GENERIC_TYPE = re.compile(r"TYPE([0-9]{1,5})")
_TYPE_CODES: dict[str, int] = dict(QTYPE.reverse)


def _parse_ttl_and_class(
    tokens: list[_Token], start: int
) -> tuple[int | None, int | None, int]:
    """Read the optional TTL and class, and return them with the type's index."""
    ttl: int | None = None
    rclass: int | None = None
    index = start
    while index < len(tokens) and index < start + 2:
        token = tokens[index]
        code = None if token.quoted else _class_code(token.text)
        if code is not None and rclass is None:
            rclass = code
        elif not token.quoted and "0" <= token.text[0] <= "9" and ttl is None:
            ttl = _parse_ttl(token)
        else:
            break
        index += 1
    return ttl, rclass, index


def _class_code(text: str) -> int | None:
    text = text.upper()
    if text in _CLASS_CODES:
        return _CLASS_CODES[text]
    match = _GENERIC_CLASS.fullmatch(text)
    if match and int(match[1]) <= MAX_UINT16:
        return int(match[1])
    return None


def _parse_type_code(token: _Token) -> int:
    """Return the number of a type mnemonic or RFC 3597 TYPEnnn."""
    text = token.text.upper()
    if not token.quoted:
        if text in _TYPE_CODES:
            return _TYPE_CODES[text]
        match = _GENERIC_TYPE.fullmatch(text)
        if match and int(match[1]) <= MAX_UINT16:
            return int(match[1])
    raise _TokenError(token, f"unknown record type {_show(token)}")


def _parse_record_type(token: _Token) -> int:
    code = _parse_type_code(token)
    # Type 0 is reserved, and OPT and 128-255 are meta and query types
    # (RFC 6895 section 3.1), which never appear as data.
    if code == 0 or code == QTYPE.OPT or 128 <= code <= 255:
        raise _TokenError(token, f"record type {_show(token)} is not allowed in a zone")
    return code


def _type_name(code: int) -> str:
    # dnslib 0.9.26 names both 53 and 55 "HIP", so fall back to TYPEnnn
    # whenever the mnemonic does not lead back to the same number.
    name = QTYPE.get(code)
    return name if _TYPE_CODES.get(name) == code else f"TYPE{code}"


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
    return rdata


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


# Fields: names, strings, numbers and times.
_INTEGER = re.compile(r"[0-9]{1,20}")
_DURATION = re.compile(r"[0-9]{1,20}|(?:[0-9]{1,20}[smhdw])+", re.IGNORECASE)
_DURATION_PART = re.compile(r"([0-9]+)([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIGNATURE_DATE = re.compile(r"[0-9]{14}")
_ESCAPE_DIGITS = re.compile(r"[0-9]{3}")


def _parse_name(token: _Token, origin: DNSLabel | None) -> DNSLabel:
    """Return the name `token` spells, with `origin` appended if relative."""
    if token.quoted:
        raise _TokenError(token, f"invalid domain name {_show(token)}: quoted")
    if token.text == "@":
        if origin is None:
            raise _no_origin(token)
        return origin
    if token.text == ".":
        return ROOT
    labels, absolute = _split_labels(token)
    if not absolute:
        if origin is None:
            raise _no_origin(token)
        labels.extend(origin.label)
    for label in labels:
        _check_label(token, label)
    # RFC 1035 section 2.3.4: 255 octets in wire form, length octets included.
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise _TokenError(token, f"name longer than 255 octets: {_show(token)}")
    return DNSLabel(labels)


def _check_label(token: _Token, label: bytes) -> None:
    if len(label) > 63:
        raise _TokenError(token, f"label longer than 63 octets in {_show(token)}")
    # NOTE: RFC 2181 section 11 allows any octets in a label. But dnslib
    # 0.9.26 rejects a label that is not UTF-8 when it decodes a message, so
    # dns-toy's own resolver could never read such a name back.
    try:
        label.decode("utf-8")
    except UnicodeDecodeError:
        raise _TokenError(token, f"label is not UTF-8 in {_show(token)}") from None


def _no_origin(token: _Token) -> _TokenError:
    return _TokenError(
        token,
        f"no origin: the name {_show(token)} is relative; "
        "add $ORIGIN or pass an origin",
    )


def _split_labels(token: _Token) -> tuple[list[bytes], bool]:
    """Split a name at its unescaped dots, and tell whether it is absolute."""
    text = token.text
    if "\\" in text:
        return _split_escaped_labels(token)
    absolute = text.endswith(".")
    parts = (text[:-1] if absolute else text).split(".")
    if "" in parts:
        raise _TokenError(token, f"empty label in {_show(token)}")
    return [_encode(token, part) for part in parts], absolute


def _split_escaped_labels(token: _Token) -> tuple[list[bytes], bool]:
    text = token.text
    labels: list[bytes] = []
    label = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == ".":
            if not label:
                raise _TokenError(token, f"empty label in {_show(token)}")
            labels.append(bytes(label))
            label = bytearray()
            index += 1
        elif char == "\\":
            octets, index = _read_escape(token, index)
            label += octets
        else:
            label += _encode(token, char)
            index += 1
    if label:
        labels.append(bytes(label))
        return labels, False
    return labels, True


def _unescape(token: _Token) -> bytes:
    """Return the octets of a string token, with its escapes decoded."""
    text = token.text
    output = bytearray()
    index = 0
    while (backslash := text.find("\\", index)) >= 0:
        output += _encode(token, text[index:backslash])
        octets, index = _read_escape(token, backslash)
        output += octets
    output += _encode(token, text[index:])
    return bytes(output)


def _read_escape(token: _Token, index: int) -> tuple[bytes, int]:
    """Decode the escape at `index`: \\DDD is a decimal octet, \\X is X."""
    text = token.text
    following = text[index + 1 : index + 2]
    if not following:
        raise _TokenError(token, f"backslash at the end of {_show(token)}")
    if "0" <= following <= "9":
        digits = text[index + 1 : index + 4]
        if not _ESCAPE_DIGITS.fullmatch(digits) or int(digits) > 255:
            raise _TokenError(token, f"invalid escape '\\{digits}' in {_show(token)}")
        return bytes([int(digits)]), index + 4
    return _encode(token, following), index + 2


def _encode(token: _Token, text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _TokenError(token, f"invalid character in {_show(token)}") from None


def _parse_integer(token: _Token, field: str, maximum: int) -> int:
    text = token.text
    if token.quoted or not _INTEGER.fullmatch(text) or int(text) > maximum:
        raise _TokenError(
            token, f"invalid {field} {_show(token)}: expected an integer 0..{maximum}"
        )
    return int(text)


def _parse_duration(token: _Token, field: str, maximum: int) -> int:
    """Read seconds, written as an integer or with units: 1h30m, 2d, 1w."""
    text = token.text
    if token.quoted or not _DURATION.fullmatch(text):
        raise _TokenError(token, f"invalid {field} {_show(token)}")
    if text.isdecimal():
        seconds = int(text)
    else:
        parts = _DURATION_PART.findall(text)
        seconds = sum(int(count) * _UNIT_SECONDS[unit.lower()] for count, unit in parts)
    if seconds > maximum:
        raise _TokenError(
            token, f"invalid {field} {_show(token)}: more than {maximum} seconds"
        )
    return seconds


def _parse_ttl(token: _Token) -> int:
    return _parse_duration(token, "TTL", MAX_TTL)


def _parse_signature_time(token: _Token, field: str) -> int:
    """Read an RRSIG time: YYYYMMDDHHmmSS in UTC or seconds (RFC 4034 3.2)."""
    text = token.text
    if not _SIGNATURE_DATE.fullmatch(text):
        return _parse_integer(token, field, MAX_UINT32)
    try:
        moment = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
        )
    except ValueError:
        raise _TokenError(token, f"invalid {field} {_show(token)}") from None
    seconds = calendar.timegm(moment.utctimetuple())
    if not 0 <= seconds <= MAX_UINT32:
        raise _TokenError(token, f"invalid {field} {_show(token)}: out of range")
    return seconds


def _show(token: _Token) -> str:
    """Quote a token for an error message, shortened and printable."""
    text = f'"{token.text}"' if token.quoted else token.text
    if len(text) > 60:
        text = text[:57] + "..."
    return "'" + text.encode("utf-8", "backslashreplace").decode("utf-8") + "'"
