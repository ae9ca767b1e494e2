"""Small edits of a zone file's text, as an operator makes them by hand.

`edit_rrset` replaces the lines of one RRset and sets a new SOA serial,
leaving every other line, comment and blank as it was. The lines to touch
are found with this project's zone-file reader, and the result is read
again and checked, so an edit that did not do what was asked raises
ZoneEditError instead of reaching a server.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dnslib import QTYPE, DNSLabel

from .errors import DnsToyError
from .names import name_key
from .zone import Zone, ZoneRecord
from .zonefile import parse_zone_text, read_records

SERIAL_MODULUS = 2**32  # RFC 1982 serial arithmetic
_TOKEN = re.compile(r";[^\n]*|\s+|[()]|[^\s();]+")


class ZoneEditError(DnsToyError):
    """A zone file that cannot be edited as asked."""


@dataclass(frozen=True)
class RRsetEdit:
    """New data for one RRset: its records' data as zone-file text, and a TTL."""

    name: DNSLabel
    rtype: int
    values: tuple[str, ...]
    ttl: int


def edit_rrset(text: str, path: str, edit: RRsetEdit, serial: int) -> str:
    """Return `text`, the content of the zone file at `path`, with the RRset
    of `edit` replaced and the SOA serial set to `serial`.

    `text` must be what the file at `path` holds, because the lines to
    change are found by reading that file. Raises ZoneEditError when the
    RRset is missing, in an $INCLUDE file or spread over several lines.
    """
    _origin, records = read_records(path)
    targets = _records_of(records, edit.name, edit.rtype)
    if not targets:
        raise ZoneEditError(f"{path}: no {QTYPE[edit.rtype]} record for {edit.name}")
    soa = _records_of(records, _origin, QTYPE.SOA)
    lines = text.splitlines(keepends=True)
    for record in targets:
        _check_editable(record, path, lines)
    lines = _replace_lines(lines, targets, edit)
    edited = _set_serial("".join(lines), path, soa[0].line, serial)
    _verify(edited, path, edit, serial)
    return edited


def zone_serial(text: str, path: str) -> int:
    """Return the SOA serial of the zone in `text`."""
    return parse_zone_text(text, path=path).serial


def next_serial(serial: int, step: int = 1) -> int:
    """Return `serial` raised by `step` in RFC 1982 serial arithmetic."""
    return (serial + step) % SERIAL_MODULUS


def _records_of(
    records: Sequence[ZoneRecord], name: DNSLabel, rtype: int
) -> list[ZoneRecord]:
    key = name_key(name)
    return [r for r in records if name_key(r.name) == key and r.rtype == rtype]


def _check_editable(record: ZoneRecord, path: str, lines: list[str]) -> None:
    if record.path != path:
        raise ZoneEditError(
            f"{record.path}:{record.line}: the record is in an $INCLUDE file; "
            f"only records in {path} itself can be edited"
        )
    if "(" in lines[record.line - 1].split(";")[0]:
        raise ZoneEditError(
            f"{path}:{record.line}: the record spans several lines; "
            "write it on one line to edit it"
        )


def _replace_lines(
    lines: list[str], targets: list[ZoneRecord], edit: RRsetEdit
) -> list[str]:
    """Put the new records on the line of the first old one; drop the others."""
    replacement = "".join(
        f"{edit.name} {edit.ttl} IN {QTYPE[edit.rtype]} {value}\n"
        for value in edit.values
    )
    numbers = {record.line for record in targets}
    first = min(numbers)
    result = []
    for number, line in enumerate(lines, start=1):
        if number == first:
            result.append(replacement)
        elif number not in numbers:
            result.append(line)
    return result


def _set_serial(text: str, path: str, soa_line: int, serial: int) -> str:
    """Replace the serial of the SOA record that starts on line `soa_line`.

    The serial is the third field after the SOA type (MNAME, RNAME, SERIAL),
    wherever comments, parentheses and line breaks put it.
    """
    offset = sum(len(line) for line in text.splitlines(keepends=True)[: soa_line - 1])
    fields_after_type = -1  # -1 until the SOA type is seen
    for match in _TOKEN.finditer(text, offset):
        token = match.group()
        if token[0] in ";()" or token.isspace():
            continue
        if fields_after_type < 0:
            if token.upper() == "SOA":
                fields_after_type = 0
            continue
        if fields_after_type == 2:
            if not token.isdigit():
                break
            return text[: match.start()] + str(serial) + text[match.end() :]
        fields_after_type += 1
    raise ZoneEditError(f"{path}:{soa_line}: cannot find the SOA serial to change")


def _verify(text: str, path: str, edit: RRsetEdit, serial: int) -> None:
    zone: Zone = parse_zone_text(text, path=path)
    if zone.serial != serial:
        raise ZoneEditError(f"{path}: the edit left serial {zone.serial}, not {serial}")
    rrset = (zone.rrsets_at(edit.name) or {}).get(edit.rtype)
    found = () if rrset is None else tuple(sorted(str(rd) for rd in rrset.rdatas))
    if found != tuple(sorted(edit.values)) or rrset is None or rrset.ttl != edit.ttl:
        raise ZoneEditError(
            f"{path}: the edit of {edit.name} {QTYPE[edit.rtype]} did not produce "
            f"{', '.join(edit.values)} with TTL {edit.ttl}"
        )
