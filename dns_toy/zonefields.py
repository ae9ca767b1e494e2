"""Read single fields of zone-file records into values.

The fields are domain names (relative ones completed with the origin),
integers, TTLs and other durations, type mnemonics and RRSIG times. Each
parser takes one token and raises `_TokenError` on that token when it is
invalid.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime

from dnslib import QTYPE, DNSLabel

from .names import ROOT
from .zonelexer import _encode, _read_escape, _show, _Token, _TokenError

# RFC 2181 section 8: a TTL is 0 to 2147483647 seconds.
MAX_TTL = 2**31 - 1
MAX_UINT32 = 2**32 - 1
MAX_UINT16 = 2**16 - 1
MAX_UINT8 = 2**8 - 1


# Record types: mnemonics and RFC 3597 TYPEnnn.
_GENERIC_TYPE = re.compile(r"TYPE([0-9]{1,5})")
_TYPE_CODES: dict[str, int] = dict(QTYPE.reverse)


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


def _type_name(code: int) -> str:
    # dnslib 0.9.26 names both 53 and 55 "HIP", so fall back to TYPEnnn
    # whenever the mnemonic does not lead back to the same number.
    name = QTYPE.get(code)
    return name if _TYPE_CODES.get(name) == code else f"TYPE{code}"


# Names, numbers and times.
_INTEGER = re.compile(r"[0-9]{1,20}")
_DURATION = re.compile(r"[0-9]{1,20}|(?:[0-9]{1,20}[smhdw])+", re.IGNORECASE)
_DURATION_PART = re.compile(r"([0-9]+)([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIGNATURE_DATE = re.compile(r"[0-9]{14}")


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
