"""Read RFC 1035 section 5 master files (zone files) into zones.

Reading runs in three steps. `_lex` (in zonelexer) splits the text into
entries, one per line or per group of lines joined by parentheses, each a
list of tokens that keep their line number and their backslash escapes.
`_Reader` (in this module) turns each entry into a directive ($ORIGIN, $TTL,
$INCLUDE) or a record, and carries the origin, default TTL, class and owner
from one entry to the next. `_Rdata` (in rdatatext) then reads the rdata
fields of one record into a dnslib RD object. The parsers of single fields,
such as names and TTLs, are in zonefields.

Every error is one ZoneFileError that names the file, the line of the bad
token and the token itself. dnslib's own zone parser (0.9.26) is not used,
because it reports no line numbers and misreads valid files. It rejects a
`1h` TTL and the `IN 300` order, gives TTL 0 to a record without one, splits
a label at `\\046`, and takes a relative $ORIGIN as absolute.
"""

from __future__ import annotations

import re
from pathlib import Path

from dnslib import QTYPE, DNSLabel

from .errors import ZoneFileError
from .names import ROOT
from .rdatatext import HINFO, _parse_rdata
from .zone import CLASS_IN, Zone, ZoneRecord, build_zone
from .zonefields import (
    MAX_TTL,
    MAX_UINT8,
    MAX_UINT16,
    MAX_UINT32,
    _parse_name,
    _parse_ttl,
    _parse_type_code,
)
from .zonelexer import _Entry, _lex, _show, _Token, _TokenError, _unescape

# HINFO and the MAX_ limits are defined in rdatatext and zonefields, and are
# re-exported here for callers of this module.
__all__ = [
    "HINFO",
    "MAX_INCLUDE_DEPTH",
    "MAX_TTL",
    "MAX_UINT8",
    "MAX_UINT16",
    "MAX_UINT32",
    "load_zone",
    "parse_zone_text",
    "read_records",
]


MAX_INCLUDE_DEPTH = 16


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


# Record headers: owner, then TTL and class in either order or omitted, then
# the type (RFC 1035 section 5.1).
_CLASS_CODES = {"IN": 1, "CS": 2, "CH": 3, "HS": 4}
_GENERIC_CLASS = re.compile(r"CLASS([0-9]{1,5})")


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


def _parse_record_type(token: _Token) -> int:
    code = _parse_type_code(token)
    # Type 0 is reserved, and OPT and 128-255 are meta and query types
    # (RFC 6895 section 3.1), which never appear as data.
    if code == 0 or code == QTYPE.OPT or 128 <= code <= 255:
        raise _TokenError(token, f"record type {_show(token)} is not allowed in a zone")
    return code
