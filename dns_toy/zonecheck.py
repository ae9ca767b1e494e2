"""Checks a zone must pass before it is served, in the spirit of
named-checkzone: each finding names the file and line of the record.

Errors stop a load; warnings (such as dropped duplicates, found while the
zone is built) are reported and the zone is served.
"""

from dnslib import QTYPE, DNSLabel

from .errors import DnsToyError, ZoneFileError
from .names import NameKey, is_subdomain, lineage, name_key
from .zone import Finding, Zone

# RFC 2181 section 10.1 and RFC 4035 section 2.5: only DNSSEC records may
# share an owner name with a CNAME.
ALLOWED_WITH_CNAME = {QTYPE.CNAME, QTYPE.RRSIG, QTYPE.NSEC}
ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)


class ZoneCheckError(DnsToyError):
    """A zone with errors; printed as one `path:line: message` per error."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("\n".join(str(finding) for finding in findings))
        self.findings = findings


def check_zone(zone: Zone) -> list[Finding]:
    """Return every error and warning for `zone`, errors first."""
    errors = _check_apex(zone) + _check_cnames(zone) + _check_ns_addresses(zone)
    return errors + list(zone.warnings)


def load_checked_zone(path: str, origin: str | None = None) -> Zone:
    """Read a zone file and raise ZoneCheckError unless it passes the checks."""
    from .zonefile import load_zone

    try:
        zone = load_zone(path, origin)
    except ZoneFileError as exc:
        raise ZoneCheckError([Finding("error", exc.path, exc.line, exc.message)])
    errors = [f for f in check_zone(zone) if f.severity == "error"]
    if errors:
        raise ZoneCheckError(errors)
    return zone


def _where(zone: Zone, name: DNSLabel, rtype: int, index: int) -> tuple[str, int]:
    lines = zone.lines.get((name_key(name), rtype))
    if not lines:
        return (zone.path, 1)
    return lines[min(index, len(lines) - 1)]


def _error(
    zone: Zone, name: DNSLabel, rtype: int, message: str, index: int = 0
) -> Finding:
    """Return an error at the line of record `index` of an RRset."""
    path, line = _where(zone, name, rtype, index)
    return Finding("error", path, line, message)


def _check_apex(zone: Zone) -> list[Finding]:
    apex = zone.rrsets_at(zone.origin) or {}
    if QTYPE.NS in apex:
        return []
    return [
        _error(
            zone,
            zone.origin,
            QTYPE.SOA,
            f"zone {zone.origin} has no NS records at its apex",
        )
    ]


def _check_cnames(zone: Zone) -> list[Finding]:
    findings: list[Finding] = []
    for node in zone.nodes.values():
        cname = node.get(QTYPE.CNAME)
        if cname is None:
            continue
        if name_key(cname.name) == name_key(zone.origin):
            findings.append(
                _error(
                    zone,
                    cname.name,
                    QTYPE.CNAME,
                    f"CNAME at the zone apex {zone.origin}",
                )
            )
        elif set(node) - ALLOWED_WITH_CNAME:
            findings.append(
                _error(
                    zone,
                    cname.name,
                    QTYPE.CNAME,
                    f"CNAME and other data at {cname.name}",
                )
            )
        if len(cname.rdatas) > 1:
            # RFC 2181 section 10.1: a name has at most one CNAME record.
            findings.append(
                _error(
                    zone,
                    cname.name,
                    QTYPE.CNAME,
                    f"more than one CNAME at {cname.name}",
                    1,
                )
            )
    return findings


def _zone_cuts(zone: Zone) -> set[NameKey]:
    apex = name_key(zone.origin)
    return {key for key, node in zone.nodes.items() if QTYPE.NS in node and key != apex}


def _check_ns_addresses(zone: Zone) -> list[Finding]:
    """Find in-zone NS names that have no address, at the apex and at cuts.

    An apex NS name below one of the zone's own cuts is not checked: its
    address is glue in this zone only if the child's delegation names it,
    and otherwise comes from the parent's glue (as C.ISI.EDU does for EDU
    in RFC 1034 section 6.1).
    """
    cuts = _zone_cuts(zone)
    findings: list[Finding] = []
    for key, node in zone.nodes.items():
        ns = node.get(QTYPE.NS)
        if ns is None:
            continue
        for index, rdata in enumerate(ns.rdatas):
            target = rdata.label
            if not is_subdomain(target, zone.origin) or _has_address(zone, target):
                continue
            if not _below_cut(target, zone, cuts):
                message = f"NS name {target} has no address records"
            elif key in cuts:
                message = f"delegation {ns.name}: NS name {target} has no glue"
            else:
                continue
            findings.append(_error(zone, ns.name, QTYPE.NS, message, index))
    return findings


def _has_address(zone: Zone, name: DNSLabel) -> bool:
    node = zone.rrsets_at(name) or {}
    return any(rtype in node for rtype in ADDRESS_TYPES)


def _below_cut(name: DNSLabel, zone: Zone, cuts: set[NameKey]) -> bool:
    return any(name_key(ancestor) in cuts for ancestor in lineage(name, zone.origin))


def check_zone_file(path: str, origin: str | None = None) -> int:
    """Print the findings, record count and serial of a zone file, the way
    named-checkzone does; return 0 when it has no errors, else 1."""
    from .zonefile import load_zone

    try:
        zone = load_zone(path, origin)
    except ZoneFileError as exc:
        print(str(exc))
        return 1
    except OSError as exc:
        print(f"{path}: cannot read zone file: {exc.strerror}")
        return 1
    findings = check_zone(zone)
    for finding in findings:
        print(finding)
    if any(finding.severity == "error" for finding in findings):
        print(f"zone {zone.origin}: not loaded due to errors")
        return 1
    print(
        f"zone {zone.origin}: loaded serial {zone.serial}, {zone.record_count} records"
    )
    print("OK")
    return 0
