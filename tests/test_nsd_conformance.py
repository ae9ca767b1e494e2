"""Differential conformance: our authoritative server against NSD.

Each zone set is served twice on loopback, by NSD 4 on NSD_ADDRESS and by
`python -m dns_toy serve` on OURS_ADDRESS, on the same port. A corpus
generated from the zone files (tests/conformance/corpus.py) is sent to both
with RD=0, without EDNS and in part with EDNS, and the replies are compared
field by field. Sections are compared as sets of records, so record order
never counts. Every difference fails the test unless INTENDED_DIFFERENCES
explains it with an RFC reason.

The examples of RFC 1034 section 6.2 are checked against our server alone,
with the answers the RFC gives, updated where a later RFC changed the rule.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from conformance.corpus import RANDOM_CASE, Query, build_corpus, zone_origin
from conftest import free_port
from peers import find_program, stop_process_trees, write_nsd_config

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(__file__).resolve().parent / "conformance"
NSD_ADDRESS = "127.0.0.201"
OURS_ADDRESS = "127.0.0.202"
QUERY_TIMEOUT = 2.0  # seconds for one UDP exchange
START_TIMEOUT = 20.0  # seconds for a server to answer its first query
# A server that lets this many queries of one zone set time out is taken
# to be broken, and the rest of that corpus is not sent.
MAX_TIMEOUTS = 5
EDNS_PAYLOAD = 1232
CORPUS_SEED = "dns-toy-conformance-1"
MIN_CORPUS_SIZE = 2000
MAX_TABLE_ROWS = 150

RFC1034_ROOT = CONFORMANCE / "rfc1034-root.zone"
ZONE_SETS: dict[str, list[Path]] = {
    # Every origin differs, so one server can load all the default zones.
    "default": sorted((REPO / "zones").glob("*.zone")),
    # Parents without their children: their delegations become referrals.
    "parents": [
        REPO / "zones" / "root.zone",
        REPO / "zones" / "com.zone",
        REPO / "zones" / "org.zone",
        REPO / "zones" / "exemplo.pt.zone",
    ],
    "wildcard": [CONFORMANCE / "wildcard.zone"],
    # The zones of the servers in RFC 1034 section 6.
    "c.isi.edu": [RFC1034_ROOT, CONFORMANCE / "rfc1034-edu.zone"],
    "a.isi.edu": [
        RFC1034_ROOT,
        CONFORMANCE / "rfc1034-mil.zone",
        CONFORMANCE / "rfc1034-isi.edu.zone",
    ],
}

# minimal-responses: NSD then leaves the zone's NS RRset out of the
# authority section of positive answers, which the RFCs make optional, so
# the authority sections compare strictly. rrl-ratelimit: 0 because rate
# limiting would drop part of the corpus.
NSD_CONFIG = """\
server:
    ip-address: {address}@{port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}"
    pidfile: "{folder}/nsd.pid"
    logfile: "{folder}/nsd.log"
    verbosity: 1
    hide-version: yes
    rrl-ratelimit: 0
    minimal-responses: yes
    refuse-any: no
    round-robin: no
remote-control:
    control-enable: no
"""

Record = tuple[str, str, str, int, str]
SECTIONS = ("answer", "authority", "additional")


# --- Servers ----------------------------------------------------------------


@dataclass
class ServerProcess:
    """One server process on loopback, its output file and start-up error."""

    label: str
    address: str
    port: int
    process: "subprocess.Popen[bytes]"
    logs: list[Path]
    error: str | None = None

    def output_text(self) -> str:
        """Return the server's output and log files, for failure messages."""
        texts = [
            path.read_text(errors="replace") for path in self.logs if path.exists()
        ]
        return "".join(texts)


@dataclass
class PeerPair:
    """Our server and NSD serving the same zone files on the same port."""

    zone_set: str
    port: int
    origin: str
    ours: ServerProcess
    nsd: ServerProcess | None


def start_ours(zone_set: str, port: int, folder: Path) -> ServerProcess:
    """Start `python -m dns_toy serve` with the zone set on OURS_ADDRESS."""
    zones = [str(path) for path in ZONE_SETS[zone_set]]
    command = [sys.executable, "-m", "dns_toy", "serve", *zones]
    command += ["--address", OURS_ADDRESS, "--port", str(port), "--name", zone_set]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    output = folder / "ours.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess("ours", OURS_ADDRESS, port, process, [output])


def start_nsd(nsd: str, zone_set: str, port: int, folder: Path) -> ServerProcess:
    """Write a throwaway nsd.conf for the zone set and start NSD in the
    foreground on NSD_ADDRESS."""
    zones = [(zone_origin(path), path) for path in ZONE_SETS[zone_set]]
    config_path = write_nsd_config(NSD_CONFIG, NSD_ADDRESS, port, zones, folder)
    output = folder / "nsd.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [nsd, "-d", "-c", str(config_path)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    logs = [output, folder / "nsd.log"]
    return ServerProcess("NSD", NSD_ADDRESS, port, process, logs)


def wait_until_answering(server: ServerProcess, origin: str) -> None:
    """Wait for an authoritative SOA answer from the server. On failure, set
    `server.error` instead of raising, so that other zone sets still run."""
    query = dns.message.make_query(origin, "SOA", flags=0)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.error = (
                f"{server.label} exited with status {server.process.returncode}"
                f" before answering:\n{server.output_text()}"
            )
            return
        try:
            reply = dns.query.udp(query, server.address, 0.2, server.port)
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
            continue
        if reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA:
            return
        time.sleep(0.05)
    server.error = (
        f"{server.label} did not answer {origin} SOA within {START_TIMEOUT} s:\n"
        f"{server.output_text()}"
    )


def stop_servers(servers: list[ServerProcess]) -> None:
    """Stop each server and the processes NSD forks, as
    `peers.stop_process_trees` does, so that no process of this test is left
    when it returns."""
    stop_process_trees([server.process for server in servers])


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerPair]]:
    """Every zone set served by our server and, when installed, by NSD.

    All servers start at once and are always stopped at the end of the
    module. A server that fails to start is reported by the tests of its
    zone set, not here, so the other zone sets still run.
    """
    nsd = find_program("nsd")
    started: list[ServerProcess] = []
    pairs: dict[str, PeerPair] = {}
    try:
        for zone_set, paths in ZONE_SETS.items():
            folder = tmp_path_factory.mktemp(zone_set)
            port = unused_port({pair.port for pair in pairs.values()})
            ours = start_ours(zone_set, port, folder)
            started.append(ours)
            peer = None
            if nsd is not None:
                peer = start_nsd(nsd, zone_set, port, folder)
                started.append(peer)
            origin = zone_origin(paths[0])
            pairs[zone_set] = PeerPair(zone_set, port, origin, ours, peer)
        for pair in pairs.values():
            for server in (pair.ours, pair.nsd):
                if server is not None:
                    wait_until_answering(server, pair.origin)
        yield pairs
    finally:
        stop_servers(started)


def unused_port(assigned: set[int]) -> int:
    """Return a port free on both addresses and not given to another pair,
    whose servers may not have bound it yet."""
    while True:
        port = free_port([NSD_ADDRESS, OURS_ADDRESS])
        if port not in assigned:
            return port


def require_running(server: ServerProcess | None) -> ServerProcess:
    if server is None:
        pytest.skip("NSD is not installed (Debian package nsd); no peer to compare")
    if server.error is not None:
        pytest.fail(server.error)
    return server


# --- Replies ----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """The compared parts of a reply: header fields and sections as sets."""

    rcode: str
    aa: bool
    tc: bool
    answer: frozenset[Record]
    authority: frozenset[Record]
    additional: frozenset[Record]
    edns: str


FIELDS = ("rcode", "aa", "tc", "answer", "authority", "additional", "edns")


def make_query(query: Query) -> dns.message.Message:
    """Build the query with RD=0, and with EDNS(0) only when asked for."""
    if query.edns:
        return dns.message.make_query(
            query.name, query.rdtype, use_edns=0, payload=EDNS_PAYLOAD, flags=0
        )
    return dns.message.make_query(query.name, query.rdtype, use_edns=False, flags=0)


def ask(server: ServerProcess, query: Query) -> Reply | None:
    """Send one query over UDP and return None when it times out."""
    message = make_query(query)
    try:
        reply = dns.query.udp(
            message,
            server.address,
            QUERY_TIMEOUT,
            server.port,
            one_rr_per_rrset=True,
        )
    except dns.exception.Timeout:
        return None
    return summarise(reply)


def summarise(reply: dns.message.Message) -> Reply:
    if reply.edns < 0:
        edns = "none"
    else:
        edns = f"version {reply.edns}, payload {reply.payload}"
    return Reply(
        rcode=dns.rcode.to_text(reply.rcode()),
        aa=bool(reply.flags & dns.flags.AA),
        tc=bool(reply.flags & dns.flags.TC),
        answer=records_of(reply.answer),
        authority=records_of(reply.authority),
        additional=records_of(reply.additional),
        edns=edns,
    )


def records_of(section: list[dns.rrset.RRset]) -> frozenset[Record]:
    """Return a section as (owner, type, class, TTL, rdata) in lower case."""
    return frozenset(
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            dns.rdataclass.to_text(rrset.rdclass),
            rrset.ttl,
            rdata.to_text().lower(),
        )
        for rrset in section
        for rdata in rrset
    )


def record(text: str) -> Record:
    """Parse `owner TTL class type rdata` into the form of records_of()."""
    owner, ttl, rdclass, rdtype, rdata = text.split(None, 4)
    parsed = dns.rdata.from_text(rdclass, rdtype, rdata)
    name = dns.name.from_text(owner).to_text().lower()
    return (name, rdtype.upper(), rdclass.upper(), int(ttl), parsed.to_text().lower())


def records(*texts: str) -> frozenset[Record]:
    return frozenset(record(text) for text in texts)


def record_text(item: Record) -> str:
    owner, rdtype, rdclass, ttl, rdata = item
    return f"{owner} {ttl} {rdclass} {rdtype} {rdata}"


# --- Intended differences -----------------------------------------------------


@dataclass(frozen=True)
class IntendedDifference:
    """A class of differences from NSD that the RFCs allow, or where NSD
    deviates from them. `applies` receives the query, ours and NSD's reply."""

    fields: tuple[str, ...]
    applies: Callable[[Query, Reply, Reply], bool]
    reason: str


def nsd_answers_any_with_one_rrset(query: Query, ours: Reply, nsd: Reply) -> bool:
    """Match QTYPE=ANY replies where NSD returns one RRset of the name and
    ours returns more."""
    rrsets = {(owner, rdtype) for owner, rdtype, *_ in nsd.answer}
    return query.rdtype == "ANY" and len(rrsets) == 1 and nsd.answer < ours.answer


def nsd_omits_target_addresses(query: Query, ours: Reply, nsd: Reply) -> bool:
    """Match replies where NSD's minimal responses leave out the addresses
    of MX and SRV targets. Each extra record of ours must be an address of
    a host that a record of the answer section names."""
    if not ours.answer or not nsd.additional <= ours.additional:
        return False
    targets = {target_name(item) for item in ours.answer}
    extra = ours.additional - nsd.additional
    return all(
        rdtype in ("A", "AAAA") and owner in targets for owner, rdtype, *_ in extra
    )


def target_name(item: Record) -> str | None:
    """Return the host name that an MX, SRV or NS record points to."""
    _, rdtype, _, _, rdata = item
    if rdtype in ("MX", "SRV", "NS"):
        return rdata.split()[-1]
    return None


def nsd_refers_ds_from_ancestor(query: Query, ours: Reply, nsd: Reply) -> bool:
    """Match DS queries at the apex of a zone whose parent zone the server
    does not have. NSD returns a referral from a zone further up, and ours
    returns NODATA with the zone's own SOA."""
    if query.rdtype != "DS":
        return False
    qname = dns.name.from_text(query.name).to_text().lower()
    nsd_refers = (
        not nsd.aa
        and not nsd.answer
        and any(rdtype == "NS" for _, rdtype, *_ in nsd.authority)
    )
    ours_nodata = (
        ours.rcode == "NOERROR"
        and ours.aa
        and not ours.answer
        and {(owner, rdtype) for owner, rdtype, *_ in ours.authority}
        == {(qname, "SOA")}
    )
    return nsd_refers and ours_nodata


INTENDED_DIFFERENCES = (
    IntendedDifference(
        ("answer",),
        nsd_answers_any_with_one_rrset,
        "RFC 8482 section 4.2 lets a server answer QTYPE=ANY with a subset of "
        "the RRsets at the name. NSD 4.6 returns one RRset over UDP and TCP "
        "alike; ours returns them all, as RFC 1034 section 6.2.2 shows.",
    ),
    IntendedDifference(
        ("additional",),
        nsd_omits_target_addresses,
        "RFC 1034 section 4.3.2 step 6 leaves the additional section to the "
        "server's judgement outside referrals. NSD with minimal-responses: "
        "yes drops the addresses of MX and SRV targets, while ours adds the "
        "in-zone addresses, as RFC 1034 section 6.2.3 shows.",
    ),
    IntendedDifference(
        ("aa", "authority", "additional"),
        nsd_refers_ds_from_ancestor,
        "RFC 4035 section 3.1.4.1: a server without recursion that is "
        "authoritative for the child zone but not for its parent MUST answer "
        "a DS query at the cut with an authoritative NODATA from the child's "
        "apex. NSD 4.6 instead refers the query from an ancestor zone it "
        "serves (the root refers to pt. for exemplo.pt. DS).",
    ),
)


# --- Comparison -------------------------------------------------------------


@dataclass
class Difference:
    """One field on which our reply and NSD's reply to a query differ."""

    query: Query
    field: str
    ours: str
    nsd: str
    reason: str | None = None


def compare(query: Query, ours: Reply | None, nsd: Reply | None) -> list[Difference]:
    """Return the fields that differ, each marked with the intended reason
    that explains it, if one does."""
    if ours is None or nsd is None:
        return [
            Difference(
                query,
                "reply",
                "timed out" if ours is None else "received",
                "timed out" if nsd is None else "received",
            )
        ]
    differences: list[Difference] = []
    for name in FIELDS:
        mine, theirs = getattr(ours, name), getattr(nsd, name)
        if mine == theirs:
            continue
        if name in SECTIONS:
            only_ours = render_records(mine - theirs)
            only_nsd = render_records(theirs - mine)
            difference = Difference(query, name, only_ours, only_nsd)
        else:
            difference = Difference(query, name, str(mine), str(theirs))
        for intended in INTENDED_DIFFERENCES:
            if name in intended.fields and intended.applies(query, ours, nsd):
                difference.reason = intended.reason
                break
        differences.append(difference)
    return differences


def render_records(items: frozenset[Record]) -> str:
    if not items:
        return "-"
    return "; ".join(sorted(record_text(item) for item in items))


def run_corpus(
    pair: PeerPair, nsd: ServerProcess, corpus: list[Query]
) -> tuple[list[Difference], int]:
    """Send the queries to both servers and return the differences and the
    number of queries sent.

    Stops early once MAX_TIMEOUTS queries have timed out, so that a dead
    server costs seconds, not the whole corpus.
    """
    differences: list[Difference] = []
    timeouts = 0
    sent = 0
    for query in corpus:
        ours = ask(pair.ours, query)
        theirs = ask(nsd, query)
        sent += 1
        timeouts += (ours is None) + (theirs is None)
        differences.extend(compare(query, ours, theirs))
        if timeouts >= MAX_TIMEOUTS:
            break
    return differences, sent


def difference_table(differences: list[Difference]) -> str:
    """Format differences as a table of at most MAX_TABLE_ROWS rows, after
    a count per field and query kind. For sections, each side lists the
    records that only its reply contains."""
    classes = Counter(
        (d.field, d.query.kind.removesuffix(RANDOM_CASE)) for d in differences
    )
    lines = [
        f"  {count:4d} x {name} ({kind})"
        for (name, kind), count in sorted(classes.items())
    ]
    listed = differences[:MAX_TABLE_ROWS]
    rows = [("query", "field", "ours", "NSD")]
    rows += [(str(d.query), d.field, d.ours, d.nsd) for d in listed]
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(3)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        lines.append(" | ".join(cells))
    if len(differences) > len(listed):
        lines.append(f"... and {len(differences) - len(listed)} more")
    return "\n".join(lines)


# --- Tests --------------------------------------------------------------------


def corpus_for(zone_set: str) -> list[Query]:
    return build_corpus(ZONE_SETS[zone_set], f"{CORPUS_SEED}-{zone_set}")


def test_corpus_size_and_determinism() -> None:
    sizes = {zone_set: len(corpus_for(zone_set)) for zone_set in ZONE_SETS}
    assert sum(sizes.values()) >= MIN_CORPUS_SIZE, sizes
    assert corpus_for("wildcard") == corpus_for("wildcard")
    with_edns = [query for query in corpus_for("wildcard") if query.edns]
    assert with_edns, "the corpus sends no query with EDNS"


@pytest.mark.parametrize("zone_set", list(ZONE_SETS))
def test_replies_match_nsd(peers: dict[str, PeerPair], zone_set: str) -> None:
    pair = peers[zone_set]
    nsd = require_running(pair.nsd)
    require_running(pair.ours)
    corpus = corpus_for(zone_set)

    differences, sent = run_corpus(pair, nsd, corpus)

    unexplained = [d for d in differences if d.reason is None]
    intended = len(differences) - len(unexplained)
    assert unexplained == [], (
        f"{len(unexplained)} unexplained differences from NSD in zone set "
        f"{zone_set} ({sent} of {len(corpus)} queries sent, {intended} "
        f"intended differences):\n" + difference_table(unexplained)
    )
    assert sent == len(corpus)


# --- RFC 1034 section 6.2 -------------------------------------------------------

SRI_NIC_A = (
    "SRI-NIC.ARPA. 86400 IN A 26.0.0.73",
    "SRI-NIC.ARPA. 86400 IN A 10.0.0.51",
)
ROOT_SOA = (
    ". 86400 IN SOA SRI-NIC.ARPA. HOSTMASTER.SRI-NIC.ARPA. 870611 1800 300 604800 86400"
)
USC_ISIC_CNAME = "USC-ISIC.ARPA. 86400 IN CNAME C.ISI.EDU."


@dataclass(frozen=True)
class Rfc1034Example:
    """A query of RFC 1034 section 6.2 and the reply the RFC shows."""

    section: str
    server: str
    qname: str
    qtype: str
    rcode: str = "NOERROR"
    aa: bool = True
    answer: tuple[str, ...] = ()
    authority: tuple[str, ...] = ()
    additional: tuple[str, ...] = ()


RFC1034_EXAMPLES = [
    Rfc1034Example("6.2.1", "c.isi.edu", "SRI-NIC.ARPA.", "A", answer=SRI_NIC_A),
    Rfc1034Example(
        "6.2.2",
        "c.isi.edu",
        "SRI-NIC.ARPA.",
        "ANY",
        answer=SRI_NIC_A
        + (
            "SRI-NIC.ARPA. 86400 IN MX 0 SRI-NIC.ARPA.",
            "SRI-NIC.ARPA. 86400 IN HINFO DEC-2060 TOPS20",
        ),
    ),
    Rfc1034Example(
        "6.2.3",
        "c.isi.edu",
        "SRI-NIC.ARPA.",
        "MX",
        answer=("SRI-NIC.ARPA. 86400 IN MX 0 SRI-NIC.ARPA.",),
        additional=SRI_NIC_A,
    ),
    # The RFC shows an empty authority section. RFC 2308 section 3 later
    # made the zone's SOA mandatory in a NODATA reply.
    Rfc1034Example("6.2.4", "c.isi.edu", "SRI-NIC.ARPA.", "NS", authority=(ROOT_SOA,)),
    # The negative TTL is min(SOA TTL, SOA MINIMUM), RFC 2308 section 3.
    Rfc1034Example(
        "6.2.5",
        "c.isi.edu",
        "SIR-NIC.ARPA.",
        "A",
        rcode="NXDOMAIN",
        authority=(ROOT_SOA,),
    ),
    # C.ISI.EDU does not serve MIL, so the root zone refers the query.
    Rfc1034Example(
        "6.2.6",
        "c.isi.edu",
        "BRL.MIL.",
        "A",
        aa=False,
        authority=(
            "MIL. 86400 IN NS SRI-NIC.ARPA.",
            "MIL. 86400 IN NS A.ISI.EDU.",
        ),
        additional=("A.ISI.EDU. 86400 IN A 26.3.0.103",) + SRI_NIC_A,
    ),
    # A.ISI.EDU serves ISI.EDU, so it completes the chain from its own data.
    Rfc1034Example(
        "6.2.7",
        "a.isi.edu",
        "USC-ISIC.ARPA.",
        "A",
        answer=(USC_ISIC_CNAME, "C.ISI.EDU. 86400 IN A 10.0.0.52"),
    ),
    # C.ISI.EDU has no cache: the target is below the ISI.EDU cut of its
    # EDU zone, so the CNAME comes with a referral (the RFC's second reply).
    Rfc1034Example(
        "6.2.7",
        "c.isi.edu",
        "USC-ISIC.ARPA.",
        "A",
        answer=(USC_ISIC_CNAME,),
        authority=(
            "ISI.EDU. 172800 IN NS VAXA.ISI.EDU.",
            "ISI.EDU. 172800 IN NS A.ISI.EDU.",
            "ISI.EDU. 172800 IN NS VENERA.ISI.EDU.",
        ),
        additional=(
            "VAXA.ISI.EDU. 172800 IN A 10.2.0.27",
            "VAXA.ISI.EDU. 172800 IN A 128.9.0.33",
            "VENERA.ISI.EDU. 172800 IN A 10.1.0.52",
            "VENERA.ISI.EDU. 172800 IN A 128.9.0.32",
            "A.ISI.EDU. 172800 IN A 26.3.0.103",
        ),
    ),
    Rfc1034Example(
        "6.2.8", "c.isi.edu", "USC-ISIC.ARPA.", "CNAME", answer=(USC_ISIC_CNAME,)
    ),
    Rfc1034Example(
        "6.2.8", "a.isi.edu", "USC-ISIC.ARPA.", "CNAME", answer=(USC_ISIC_CNAME,)
    ),
]


@pytest.mark.parametrize(
    "example",
    RFC1034_EXAMPLES,
    ids=[f"{e.section}-{e.qtype}-{e.server}" for e in RFC1034_EXAMPLES],
)
def test_rfc1034_example_query(
    peers: dict[str, PeerPair], example: Rfc1034Example
) -> None:
    ours = require_running(peers[example.server].ours)
    query = Query(example.qname, example.qtype, "RFC 1034 section 6.2")

    reply = ask(ours, query)

    assert reply is not None, f"{query} timed out"
    assert reply.rcode == example.rcode
    assert reply.aa == example.aa
    assert not reply.tc
    assert reply.answer == records(*example.answer)
    assert reply.authority == records(*example.authority)
    assert reply.additional == records(*example.additional)
