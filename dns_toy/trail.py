"""Two private EDNS options that recursing dns-toy servers exchange.

Both use codes from the range RFC 6891 section 9 reserves for local and
experimental use (65001-65534), so other DNS software ignores them.

BUDGET (65101), sent in queries: how many recursing servers the query has
already passed through (1 byte) and how many milliseconds the asker will
wait for the reply (2 bytes, network order). A recursing server refuses to
recurse once the hop count reaches its limit, and gives the next server
less time than it has itself, so that it always hears back before its own
asker gives up.

TRAIL (65102): in a query, one byte 0x01 that requests the hop trail. In a
reply, the trail as UTF-8 text: a first line `server<TAB>NAME<TAB>SOURCE`
naming the replying server and where its data came from (authority, cache
or recursion), then one line per query that server sent, with the fields
of trace.HopEvent separated by tabs. Depths are relative to the replying
server. The request byte is needed because dnslib 0.9.26 drops an option
of length 0 at the end of an OPT record when it parses one.
"""

import dataclasses
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dnslib import EDNS0, QTYPE, DNSRecord, EDNSOption

from .trace import HopEvent

log = logging.getLogger(__name__)

BUDGET_OPTION = 65101
TRAIL_OPTION = 65102
TRAIL_REQUEST = b"\x01"
MAX_BUDGET_MS = 65535
# A cap on the hops one trail carries, so that a long chain of nested
# lookups cannot make a reply grow without bound.
MAX_TRAIL_HOPS = 32

SOURCE_AUTHORITY = "authority"
SOURCE_CACHE = "cache"
SOURCE_RECURSION = "recursion"

_BUDGET = struct.Struct("!BH")
_HOP_FIELDS = dataclasses.fields(HopEvent)


@dataclass(frozen=True)
class Budget:
    """The hop count and time limit carried by a BUDGET option."""

    hops: int  # recursing servers the query has passed through
    time_ms: int  # how long the asker waits for the reply


@dataclass(frozen=True)
class Trail:
    """The hop trail of a reply: who replied, from where, and its queries."""

    server: str
    source: str
    hops: tuple[HopEvent, ...]
    size: int  # bytes of the option on the wire, header included


def budget_option(budget: Budget) -> EDNSOption:
    """Encode `budget`; the time is capped at 65535 ms to fit 2 bytes."""
    time_ms = max(0, min(budget.time_ms, MAX_BUDGET_MS))
    return EDNSOption(BUDGET_OPTION, _BUDGET.pack(min(budget.hops, 255), time_ms))


def trail_request() -> EDNSOption:
    return EDNSOption(TRAIL_OPTION, TRAIL_REQUEST)


def add_options(message: DNSRecord, options: Sequence[EDNSOption]) -> None:
    """Append `options` to the OPT record of `message`, adding one if needed."""
    opt = next((rr for rr in message.ar if rr.rtype == QTYPE.OPT), None)
    if opt is None:
        message.add_ar(EDNS0(udp_len=1232, opts=list(options)))
        return
    opt.rdata = list(opt.rdata) + list(options)


def find_option(message: DNSRecord, code: int) -> EDNSOption | None:
    """Return the first EDNS option with `code` in `message`, or None."""
    for rr in message.ar:
        if rr.rtype != QTYPE.OPT:
            continue
        for option in rr.rdata:
            if option.code == code:
                return option
    return None


def read_budget(message: DNSRecord) -> Budget | None:
    """Return the BUDGET option of a query, or None when absent or malformed."""
    option = find_option(message, BUDGET_OPTION)
    if option is None or len(option.data) != _BUDGET.size:
        return None
    hops, time_ms = _BUDGET.unpack(option.data)
    return Budget(hops, time_ms)


def wants_trail(message: DNSRecord) -> bool:
    """Return True when a query requests the hop trail of its reply."""
    option = find_option(message, TRAIL_OPTION)
    return option is not None and option.data == TRAIL_REQUEST


def trail_option(server: str, source: str, hops: Sequence[HopEvent]) -> EDNSOption:
    """Encode a reply's hop trail, keeping at most MAX_TRAIL_HOPS hops."""
    lines = ["\t".join(("server", _clean(server), source))]
    lines.extend(_encode_hop(hop) for hop in hops[:MAX_TRAIL_HOPS])
    return EDNSOption(TRAIL_OPTION, "\n".join(lines).encode("utf-8"))


def read_trail(message: DNSRecord) -> Trail | None:
    """Decode the hop trail of a reply; lines that do not decode are skipped."""
    option = find_option(message, TRAIL_OPTION)
    if option is None or option.data == TRAIL_REQUEST:
        return None
    lines = option.data.decode("utf-8", "replace").split("\n")
    first = lines[0].split("\t")
    if len(first) != 3 or first[0] != "server":
        log.debug("ignored a hop trail with an invalid first line %r", lines[0])
        return None
    hops = []
    for line in lines[1:]:
        hop = _decode_hop(line)
        if hop is None:
            log.debug("ignored an invalid hop trail line %r", line)
            continue
        hops.append(hop)
    return Trail(first[1], first[2], tuple(hops), 4 + len(option.data))


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def _encode_hop(hop: HopEvent) -> str:
    values = []
    for field in _HOP_FIELDS:
        value = getattr(hop, field.name)
        if isinstance(value, bool):
            values.append("1" if value else "0")
        elif isinstance(value, float):
            values.append(f"{value:.3f}")
        else:
            values.append(_clean(str(value)))
    return "\t".join(values)


def _decode_hop(line: str) -> HopEvent | None:
    values = line.split("\t")
    if len(values) != len(_HOP_FIELDS):
        return None
    decoded: dict[str, Any] = {}
    try:
        for field, text in zip(_HOP_FIELDS, values):
            if field.type is bool:
                decoded[field.name] = text == "1"
            elif field.type is int:
                decoded[field.name] = int(text)
            elif field.type is float:
                decoded[field.name] = float(text)
            else:
                decoded[field.name] = text
    except ValueError:
        return None
    return HopEvent(**decoded)
