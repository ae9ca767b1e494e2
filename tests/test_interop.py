"""Interoperability with Unbound and NSD, and resistance to a forging server.

1. Unbound resolves the default hierarchy served by `dns-toy serve`, next
   to our own resolver, and both return the same answers.
2. Our resolver resolves the same names from NSD, one NSD process per
   server entry of the topology, with the same answers as from our servers.
3. A scripted fake name server for one zone sends forged, foreign and
   malformed replies. Our resolver must cache none of that data and still
   resolve the other zones from the honest servers.

Unbound sends every query that follows a referral to port 53, because glue
carries addresses but no ports. Parts 1 and 2 therefore serve the hierarchy
on port 53 of 127.0.0.2-12, which needs root. Each part starts its servers,
asks every question and stops every process before the next part starts.

The questions are derived from the zone files, read with dnspython: every
owner with each of its types, a missing type at each owner (NODATA), every
empty non-terminal, DS at every zone cut, each CNAME owner with the types
of its target, and a missing name in every zone (NXDOMAIN). The expected
reply of each question is computed from the same zone data.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from conftest import DEFAULT_TOPOLOGY, free_port
from peers import (
    FakeUpstream,
    Peer,
    PeerError,
    check_port_free,
    find_program,
    start_dns_toy_resolver,
    start_dns_toy_server,
    start_nsd,
    start_unbound,
    stop_peers,
    wait_until_replying,
)

from dns_toy.topology import (
    ServerSpec,
    ZoneSpec,
    format_root_hints,
    load_topology,
    root_hints,
)

TOPOLOGY = load_topology(DEFAULT_TOPOLOGY)
HIERARCHY_PORT = 53
DNS_TOY_LABEL = "dns-toy"
UNBOUND_LABEL = "Unbound"
UNBOUND_QMIN_LABEL = "Unbound, QNAME minimisation"
QUERY_TIMEOUT = 5.0  # seconds for one question, more than a resolver's retries
# A resolver that lets this many questions time out is taken to be broken,
# and the rest of the questions are not sent to it.
MAX_TIMEOUTS = 5
MAX_CNAME_CHAIN = 8
MISSING_LABEL = "nosuchname"
MISSING_TLD = "nosuchtld."
# The first of these types that an owner lacks is asked for a NODATA reply.
ABSENT_TYPE_CHOICES = ("TXT", "AAAA", "MX")
MAX_TABLE_ROWS = 60

# (owner, type, rdata), each in dnspython's text form, lowercase.
RecordKey = tuple[str, str, str]


# --- Zone data and the questions ----------------------------------------------


@dataclass
class ZoneData:
    """The records of one zone file, as dnspython reads them."""

    origin: dns.name.Name
    rrsets: dict[tuple[dns.name.Name, str], tuple[int, frozenset[str]]]
    names: set[dns.name.Name]  # owners and empty non-terminals
    cuts: list[dns.name.Name]

    @property
    def soa(self) -> RecordKey:
        _, rdatas = self.rrsets[(self.origin, "SOA")]
        return (self.origin.to_text().lower(), "SOA", next(iter(rdatas)))

    @property
    def negative_ttl(self) -> int:
        """The TTL of a negative answer: min(SOA TTL, SOA MINIMUM), RFC 2308
        section 5."""
        ttl, _ = self.rrsets[(self.origin, "SOA")]
        minimum = int(self.soa[2].split()[-1])
        return min(ttl, minimum)


def read_zone_data(path: Path) -> ZoneData:
    zone = dns.zone.from_file(str(path), relativize=False)
    assert zone.origin is not None
    rrsets: dict[tuple[dns.name.Name, str], tuple[int, frozenset[str]]] = {}
    names: set[dns.name.Name] = set()
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            rdtype = dns.rdatatype.to_text(rdataset.rdtype)
            texts = frozenset(rdata.to_text().lower() for rdata in rdataset)
            rrsets[(name, rdtype)] = (rdataset.ttl, texts)
        ancestor = name
        while ancestor != zone.origin:
            names.add(ancestor)
            ancestor = ancestor.parent()
    names.add(zone.origin)
    cuts = [name for name, rdtype in rrsets if rdtype == "NS" and name != zone.origin]
    return ZoneData(zone.origin, rrsets, names, sorted(cuts))


@dataclass(frozen=True)
class Expected:
    """The reply that the zone data calls for."""

    rcode: str
    answer: frozenset[RecordKey]
    negative_soa: frozenset[RecordKey]


@dataclass(frozen=True)
class Question:
    """One question sent to every resolver, why it is asked, and the reply
    that the zone data calls for."""

    name: str
    rdtype: str
    kind: str
    expected: Expected = field(compare=False)

    def __str__(self) -> str:
        return f"{self.name} {self.rdtype}"


class Hierarchy:
    """The zones of a topology, for looking up what a resolver should return.

    Every zone below the root has its own file here, so the deepest zone
    that contains a name has that name's authoritative data.
    """

    def __init__(self, zone_paths: Sequence[Path]) -> None:
        zones = [read_zone_data(path) for path in zone_paths]
        self.zones = sorted(zones, key=lambda zone: -len(zone.origin))

    def zone_for(self, name: dns.name.Name) -> ZoneData:
        for zone in self.zones:
            if name.is_subdomain(zone.origin):
                return zone
        raise KeyError(f"no zone contains {name}")

    def types_at(self, name: dns.name.Name) -> list[str]:
        zone = self.zone_for(name)
        return sorted(rdtype for owner, rdtype in zone.rrsets if owner == name)

    def ttl_of(self, owner: str, rdtype: str) -> int | None:
        """Return the TTL of an authoritative RRset, or None if none exists."""
        name = dns.name.from_text(owner)
        found = self.zone_for(name).rrsets.get((name, rdtype))
        return None if found is None else found[0]

    def expected(self, name: dns.name.Name, rdtype: str) -> Expected:
        """Return the reply to `name` `rdtype` that the zones call for.

        CNAMEs are followed as RFC 1034 section 3.6.2 describes, and DS is
        looked up on the parent side of a zone cut (RFC 4035 section 5.1).
        """
        answer: set[RecordKey] = set()
        for _ in range(MAX_CNAME_CHAIN):
            parent_side = rdtype == "DS" and name != dns.name.root
            zone = self.zone_for(name.parent() if parent_side else name)
            if name not in zone.names:
                return Expected("NXDOMAIN", frozenset(answer), frozenset([zone.soa]))
            found = zone.rrsets.get((name, rdtype))
            if found is not None:
                answer |= record_keys(name, rdtype, found[1])
                return Expected("NOERROR", frozenset(answer), frozenset())
            cname = zone.rrsets.get((name, "CNAME"))
            if cname is None or rdtype == "CNAME":
                return Expected("NOERROR", frozenset(answer), frozenset([zone.soa]))
            answer |= record_keys(name, "CNAME", cname[1])
            name = dns.name.from_text(next(iter(cname[1])))
        raise ValueError(f"CNAME chain longer than {MAX_CNAME_CHAIN} at {name}")


def record_keys(
    name: dns.name.Name, rdtype: str, rdatas: frozenset[str]
) -> set[RecordKey]:
    owner = name.to_text().lower()
    return {(owner, rdtype, rdata) for rdata in rdatas}


def build_questions(hierarchy: Hierarchy) -> list[Question]:
    """Return the questions for every name of the hierarchy, without repeats,
    in the order of the zones from the root down."""
    questions: dict[tuple[str, str], Question] = {}

    def add(name: dns.name.Name, types: Sequence[str], kind: str) -> None:
        for rdtype in types:
            key = (name.to_text().lower(), rdtype)
            if key not in questions:
                expected = hierarchy.expected(name, rdtype)
                questions[key] = Question(key[0], rdtype, kind, expected)

    for zone in reversed(hierarchy.zones):
        for name in sorted(zone.names):
            if hierarchy.zone_for(name) is zone:
                add_questions_at(hierarchy, name, add)
        for cut in zone.cuts:
            add(cut, ["DS"], "DS at a zone cut")
        missing = dns.name.from_text(MISSING_LABEL, zone.origin)
        add(missing, ["A"], "missing name")
    add(dns.name.from_text(MISSING_TLD), ["A"], "missing top-level domain")
    return list(questions.values())


def add_questions_at(
    hierarchy: Hierarchy,
    name: dns.name.Name,
    add: Callable[[dns.name.Name, Sequence[str], str], None],
) -> None:
    """Add the questions about one name of its own zone."""
    types = hierarchy.types_at(name)
    if not types:
        add(name, ["A"], "empty non-terminal")
        return
    add(name, types, "owner")
    if "CNAME" in types:
        cname = hierarchy.zone_for(name).rrsets[(name, "CNAME")]
        target = dns.name.from_text(next(iter(cname[1])))
        target_types = hierarchy.types_at(target)
        add(name, target_types, f"CNAME to {target}")
        add(name, [absent_type(target_types)], f"CNAME to {target}, NODATA")
        return
    add(name, [absent_type(types)], "missing type")


def absent_type(types: Sequence[str]) -> str:
    return next(rdtype for rdtype in ABSENT_TYPE_CHOICES if rdtype not in types)


# Servers that load the same file, such as the two root servers, count once.
HIERARCHY = Hierarchy(
    list(
        dict.fromkeys(zone.path for server in TOPOLOGY.servers for zone in server.zones)
    )
)
QUESTIONS = build_questions(HIERARCHY)


# --- Asking resolvers -----------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The compared parts of a resolver's reply, with the TTLs aside."""

    rcode: str
    answer: frozenset[RecordKey]
    negative_soa: frozenset[RecordKey]
    ttls: tuple[tuple[RecordKey, int], ...]


def ask(
    address: str, port: int, name: str, rdtype: str, recursion: bool = True
) -> dns.message.Message | None:
    """Send one question over UDP, and over TCP after TC=1. Return None on a
    timeout."""
    query = dns.message.make_query(name, rdtype)
    if not recursion:
        query.flags &= ~dns.flags.RD
    try:
        reply, _ = dns.query.udp_with_fallback(query, address, QUERY_TIMEOUT, port)
    except dns.exception.Timeout:
        return None
    return reply


def records_in(section: Sequence[dns.rrset.RRset]) -> list[tuple[RecordKey, int]]:
    return [
        (
            (
                rrset.name.to_text().lower(),
                dns.rdatatype.to_text(rrset.rdtype),
                rdata.to_text().lower(),
            ),
            rrset.ttl,
        )
        for rrset in section
        for rdata in rrset
    ]


def reduce_reply(reply: dns.message.Message) -> Resolved:
    answer = records_in(reply.answer)
    soa = [item for item in records_in(reply.authority) if item[0][1] == "SOA"]
    return Resolved(
        dns.rcode.to_text(reply.rcode()),
        frozenset(key for key, _ in answer),
        frozenset(key for key, _ in soa),
        tuple(answer + soa),
    )


def resolve_all(
    resolvers: Sequence[tuple[str, Peer]], questions: Sequence[Question]
) -> dict[str, dict[Question, Resolved | None]]:
    """Ask every resolver every question, one resolver after the other for
    each question. None marks a timeout."""
    replies: dict[str, dict[Question, Resolved | None]] = {
        label: {} for label, _ in resolvers
    }
    timeouts = dict.fromkeys(replies, 0)
    for question in questions:
        for label, peer in resolvers:
            if timeouts[label] >= MAX_TIMEOUTS:
                continue
            reply = ask(peer.address, peer.port, question.name, question.rdtype)
            if reply is None:
                timeouts[label] += 1
            replies[label][question] = None if reply is None else reduce_reply(reply)
    return replies


# --- Phases: one set of authoritative servers, every resolver ------------------


@dataclass(frozen=True)
class ResolverSpec:
    """One resolver that each phase starts, and where it listens."""

    label: str
    address: str
    program: str  # "dns-toy" or "unbound"
    qname_minimisation: bool = False


# QNAME minimisation (RFC 9156) changes the queries that the authoritative
# servers see but not the answers. Unbound without it sends the same full
# questions as our resolver does. Unbound with it, its default, also asks
# our servers for the names between the zone cuts.
RESOLVERS = (
    ResolverSpec(DNS_TOY_LABEL, "127.0.0.212", "dns-toy"),
    ResolverSpec(UNBOUND_LABEL, "127.0.0.211", "unbound"),
    ResolverSpec(UNBOUND_QMIN_LABEL, "127.0.0.213", "unbound", True),
)


@dataclass
class Phase:
    """Every resolver's replies to every question over one set of servers."""

    servers: str
    replies: dict[str, dict[Question, Resolved | None]]

    def of(self, label: str) -> dict[Question, Resolved | None]:
        if label not in self.replies:
            pytest.skip("Unbound is not installed (Debian package unbound)")
        return self.replies[label]


# Starts the authoritative servers one by one and yields each with the
# origin of a zone it serves, so that the servers started before a failed
# start are still stopped.
StartServers = Callable[[Path], Iterator[tuple[Peer, str]]]


def require_port_53() -> None:
    """Skip when this process may not bind port 53, and fail when another
    process has bound it."""
    try:
        for server in TOPOLOGY.servers:
            check_port_free(server.address, HIERARCHY_PORT)
    except PermissionError:
        pytest.skip(
            "binding port 53 needs root, and Unbound queries every name server "
            "on port 53"
        )
    except PeerError as exc:
        pytest.fail(str(exc))


def run_phase(servers: str, start_servers: StartServers, folder: Path) -> Phase:
    """Start the servers and every installed resolver, ask every question,
    and stop every process before returning."""
    require_port_53()
    hints = folder / "root.hints"
    hints.write_text(format_root_hints(root_hints(TOPOLOGY)))
    started: list[Peer] = []
    try:
        probes: list[tuple[Peer, str]] = []
        for peer, origin in start_servers(folder):
            started.append(peer)
            probes.append((peer, origin))
        for peer, origin in probes:
            wait_until_replying(peer, origin, "SOA", "IN", authoritative=True)
        resolvers = start_resolvers(hints, folder, started)
        for _, peer in resolvers:
            wait_until_replying(peer)
        return Phase(servers, resolve_all(resolvers, QUESTIONS))
    except PeerError as exc:
        pytest.fail(str(exc))
    finally:
        stop_peers(started)


def start_resolvers(
    hints: Path, folder: Path, started: list[Peer]
) -> list[tuple[str, Peer]]:
    """Start our resolver and, when installed, both Unbound instances.

    Their clients' port is any free one, because only the upstream port
    must be 53.
    """
    unbound = find_program("unbound")
    specs = [spec for spec in RESOLVERS if spec.program == "dns-toy" or unbound]
    port = free_port([spec.address for spec in specs])
    resolvers: list[tuple[str, Peer]] = []
    for spec in specs:
        if spec.program == "dns-toy":
            peer = start_dns_toy_resolver(
                spec.address, port, hints, HIERARCHY_PORT, folder
            )
        else:
            assert unbound is not None
            peer = start_unbound(
                unbound,
                spec.address,
                port,
                hints,
                folder / f"unbound-{spec.address}",
                spec.qname_minimisation,
            )
        started.append(peer)
        resolvers.append((spec.label, peer))
    return resolvers


def start_dns_toy_servers(folder: Path) -> Iterator[tuple[Peer, str]]:
    for server in TOPOLOGY.servers:
        peer = start_dns_toy_server(server, HIERARCHY_PORT, folder)
        yield peer, server.zones[0].origin


def start_nsd_servers(folder: Path) -> Iterator[tuple[Peer, str]]:
    """Start one NSD per server entry, with only that server's zones, so
    that no server answers for a zone that the topology does not give it."""
    nsd = find_program("nsd")
    assert nsd is not None
    for server in TOPOLOGY.servers:
        zones = [(zone.origin, zone.path) for zone in server.zones]
        peer = start_nsd(
            nsd,
            server.name,
            server.address,
            HIERARCHY_PORT,
            zones,
            folder / server.name,
        )
        yield peer, server.zones[0].origin


@pytest.fixture(scope="module")
def over_dns_toy(tmp_path_factory: pytest.TempPathFactory) -> Phase:
    """Every resolver's replies with the hierarchy served by `dns-toy serve`."""
    folder = tmp_path_factory.mktemp("over-dns-toy")
    return run_phase("the dns-toy servers", start_dns_toy_servers, folder)


@pytest.fixture(scope="module")
def over_nsd(tmp_path_factory: pytest.TempPathFactory) -> Phase:
    """Every resolver's replies with the hierarchy served by NSD."""
    if find_program("nsd") is None:
        pytest.skip("NSD is not installed (Debian package nsd)")
    folder = tmp_path_factory.mktemp("over-nsd")
    return run_phase("the NSD servers", start_nsd_servers, folder)


# --- Comparison -------------------------------------------------------------------


@dataclass
class Difference:
    """One field on which two replies to a question differ."""

    question: Question
    field: str
    left: str
    right: str
    reason: str | None = None


@dataclass(frozen=True)
class IntendedDifference:
    """A class of differences that the RFCs allow. `applies` receives the
    question and both replies."""

    fields: tuple[str, ...]
    applies: Callable[[Question, Resolved, Resolved], bool]
    reason: str


# Differences between two resolvers that the RFCs allow. None is known.
INTENDED_DIFFERENCES: tuple[IntendedDifference, ...] = ()

COMPARED_FIELDS = ("rcode", "answer", "negative_soa")


def compare(
    question: Question, left: Resolved | None, right: Resolved | None
) -> list[Difference]:
    """Return the fields on which the replies differ, each marked with the
    intended difference that explains it, if one does."""
    if left is None or right is None:
        return [
            Difference(
                question,
                "reply",
                "timed out" if left is None else "received",
                "timed out" if right is None else "received",
            )
        ]
    differences: list[Difference] = []
    for name in COMPARED_FIELDS:
        mine, theirs = getattr(left, name), getattr(right, name)
        if mine == theirs:
            continue
        if isinstance(mine, frozenset):
            difference = Difference(
                question, name, render(mine - theirs), render(theirs - mine)
            )
        else:
            difference = Difference(question, name, str(mine), str(theirs))
        for intended in INTENDED_DIFFERENCES:
            if name in intended.fields and intended.applies(question, left, right):
                difference.reason = intended.reason
                break
        differences.append(difference)
    return differences


def compare_all(
    left: dict[Question, Resolved | None], right: dict[Question, Resolved | None]
) -> list[Difference]:
    differences: list[Difference] = []
    for question in QUESTIONS:
        differences += compare(question, left.get(question), right.get(question))
    return differences


def render(items: frozenset[RecordKey]) -> str:
    if not items:
        return "-"
    return "; ".join(" ".join(item) for item in sorted(items))


def difference_table(
    differences: Sequence[Difference], left_label: str, right_label: str
) -> str:
    """Format at most MAX_TABLE_ROWS differences as a table. For record
    sets, each side lists the records that only its reply contains."""
    rows = [("question", "field", left_label, right_label)]
    rows += [
        (f"{d.question} ({d.question.kind})", d.field, d.left, d.right)
        for d in differences[:MAX_TABLE_ROWS]
    ]
    widths = [min(50, max(len(row[i]) for row in rows)) for i in range(3)]
    lines = [
        " | ".join([row[i].ljust(widths[i]) for i in range(3)] + [row[3]])
        for row in rows
    ]
    if len(differences) > MAX_TABLE_ROWS:
        lines.append(f"... and {len(differences) - MAX_TABLE_ROWS} more")
    return "\n".join(lines)


def assert_no_unexplained(
    differences: list[Difference], left_label: str, right_label: str, servers: str
) -> None:
    unexplained = [d for d in differences if d.reason is None]
    intended = len(differences) - len(unexplained)
    assert unexplained == [], (
        f"{len(unexplained)} unexplained differences between {left_label} and "
        f"{right_label} with {servers}, in {len(QUESTIONS)} questions "
        f"({intended} intended):\n"
        + difference_table(unexplained, left_label, right_label)
    )


def expected_differences(
    replies: dict[Question, Resolved | None],
) -> list[Difference]:
    differences: list[Difference] = []
    for question in QUESTIONS:
        expected = question.expected
        wanted = Resolved(expected.rcode, expected.answer, expected.negative_soa, ())
        differences += compare(question, replies.get(question), wanted)
    return differences


def ttl_violations(
    replies: dict[Question, Resolved | None],
) -> list[str]:
    """List the records whose TTL exceeds the TTL the zone gives them. The
    SOA of a negative answer may last min(SOA TTL, SOA MINIMUM)."""
    violations: list[str] = []
    for question, reply in replies.items():
        if reply is None:
            continue
        for key, ttl in reply.ttls:
            owner, rdtype, _ = key
            if rdtype == "SOA" and key in reply.negative_soa:
                zone = HIERARCHY.zone_for(dns.name.from_text(owner))
                limit: int | None = zone.negative_ttl
            else:
                limit = HIERARCHY.ttl_of(owner, rdtype)
            if limit is not None and ttl > limit:
                violations.append(f"{question}: {' '.join(key)} TTL {ttl} > {limit}")
    return violations


each_resolver = pytest.mark.parametrize(
    "label",
    [DNS_TOY_LABEL, UNBOUND_LABEL, UNBOUND_QMIN_LABEL],
    ids=["dns-toy", "unbound", "unbound-qmin"],
)
each_unbound = pytest.mark.parametrize(
    "label", [UNBOUND_LABEL, UNBOUND_QMIN_LABEL], ids=["unbound", "unbound-qmin"]
)


# --- Tests: the questions ---------------------------------------------------------


def test_questions_cover_every_kind() -> None:
    kinds = {question.kind.split(",")[0] for question in QUESTIONS}
    rcodes = {question.expected.rcode for question in QUESTIONS}
    nodata = [
        q for q in QUESTIONS if q.expected.rcode == "NOERROR" and not q.expected.answer
    ]

    assert {"owner", "missing type", "empty non-terminal", "DS at a zone cut"} <= kinds
    assert "missing name" in kinds
    assert any(kind.startswith("CNAME to") for kind in kinds)
    assert rcodes == {"NOERROR", "NXDOMAIN"}
    assert nodata, "no question expects NODATA"
    for zone in HIERARCHY.zones:
        assert any(q.name == zone.origin.to_text().lower() for q in QUESTIONS), (
            f"no question about the apex of {zone.origin}"
        )


# --- Tests: part 1, Unbound over our servers --------------------------------------


@each_unbound
def test_unbound_agrees_over_dns_toy(over_dns_toy: Phase, label: str) -> None:
    ours = over_dns_toy.of(DNS_TOY_LABEL)
    theirs = over_dns_toy.of(label)

    differences = compare_all(ours, theirs)

    assert_no_unexplained(differences, DNS_TOY_LABEL, label, over_dns_toy.servers)


@each_resolver
def test_replies_match_zone_data_over_dns_toy(over_dns_toy: Phase, label: str) -> None:
    replies = over_dns_toy.of(label)

    differences = expected_differences(replies)

    assert_no_unexplained(differences, label, "zone data", over_dns_toy.servers)


@each_resolver
def test_ttls_within_zone_over_dns_toy(over_dns_toy: Phase, label: str) -> None:
    replies = over_dns_toy.of(label)

    assert ttl_violations(replies) == []


# --- Tests: part 2, our resolver over NSD -----------------------------------------


def test_dns_toy_resolver_same_over_nsd(over_dns_toy: Phase, over_nsd: Phase) -> None:
    over_ours = over_dns_toy.of(DNS_TOY_LABEL)
    over_theirs = over_nsd.of(DNS_TOY_LABEL)

    differences = compare_all(over_ours, over_theirs)

    assert_no_unexplained(
        differences, over_dns_toy.servers, over_nsd.servers, "our resolver"
    )


@each_unbound
def test_unbound_agrees_over_nsd(over_nsd: Phase, label: str) -> None:
    ours = over_nsd.of(DNS_TOY_LABEL)
    theirs = over_nsd.of(label)

    differences = compare_all(ours, theirs)

    assert_no_unexplained(differences, DNS_TOY_LABEL, label, over_nsd.servers)


@each_resolver
def test_replies_match_zone_data_over_nsd(over_nsd: Phase, label: str) -> None:
    replies = over_nsd.of(label)

    differences = expected_differences(replies)

    assert_no_unexplained(differences, label, "zone data", over_nsd.servers)


@each_resolver
def test_ttls_within_zone_over_nsd(over_nsd: Phase, label: str) -> None:
    replies = over_nsd.of(label)

    assert ttl_violations(replies) == []


# --- Part 3: a forging upstream ---------------------------------------------------

# A tiny hierarchy: the root zone on `dns-toy serve`, the honest zone
# victim. on another `dns-toy serve`, and attacker. on FakeUpstream. The
# fake is authoritative for attacker. alone, so the records it sends for
# victim. and the root are out of its bailiwick and must never be cached.
# A reply must also match its query's ID and question (RFC 5452 section 3).
FORGE_ROOT_ADDRESS = "127.0.0.214"
FAKE_ADDRESS = "127.0.0.215"
VICTIM_ADDRESS = "127.0.0.216"
FORGE_RESOLVER_ADDRESS = "127.0.0.217"
ATTACKER_ADDRESS = "203.0.113.10"  # the address of every name under attacker.
POISON_ADDRESS = "198.51.100.66"  # forged addresses for names outside attacker.
ATTACKER = dns.name.from_text("attacker.")

FORGE_ROOT_ZONE = f"""\
$ORIGIN .
$TTL 3600
@            IN SOA a.root. hostmaster.root. 1 1800 900 604800 300
@            IN NS  a.root.
a.root.      IN A   {FORGE_ROOT_ADDRESS}
attacker.    IN NS  ns.attacker.
ns.attacker. IN A   {FAKE_ADDRESS}
victim.      IN NS  ns.victim.
ns.victim.   IN A   {VICTIM_ADDRESS}
"""
VICTIM_ZONE = f"""\
$ORIGIN victim.
$TTL 3600
@   IN SOA ns.victim. hostmaster.victim. 1 1800 900 604800 300
@   IN NS  ns.victim.
ns  IN A   {VICTIM_ADDRESS}
www IN A   192.0.2.80
"""
ATTACKER_SOA = "ns.attacker. hostmaster.attacker. 1 1800 900 604800 300"


def zone_record_keys(text: str) -> frozenset[RecordKey]:
    zone = dns.zone.from_text(text, relativize=False)
    return frozenset(
        key
        for name, rdataset in zone.iterate_rdatasets()
        for key in record_keys(
            name,
            dns.rdatatype.to_text(rdataset.rdtype),
            frozenset(rdata.to_text().lower() for rdata in rdataset),
        )
    )


# A record outside attacker. that a resolver returns must be one of these.
HONEST_RECORDS = zone_record_keys(FORGE_ROOT_ZONE) | zone_record_keys(VICTIM_ZONE)
# The names that the fake forges, asked after each attack, and the answers
# that the honest servers give for them.
VICTIM_ANSWERS: dict[tuple[str, str], frozenset[RecordKey]] = {
    (owner, rdtype): frozenset(
        key for key in HONEST_RECORDS if key[:2] == (owner, rdtype)
    )
    for owner, rdtype in (
        ("www.victim.", "A"),
        ("ns.victim.", "A"),
        ("victim.", "NS"),
        ("a.root.", "A"),
        (".", "NS"),
    )
}


def rrset(owner: str, rdtype: str, *rdatas: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 3600, "IN", rdtype, *rdatas)


def honest_reply(query: dns.message.Message) -> dns.message.Message:
    """Build the reply of an honest server of attacker.: every name has the
    A record ATTACKER_ADDRESS, and the apex has its SOA and NS RRsets."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    question = query.question[0]
    name, rdtype = question.name.to_text(), question.rdtype
    if name == "ns.attacker." and rdtype == dns.rdatatype.A:
        reply.answer.append(rrset(name, "A", FAKE_ADDRESS))
    elif rdtype == dns.rdatatype.A and question.name != ATTACKER:
        reply.answer.append(rrset(name, "A", ATTACKER_ADDRESS))
    elif question.name == ATTACKER and rdtype == dns.rdatatype.NS:
        reply.answer.append(rrset(name, "NS", "ns.attacker."))
    elif question.name == ATTACKER and rdtype == dns.rdatatype.SOA:
        reply.answer.append(rrset(name, "SOA", ATTACKER_SOA))
    else:
        reply.authority.append(rrset("attacker.", "SOA", ATTACKER_SOA))
    return reply


def non_authoritative_reply(query: dns.message.Message) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.flags &= ~dns.flags.AA
    return reply


def forge_foreign_records(query: dns.message.Message) -> list[bytes]:
    """Return a true answer, with forged records for victim. and the root
    server in the answer, authority and additional sections."""
    reply = honest_reply(query)
    reply.answer.append(rrset("www.victim.", "A", POISON_ADDRESS))
    reply.authority.append(rrset("victim.", "NS", "ns.attacker."))
    reply.additional.append(rrset("ns.victim.", "A", FAKE_ADDRESS))
    reply.additional.append(rrset("a.root.", "A", FAKE_ADDRESS))
    return [reply.to_wire()]


def forge_cname_target(query: dns.message.Message) -> list[bytes]:
    """Return a CNAME into victim., with a forged address for its target."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.answer.append(rrset(query.question[0].name.to_text(), "CNAME", "www.victim."))
    reply.answer.append(rrset("www.victim.", "A", POISON_ADDRESS))
    return [reply.to_wire()]


def forge_sideways_referral(query: dns.message.Message) -> list[bytes]:
    """Return a referral to victim., a zone that attacker. cannot delegate."""
    reply = non_authoritative_reply(query)
    reply.authority.append(rrset("victim.", "NS", "ns.attacker."))
    reply.additional.append(rrset("ns.attacker.", "A", FAKE_ADDRESS))
    return [reply.to_wire()]


def forge_foreign_glue(query: dns.message.Message) -> list[bytes]:
    """Return a referral to a child of attacker. whose server is ns.victim.,
    with a forged address for ns.victim. as glue."""
    reply = non_authoritative_reply(query)
    reply.authority.append(rrset("deep.attacker.", "NS", "ns.victim."))
    reply.additional.append(rrset("ns.victim.", "A", FAKE_ADDRESS))
    return [reply.to_wire()]


def forge_upward_referral(query: dns.message.Message) -> list[bytes]:
    """Return a referral back up to the root, naming the fake as a root
    server."""
    reply = non_authoritative_reply(query)
    reply.authority.append(rrset(".", "NS", "ns.attacker."))
    reply.additional.append(rrset("ns.attacker.", "A", FAKE_ADDRESS))
    return [reply.to_wire()]


def wrong_id(query: dns.message.Message) -> bytes:
    forged = honest_reply(query)
    forged.id = query.id ^ 0x5A5A
    forged.answer = [rrset(query.question[0].name.to_text(), "A", POISON_ADDRESS)]
    forged.answer.append(rrset("www.victim.", "A", POISON_ADDRESS))
    return forged.to_wire()


def wrong_question(query: dns.message.Message) -> bytes:
    other = dns.message.make_query("www.victim.", "A")
    other.id = query.id
    forged = dns.message.make_response(other)
    forged.flags |= dns.flags.AA
    forged.answer.append(rrset("www.victim.", "A", POISON_ADDRESS))
    return forged.to_wire()


def garbage(message_id: int) -> bytes:
    # A header with QR=1 and counts that promise records the datagram does
    # not contain, then bytes that are no valid label.
    counts = b"\x84\x00\x00\x01\x00\x05\x00\x00\x00\x00"
    return message_id.to_bytes(2, "big") + counts + b"\xff" * 20


def garbage_without_id(query: dns.message.Message) -> list[bytes]:
    """Return a one-byte datagram and an undecodable one with another ID."""
    return [b"\x00", garbage(query.id ^ 0x5A5A)]


def forge_wrong_id_first(query: dns.message.Message) -> list[bytes]:
    return [wrong_id(query), honest_reply(query).to_wire()]


def forge_wrong_question_first(query: dns.message.Message) -> list[bytes]:
    return [wrong_question(query), honest_reply(query).to_wire()]


def forge_garbage_first(query: dns.message.Message) -> list[bytes]:
    return [*garbage_without_id(query), honest_reply(query).to_wire()]


def forge_garbage_with_id_first(query: dns.message.Message) -> list[bytes]:
    return [garbage(query.id), honest_reply(query).to_wire()]


def forge_without_true_reply(query: dns.message.Message) -> list[bytes]:
    return [wrong_id(query), wrong_question(query), *garbage_without_id(query)]


def send_honest_reply(query: dns.message.Message) -> list[bytes]:
    return [honest_reply(query).to_wire()]


@dataclass(frozen=True)
class ForgeryCase:
    """One script of the fake, the question that triggers it, and the reply
    our resolver must give its client."""

    label: str  # the label below attacker. that selects the script
    script: Callable[[dns.message.Message], list[bytes]]
    qname: str
    rcode: str
    answer: frozenset[RecordKey]
    # How many times the resolver may send the question to the fake.
    max_fake_queries: int = 1
    # Whether SERVFAIL without an answer is an accepted reply too.
    may_fail: bool = False


def attacker_answer(qname: str) -> frozenset[RecordKey]:
    return frozenset([(qname, "A", ATTACKER_ADDRESS)])


FORGERY_CASES = [
    ForgeryCase(
        "honest",
        send_honest_reply,
        "www.honest.attacker.",
        "NOERROR",
        attacker_answer("www.honest.attacker."),
    ),
    ForgeryCase(
        "foreign-records",
        forge_foreign_records,
        "foreign-records.attacker.",
        "NOERROR",
        attacker_answer("foreign-records.attacker."),
    ),
    # The resolver must follow the CNAME to the honest servers of victim.
    ForgeryCase(
        "cname",
        forge_cname_target,
        "cname.attacker.",
        "NOERROR",
        frozenset([("cname.attacker.", "CNAME", "www.victim.")])
        | VICTIM_ANSWERS[("www.victim.", "A")],
    ),
    ForgeryCase(
        "sideways",
        forge_sideways_referral,
        "sideways.attacker.",
        "SERVFAIL",
        frozenset(),
    ),
    # The resolver ignores the forged glue and looks up ns.victim. from the
    # honest servers. ns.victim. refuses the question, so the lookup fails.
    ForgeryCase(
        "deep", forge_foreign_glue, "host.deep.attacker.", "SERVFAIL", frozenset()
    ),
    ForgeryCase(
        "upward", forge_upward_referral, "upward.attacker.", "SERVFAIL", frozenset()
    ),
    ForgeryCase(
        "wrong-id",
        forge_wrong_id_first,
        "wrong-id.attacker.",
        "NOERROR",
        attacker_answer("wrong-id.attacker."),
    ),
    ForgeryCase(
        "wrong-question",
        forge_wrong_question_first,
        "wrong-question.attacker.",
        "NOERROR",
        attacker_answer("wrong-question.attacker."),
    ),
    ForgeryCase(
        "garbage",
        forge_garbage_first,
        "garbage.attacker.",
        "NOERROR",
        attacker_answer("garbage.attacker."),
    ),
    # A malformed datagram with the query's ID shows that the server replied,
    # but not usably. A resolver may wait on for the true reply or give up
    # on that server at once. dns_toy.transport gives up, and attacker. has
    # no other server, so the lookup fails. Nothing may be cached either way.
    ForgeryCase(
        "garbage-with-id",
        forge_garbage_with_id_first,
        "garbage-with-id.attacker.",
        "NOERROR",
        attacker_answer("garbage-with-id.attacker."),
        may_fail=True,
    ),
    # No true reply ever comes: the resolver times out, retries once
    # (Limits.tries) and answers SERVFAIL.
    ForgeryCase(
        "no-true-reply",
        forge_without_true_reply,
        "no-true-reply.attacker.",
        "SERVFAIL",
        frozenset(),
        max_fake_queries=2,
    ),
]
SCRIPTS = {case.label: case.script for case in FORGERY_CASES}


def run_script(query: dns.message.Message) -> list[bytes]:
    """Choose the script by the label just below attacker. in the question."""
    name = query.question[0].name
    if not name.is_subdomain(ATTACKER) or len(name) <= len(ATTACKER):
        return send_honest_reply(query)
    # Lowercase, because a resolver may randomise the case of the name.
    label = name.labels[-len(ATTACKER) - 1].decode().lower()
    return SCRIPTS.get(label, send_honest_reply)(query)


@dataclass
class Forgery:
    """The running tiny hierarchy: the fake, the port that every server and
    the resolver listen on, and the root hints."""

    fake: FakeUpstream
    port: int
    hints: Path


@pytest.fixture(scope="module")
def forgery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forgery]:
    """The root and victim. on `dns-toy serve`, attacker. on the fake."""
    folder = tmp_path_factory.mktemp("forgery")
    addresses = [FORGE_ROOT_ADDRESS, FAKE_ADDRESS, VICTIM_ADDRESS]
    port = free_port([*addresses, FORGE_RESOLVER_ADDRESS])
    hints = folder / "root.hints"
    hints.write_text(format_root_hints([("a.root.", FORGE_ROOT_ADDRESS)]))
    servers: list[Peer] = []
    fake = FakeUpstream(FAKE_ADDRESS, port, run_script)
    try:
        for name, address, origin, text in (
            ("forgery-root", FORGE_ROOT_ADDRESS, ".", FORGE_ROOT_ZONE),
            ("forgery-victim", VICTIM_ADDRESS, "victim.", VICTIM_ZONE),
        ):
            path = folder / f"{name}.zone"
            path.write_text(text)
            spec = ServerSpec(name, address, (ZoneSpec(origin, path),))
            servers.append(start_dns_toy_server(spec, port, folder))
        for server, origin in zip(servers, (".", "victim.")):
            wait_until_replying(server, origin, "SOA", "IN", authoritative=True)
        fake.start()
        yield Forgery(fake, port, hints)
    except PeerError as exc:
        pytest.fail(str(exc))
    finally:
        fake.stop()
        stop_peers(servers)


def foreign_records(reply: dns.message.Message) -> list[str]:
    """List the records outside attacker. that the honest servers do not
    have, from every section of `reply`."""
    found: list[str] = []
    for section in (reply.answer, reply.authority, reply.additional):
        for key, _ in records_in(section):
            name = dns.name.from_text(key[0])
            if not name.is_subdomain(ATTACKER) and key not in HONEST_RECORDS:
                found.append(" ".join(key))
    return found


@dataclass
class ForgeryResult:
    """What the resolver returned during and after one attack."""

    reply: dns.message.Message | None
    # RD=0 replies about the victim names, from the resolver's cache alone.
    cached: dict[tuple[str, str], dns.message.Message | None]
    # RD=1 replies about the victim names, after the cache was read.
    resolved: dict[tuple[str, str], dns.message.Message | None]


def attack(forgery: Forgery, case: ForgeryCase, folder: Path) -> ForgeryResult:
    """Start a fresh resolver, ask the case's question, read the cache for
    the victim names, resolve them, and stop the resolver."""
    resolver = start_dns_toy_resolver(
        FORGE_RESOLVER_ADDRESS, forgery.port, forgery.hints, forgery.port, folder
    )
    try:
        wait_until_replying(resolver)
        reply = ask(resolver.address, resolver.port, case.qname, "A")
        cached = {
            key: ask(resolver.address, resolver.port, *key, recursion=False)
            for key in VICTIM_ANSWERS
        }
        resolved = {
            key: ask(resolver.address, resolver.port, *key) for key in VICTIM_ANSWERS
        }
    except PeerError as exc:
        pytest.fail(str(exc))
    finally:
        stop_peers([resolver])
    return ForgeryResult(reply, cached, resolved)


# --- Tests: part 3 ------------------------------------------------------------------


@pytest.mark.parametrize("case", FORGERY_CASES, ids=[c.label for c in FORGERY_CASES])
def test_resolver_rejects_forged_data(
    forgery: Forgery, case: ForgeryCase, tmp_path: Path
) -> None:
    forgery.fake.received.clear()

    result = attack(forgery, case, tmp_path)

    assert result.reply is not None, f"{case.qname} A timed out"
    resolved = reduce_reply(result.reply)
    if not (case.may_fail and resolved.rcode == "SERVFAIL"):
        assert resolved.rcode == case.rcode
        assert resolved.answer == case.answer
    assert resolved.answer <= case.answer
    assert foreign_records(result.reply) == []
    for key, cached in result.cached.items():
        assert cached is not None, f"{' '.join(key)} with RD=0 timed out"
        assert foreign_records(cached) == [], f"cached for {' '.join(key)}"
    for key, victim_reply in result.resolved.items():
        assert victim_reply is not None, f"{' '.join(key)} timed out"
        answer = reduce_reply(victim_reply).answer
        assert answer == VICTIM_ANSWERS[key], " ".join(key)
    sent_to_fake = forgery.fake.queries_for(case.qname)
    assert sent_to_fake >= 1, "the question never reached the fake"
    assert sent_to_fake <= case.max_fake_queries
    victim_queries = [
        query.question[0].to_text()
        for query in forgery.fake.received
        if not query.question[0].name.is_subdomain(ATTACKER)
    ]
    assert victim_queries == [], "the fake was asked about names outside attacker."
