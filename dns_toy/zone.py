"""Zones in memory: RRsets grouped by owner name, with the zone's apex SOA.

A zone is built once from the records a zone file yields and is then
read-only, so an authority's answer depends only on the zone and the query.
"""

import logging
from dataclasses import dataclass, field

from dnslib import QTYPE, RD, RR, SOA, DNSLabel

from .errors import ZoneFileError
from .names import NameKey, is_subdomain, name_key

log = logging.getLogger(__name__)

CLASS_IN = 1


@dataclass(frozen=True)
class Finding:
    """A problem found in a zone file, printed as `path:line: message`."""

    severity: str  # "error" stops a load, "warning" does not
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {prefix}{self.message}"


@dataclass(frozen=True)
class ZoneRecord:
    """One resource record as read from a zone file, with its source line."""

    name: DNSLabel
    ttl: int
    rclass: int
    rtype: int
    rdata: RD
    path: str
    line: int


@dataclass(frozen=True)
class RRset:
    """The records of one owner name and type, sharing one TTL."""

    name: DNSLabel
    rtype: int
    ttl: int
    rdatas: tuple[RD, ...]

    def to_rrs(self, owner: DNSLabel | None = None) -> list[RR]:
        """Return dnslib RRs, optionally renamed (for wildcard synthesis)."""
        name = self.name if owner is None else owner
        return [RR(name, self.rtype, CLASS_IN, self.ttl, rd) for rd in self.rdatas]


@dataclass
class Zone:
    """The authoritative data of one zone, keyed by lowercased owner name."""

    origin: DNSLabel
    nodes: dict[NameKey, dict[int, RRset]]
    # Every name that exists in the zone: owners of data and the empty
    # non-terminals between them and the apex (RFC 4592 section 2.2.2).
    names: set[NameKey]
    record_count: int
    path: str = "<zone>"
    warnings: list[Finding] = field(default_factory=list)
    # The file and line of each record of each RRset, in rdata order, for
    # zone checks.
    lines: dict[tuple[NameKey, int], list[tuple[str, int]]] = field(
        default_factory=dict
    )

    @property
    def soa(self) -> RRset:
        return self.nodes[name_key(self.origin)][QTYPE.SOA]

    @property
    def serial(self) -> int:
        rdata = self.soa.rdatas[0]
        assert isinstance(rdata, SOA)
        return int(rdata.times[0])

    def rrsets_at(self, name: DNSLabel) -> dict[int, RRset] | None:
        return self.nodes.get(name_key(name))

    def name_exists(self, name: DNSLabel) -> bool:
        return name_key(name) in self.names


def build_zone(origin: DNSLabel, records: list[ZoneRecord], path: str) -> Zone:
    """Group `records` into RRsets and check the rules every zone must meet.

    Raises ZoneFileError for a record outside the origin, a class other
    than IN, or a missing apex SOA. Exact duplicates are dropped with a
    warning, as NSD and BIND do.
    """
    grouped: dict[tuple[NameKey, int], list[ZoneRecord]] = {}
    warnings: list[Finding] = []
    for record in records:
        _check_record(origin, record)
        key = (name_key(record.name), record.rtype)
        group = grouped.setdefault(key, [])
        if any(other.rdata == record.rdata for other in group):
            warnings.append(_warning(record, "duplicate record dropped"))
            continue
        group.append(record)

    nodes: dict[NameKey, dict[int, RRset]] = {}
    for (key, rtype), group in grouped.items():
        nodes.setdefault(key, {})[rtype] = _make_rrset(group, warnings)

    apex = nodes.get(name_key(origin), {})
    if QTYPE.SOA not in apex:
        raise ZoneFileError(path, 1, f"zone {origin} has no SOA record at its apex")
    soa_group = grouped[(name_key(origin), QTYPE.SOA)]
    if len(soa_group) > 1:
        second = soa_group[1]
        raise ZoneFileError(second.path, second.line, "zone has more than one SOA")

    for warning in warnings:
        log.warning("%s", warning)
    count = sum(len(group) for group in grouped.values())
    lines = {
        key: [(record.path, record.line) for record in group]
        for key, group in grouped.items()
    }
    names = _existing_names(origin, nodes)
    return Zone(origin, nodes, names, count, path, warnings, lines)


def _check_record(origin: DNSLabel, record: ZoneRecord) -> None:
    if not is_subdomain(record.name, origin):
        raise ZoneFileError(
            record.path, record.line, f"{record.name} is outside the zone {origin}"
        )
    if record.rclass != CLASS_IN:
        raise ZoneFileError(
            record.path, record.line, "only class IN is supported in zone files"
        )
    if record.rtype == QTYPE.SOA and name_key(record.name) != name_key(origin):
        raise ZoneFileError(
            record.path, record.line, f"SOA record at {record.name}, not the apex"
        )


def _warning(record: ZoneRecord, message: str) -> Finding:
    return Finding("warning", record.path, record.line, message)


def _make_rrset(group: list[ZoneRecord], warnings: list[Finding]) -> RRset:
    # RFC 2181 section 5.2: all records of an RRset share one TTL. Like BIND,
    # keep the first record's TTL and warn about the others.
    first = group[0]
    for other in group[1:]:
        if other.ttl != first.ttl:
            message = (
                f"TTL {other.ttl} differs from the RRset's TTL {first.ttl}; "
                f"using {first.ttl}"
            )
            warnings.append(_warning(other, message))
    rdatas = tuple(record.rdata for record in group)
    return RRset(first.name, first.rtype, first.ttl, rdatas)


def _existing_names(
    origin: DNSLabel, nodes: dict[NameKey, dict[int, RRset]]
) -> set[NameKey]:
    names: set[NameKey] = set()
    apex_depth = len(origin.label)
    for key in nodes:
        for start in range(len(key) - apex_depth + 1):
            names.add(key[start:])
    return names
