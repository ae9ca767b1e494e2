"""Faults injected at a server: the specification, the seeded draws, and
their effect on a real server's replies."""

import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from servers import NameServer

from dns_toy.errors import TopologyError
from dns_toy.faults import Faults, FaultSpecError, parse_faults
from dns_toy.hierarchy import apply_fault_overrides
from dns_toy.topology import load_topology

ADDRESS = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
ZONE = """\
$ORIGIN fault.test.
$TTL 60
@    IN SOA ns hostmaster 1 3600 600 86400 30
     IN NS  ns
ns   IN A   127.0.0.1
www  IN A   192.0.2.1
"""


def test_spec_round_trip() -> None:
    faults = parse_faults("delay=200,jitter=50,drop=0.25,seed=7,servfail")
    assert faults.describe() == "delay=200,jitter=50,drop=0.25,seed=7,servfail"
    assert faults.to_arguments() == [
        "--delay", "200", "--jitter", "50", "--drop", "0.25", "--seed", "7", "--servfail",
    ]


def test_empty_spec_is_no_fault() -> None:
    assert not parse_faults("").active
    assert parse_faults("none").describe() == "none"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dleay=3", "unknown fault 'dleay=3'"),
        ("drop=1.5", "drop must be a fraction from 0 to 1, not 1.5"),
        ("delay=soon", "invalid value in fault 'delay=soon'"),
    ],
)
def test_bad_spec_rejected(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as error:
        parse_faults(spec)
    assert str(error.value).startswith(message)


def test_seeded_drops_repeat() -> None:
    draws_a = Faults(drop=0.3, seed=11)
    draws_b = Faults(drop=0.3, seed=11)
    sequence_a = [draws_a.decide().drop for _ in range(200)]
    sequence_b = [draws_b.decide().drop for _ in range(200)]
    assert sequence_a == sequence_b
    # About 30 % of 200 draws; the seed fixes the count exactly.
    assert 40 <= sum(sequence_a) <= 80


def test_jitter_stays_in_range() -> None:
    faults = Faults(delay_ms=100, jitter_ms=40, seed=3)
    delays = [faults.decide().delay for _ in range(200)]
    assert min(delays) >= 0.060
    assert max(delays) <= 0.140
    assert len(set(delays)) > 100


def test_up_fault_override_sets_server() -> None:
    topology = load_topology(REPO / "zones" / "topology.toml")
    changed = apply_fault_overrides(topology, ["ns1.example.com:drop=0.5"])
    faults = {server.name: server.faults for server in changed.servers}
    assert faults["ns1.example.com"] == "drop=0.5"
    assert faults["ns2.example.com"] == ""


def test_up_fault_override_unknown_server() -> None:
    topology = load_topology(REPO / "zones" / "topology.toml")
    with pytest.raises(TopologyError) as error:
        apply_fault_overrides(topology, ["ns9.example.com:drop=0.5"])
    assert "expected SERVER:SPEC" in str(error.value)


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "fault.test.zone"
    path.write_text(ZONE)
    return path


def start(zone_file: Path, *options: str) -> NameServer:
    server = NameServer([zone_file], ADDRESS, zone_file.parent / "server.log", "--name", "faulty", *options)
    query = dns.message.make_query("id.server.", "TXT", rdclass="CH")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            dns.query.udp(query, ADDRESS, port=server.port, timeout=0.2)
            return server
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    server.stop()
    raise AssertionError(server.log.read_text())


@pytest.fixture
def faulty(zone_file: Path, request: pytest.FixtureRequest) -> Iterator[NameServer]:
    server = start(zone_file, *request.param)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("faulty", [["--servfail"]], indirect=True)
def test_servfail_fault(faulty: NameServer) -> None:
    assert faulty.query("www.fault.test.").rcode() == dns.rcode.SERVFAIL


@pytest.mark.parametrize("faulty", [["--refuse"]], indirect=True)
def test_refuse_fault(faulty: NameServer) -> None:
    assert faulty.query("www.fault.test.").rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize("faulty", [["--truncate"]], indirect=True)
def test_truncate_fault_udp_only(faulty: NameServer) -> None:
    reply = faulty.query("www.fault.test.")
    assert reply.flags & dns.flags.TC
    assert reply.flags & dns.flags.AA  # the real reply's header, emptied
    assert not reply.flags & dns.flags.AD
    assert reply.answer == []
    query = dns.message.make_query("www.fault.test.", "A")
    whole = dns.query.tcp(query, ADDRESS, port=faulty.port, timeout=2)
    assert not whole.flags & dns.flags.TC
    assert whole.answer[0][0].to_text() == "192.0.2.1"


@pytest.mark.parametrize("faulty", [["--drop", "1"]], indirect=True)
def test_drop_fault_spares_chaos_id(faulty: NameServer) -> None:
    with pytest.raises(dns.exception.Timeout):
        faulty.query("www.fault.test.")
    identity = dns.message.make_query("id.server.", "TXT", rdclass="CH")
    reply = dns.query.udp(identity, ADDRESS, port=faulty.port, timeout=2)
    assert reply.answer[0][0].to_text() == '"faulty"'


@pytest.mark.parametrize("faulty", [["--delay", "200"]], indirect=True)
def test_delay_fault_holds_reply(faulty: NameServer) -> None:
    started = time.monotonic()
    reply = faulty.query("www.fault.test.")
    assert time.monotonic() - started >= 0.19
    assert reply.rcode() == dns.rcode.NOERROR


def test_bad_fault_option_is_clear_error(zone_file: Path) -> None:
    server = NameServer([zone_file], ADDRESS, zone_file.parent / "bad.log", "--drop", "2")
    assert server.process.wait(timeout=30) == 2
    output = server.log.read_text()
    assert "error: drop must be a fraction from 0 to 1, not 2.0" in output
    assert "Traceback" not in output
