"""A deterministic query corpus generated from zone files.

The corpus queries every owner name for the types present there and a
fixed list of common types. It also queries the names where authoritative
answering has its hard cases: below zone cuts, matching and not matching
each wildcard (RFC 4592), empty non-terminals, missing names, names outside
every zone, and the same names in random letter case. The zones are read
with dnspython, not with dns-toy's own reader, so that a reader bug cannot
hide names from the corpus.
"""

import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone

COMMON_TYPES = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DS", "ANY")
# Types asked at names that hold no records of their own.
EMPTY_NAME_TYPES = ("A", "TXT", "NS", "DS", "ANY")
BELOW_CUT_TYPES = ("A", "AAAA", "NS", "DS", "MX", "ANY")
WILDCARD_EXTRA_TYPES = ("A", "AAAA", "MX", "TXT", "CNAME", "NS", "DS", "ANY")
# Labels that contain an asterisk but are not the one-octet label "*",
# so they are ordinary labels that a wildcard can match.
ASTERISK_LABELS = ("**", "a*", "*a", "a*b")
MISSING_UNDER_APEX = 4
OUTSIDE_NAME = "outside.invalid."
EDNS_SHARE = 0.25
# An RRset of this many records is taken to need more than 512 octets.
LARGE_RRSET = 10
WILDCARD_LABEL = b"*"
RANDOM_CASE = ", random case"


@dataclass(frozen=True)
class Query:
    """One question of the corpus and the reason it is there."""

    name: str
    rdtype: str
    kind: str
    edns: bool = False

    def __str__(self) -> str:
        edns = " +edns" if self.edns else ""
        return f"{self.name} {self.rdtype}{edns}"


@dataclass
class ZoneNames:
    """The names of one zone, sorted into the groups that the corpus queries."""

    origin: dns.name.Name
    types_at: dict[dns.name.Name, list[str]]
    cuts: list[dns.name.Name]
    wildcards: list[dns.name.Name]
    empty_non_terminals: list[dns.name.Name]
    large_owners: list[dns.name.Name]

    def exists(self, name: dns.name.Name) -> bool:
        return name in self.types_at or name in self.empty_non_terminals


def zone_origin(path: Path) -> str:
    """Return the origin of a zone file, such as "wild.example."."""
    return read_zone(path).origin.to_text()


def read_zone(path: Path) -> ZoneNames:
    """Read a zone file with dnspython and group its names."""
    zone = dns.zone.from_file(str(path), relativize=False)
    origin = zone.origin
    assert origin is not None
    types_at: dict[dns.name.Name, list[str]] = {}
    large_owners: list[dns.name.Name] = []
    for name, node in sorted(zone.nodes.items()):
        types_at[name] = sorted(
            dns.rdatatype.to_text(rdataset.rdtype) for rdataset in node.rdatasets
        )
        if any(len(rdataset) >= LARGE_RRSET for rdataset in node.rdatasets):
            large_owners.append(name)
    cuts = [n for n, types in types_at.items() if "NS" in types and n != origin]
    wildcards = [n for n in types_at if n.labels[0] == WILDCARD_LABEL]
    ancestors = {
        ancestor
        for name in types_at
        for ancestor in _ancestors(name, origin)
        if ancestor not in types_at
    }
    empty_non_terminals = sorted(ancestors)
    return ZoneNames(
        origin, types_at, cuts, wildcards, empty_non_terminals, large_owners
    )


def _ancestors(name: dns.name.Name, origin: dns.name.Name) -> Iterable[dns.name.Name]:
    while name != origin:
        name = name.parent()
        yield name


class CorpusBuilder:
    """Collect queries for the zones of one server, without repeats."""

    def __init__(self, zones: list[ZoneNames], seed: str) -> None:
        self.zones = zones
        self.random = random.Random(seed)
        self.queries: dict[tuple[str, str, bool], Query] = {}

    def add(self, name: dns.name.Name | str, types: Iterable[str], kind: str) -> None:
        text = name if isinstance(name, str) else name.to_text()
        for rdtype in types:
            key = (text, rdtype, False)
            if key not in self.queries:
                self.queries[key] = Query(text, rdtype, kind)

    def fresh_label(self, parent: dns.name.Name) -> str:
        """Return a random label that, below `parent`, names nothing that
        exists in any zone of the server."""
        while True:
            size = self.random.randint(3, 8)
            label = "".join(self.random.choices(string.ascii_lowercase, k=size))
            if not any(
                zone.exists(dns.name.Name((label.encode(),) + parent.labels))
                for zone in self.zones
            ):
                return label

    def below(self, parent: dns.name.Name, depth: int) -> dns.name.Name:
        """Return a name `depth` fresh random labels below `parent`."""
        labels: list[str] = []
        name = parent
        for _ in range(depth):
            labels.insert(0, self.fresh_label(name))
            name = dns.name.Name((labels[0].encode(),) + name.labels)
        return name


def build_corpus(zone_paths: list[Path], seed: str) -> list[Query]:
    """Return the corpus for a server that loads all of `zone_paths`.

    The same paths and seed always give the same queries in the same order.
    """
    # Deepest zones first, because the server answers from the deepest zone:
    # a name that is an empty non-terminal of a parent zone and the apex of a
    # child zone is then labelled "apex".
    zones = sorted(
        (read_zone(path) for path in zone_paths), key=lambda z: -len(z.origin)
    )
    builder = CorpusBuilder(zones, seed)
    for zone in zones:
        _add_existing_names(builder, zone)
        _add_below_cuts(builder, zone)
        _add_wildcard_cases(builder, zone)
        _add_missing_names(builder, zone)
    _add_outside_names(builder, zones)
    base = list(builder.queries.values())
    with_case = base + _case_variants(builder.random, base)
    large = [owner for zone in zones for owner in zone.large_owners]
    return with_case + _edns_copies(builder.random, with_case, large)


def _add_existing_names(builder: CorpusBuilder, zone: ZoneNames) -> None:
    for name, types in zone.types_at.items():
        kind = "apex" if name == zone.origin else "owner"
        builder.add(name, types, kind)
        builder.add(name, COMMON_TYPES, kind)
    for name in zone.empty_non_terminals:
        builder.add(name, EMPTY_NAME_TYPES, "empty non-terminal")
        builder.add(builder.below(name, 1), ("A", "TXT"), "below empty non-terminal")


def _add_below_cuts(builder: CorpusBuilder, zone: ZoneNames) -> None:
    for cut in zone.cuts:
        builder.add(builder.below(cut, 1), BELOW_CUT_TYPES, "below zone cut")
        builder.add(builder.below(cut, 2), BELOW_CUT_TYPES, "below zone cut")


def _add_wildcard_cases(builder: CorpusBuilder, zone: ZoneNames) -> None:
    for wildcard in zone.wildcards:
        parent = wildcard.parent()
        types = sorted(set(zone.types_at[wildcard]) | set(WILDCARD_EXTRA_TYPES))
        builder.add(builder.below(parent, 1), types, "wildcard match")
        builder.add(builder.below(parent, 2), types, "wildcard match, two labels")
        for label in ASTERISK_LABELS:
            name = dns.name.Name((label.encode(),) + parent.labels)
            builder.add(name, ("A", "TXT"), "asterisk inside a label")
        builder.add(builder.below(wildcard, 1), ("A", "TXT"), "below wildcard owner")
        star_star = dns.name.Name((WILDCARD_LABEL,) + wildcard.labels)
        builder.add(star_star, ("A", "TXT"), "below wildcard owner")
        for sibling in _siblings(zone, wildcard):
            builder.add(builder.below(sibling, 1), ("A", "TXT"), "below sibling")
            builder.add(builder.below(sibling, 2), ("A",), "below sibling")
        if parent != zone.origin:
            grandparent = parent.parent()
            builder.add(builder.below(grandparent, 1), ("A",), "beside wildcard")


def _siblings(zone: ZoneNames, wildcard: dns.name.Name) -> list[dns.name.Name]:
    parent = wildcard.parent()
    names = list(zone.types_at) + zone.empty_non_terminals
    return sorted(n for n in names if n != wildcard and n.parent() == parent)


def _add_missing_names(builder: CorpusBuilder, zone: ZoneNames) -> None:
    for _ in range(MISSING_UNDER_APEX):
        builder.add(builder.below(zone.origin, 1), ("A", "MX"), "missing name")
    for name in zone.types_at:
        if name != zone.origin and name.labels[0] != WILDCARD_LABEL:
            builder.add(builder.below(name, 1), ("A",), "missing name")


def _add_outside_names(builder: CorpusBuilder, zones: list[ZoneNames]) -> None:
    """Add names that no zone of this server contains (expected: REFUSED)."""
    candidates = [dns.name.from_text(OUTSIDE_NAME)]
    candidates += [
        zone.origin.parent() for zone in zones if zone.origin.labels != (b"",)
    ]
    for name in candidates:
        if not any(name.is_subdomain(zone.origin) for zone in zones):
            builder.add(name, ("A", "SOA", "NS"), "outside every zone")


def _case_variants(rng: random.Random, queries: list[Query]) -> list[Query]:
    """Return each query again with its name in random letter case."""
    variants: list[Query] = []
    for query in queries:
        name = _random_case(rng, query.name)
        if name != query.name:
            variants.append(Query(name, query.rdtype, query.kind + RANDOM_CASE))
    return variants


def _random_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _edns_copies(
    rng: random.Random, queries: list[Query], large: list[dns.name.Name]
) -> list[Query]:
    """Return a sample of the queries again, to be sent with EDNS(0).

    Every query that may reach a large RRset is in the sample: without EDNS
    its reply is truncated, and with EDNS it may fit.
    """
    chosen = [
        query
        for query in queries
        if rng.random() < EDNS_SHARE or _may_reach(query, large)
    ]
    return [Query(q.name, q.rdtype, q.kind, edns=True) for q in chosen]


def _may_reach(query: Query, large: list[dns.name.Name]) -> bool:
    """Return True when the query name is a large owner or may match one
    that is a wildcard."""
    name = dns.name.from_text(query.name)
    for owner in large:
        if name == owner:
            return True
        if owner.labels[0] == WILDCARD_LABEL and name.parent() == owner.parent():
            return True
    return False
