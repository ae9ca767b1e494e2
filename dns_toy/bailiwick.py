"""Scrubbing a reply to the bailiwick of the zone asked.

A server asked as a server of zone Z is believed only about names at or
below Z, compared label by label (RFC 2181 section 5.4.1, RFC 5452
section 6). Anything else in any section could poison the cache, so it is
dropped before the reply is classified and logged at DEBUG. The OPT
pseudo-record is not data and stays.
"""

import logging
from dataclasses import dataclass

from dnslib import QTYPE, RR, DNSLabel, DNSRecord

from .names import is_subdomain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scrubbed:
    """The records of a reply that lie in the bailiwick, by section."""

    answer: tuple[RR, ...]
    authority: tuple[RR, ...]
    additional: tuple[RR, ...]
    dropped: tuple[RR, ...]
    dropped_answers: int


def scrub(reply: DNSRecord, zone: DNSLabel) -> Scrubbed:
    """Split the records of `reply` into those at or below `zone` and the rest."""
    answer, dropped_answer = _split(reply.rr, zone)
    authority, dropped_authority = _split(reply.auth, zone)
    additional, dropped_additional = _split(reply.ar, zone)
    dropped = dropped_answer + dropped_authority + dropped_additional
    if dropped:
        names = ", ".join(f"{rr.rname} {QTYPE.get(rr.rtype)}" for rr in dropped)
        log.debug(
            "dropped %d record(s) outside zone %s from a reply for %s: %s",
            len(dropped),
            zone,
            reply.q.qname,
            names,
        )
    return Scrubbed(answer, authority, additional, dropped, len(dropped_answer))


def _split(records: list[RR], zone: DNSLabel) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
    inside: list[RR] = []
    outside: list[RR] = []
    for rr in records:
        if rr.rtype == QTYPE.OPT or is_subdomain(rr.rname, zone):
            inside.append(rr)
        else:
            outside.append(rr)
    return tuple(inside), tuple(outside)
