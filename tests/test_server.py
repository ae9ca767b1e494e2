"""The authoritative server on real loopback sockets: UDP, TCP, truncation,
malformed queries, the query log, and start-up on a bad zone."""

import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from servers import NameServer, free_port

ADDRESS = "127.0.0.1"
BIG_TXT_COUNT = 40

ZONE = """\
$ORIGIN example.test.
$TTL 300
@     IN SOA ns1 hostmaster 1 3600 600 86400 60
      IN NS  ns1
ns1   IN A   127.0.0.1
www   IN A   192.0.2.80
""" + "".join(
    f'big IN TXT "record {i:02d} padded to make the answer long enough"\n'
    for i in range(BIG_TXT_COUNT)
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NameServer]:
    folder = tmp_path_factory.mktemp("server")
    zone = folder / "example.test.zone"
    zone.write_text(ZONE)
    running = NameServer([zone], ADDRESS, folder / "server.log", "--name", "test-server")
    try:
        running.wait_until_answering("example.test.")
        yield running
    finally:
        running.stop()


def udp(server: NameServer, query: dns.message.Message) -> dns.message.Message:
    return dns.query.udp(query, ADDRESS, port=server.port, timeout=2, ignore_trailing=False)


def test_udp_answer_is_authoritative(server: NameServer) -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=False)
    reply = udp(server, query)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert not reply.flags & dns.flags.RA
    assert [rrset.to_text() for rrset in reply.answer] == ["www.example.test. 300 IN A 192.0.2.80"]


def test_tcp_answer_matches_udp(server: NameServer) -> None:
    query = dns.message.make_query("www.example.test.", "A")
    reply = dns.query.tcp(query, ADDRESS, port=server.port, timeout=2)
    assert reply.answer == udp(server, query).answer


def test_large_answer_truncated_without_edns(server: NameServer) -> None:
    query = dns.message.make_query("big.example.test.", "TXT", use_edns=False)
    reply = udp(server, query)
    assert reply.flags & dns.flags.TC
    assert reply.answer == []


def test_large_answer_truncated_to_edns_size(server: NameServer) -> None:
    small = dns.message.make_query("big.example.test.", "TXT", use_edns=0, payload=1232)
    wire = dns.query.udp(small, ADDRESS, port=server.port, timeout=2).to_wire()
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.TC
    assert len(wire) <= 1232


def test_large_answer_whole_over_tcp(server: NameServer) -> None:
    query = dns.message.make_query("big.example.test.", "TXT", use_edns=False)
    reply = dns.query.tcp(query, ADDRESS, port=server.port, timeout=2)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == BIG_TXT_COUNT


def send_raw(server: NameServer, payload: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (ADDRESS, server.port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def test_undecodable_query_gets_formerr(server: NameServer) -> None:
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    reply = send_raw(server, header + b"\x07example")  # the question is cut short
    assert reply is not None
    ident, flags = struct.unpack_from("!HH", reply)
    assert ident == 0xBEEF
    assert flags & 0x8000
    assert flags & 0x000F == dns.rcode.FORMERR


def test_short_garbage_gets_no_reply(server: NameServer) -> None:
    assert send_raw(server, b"\x01\x02\x03") is None
    # The server is still alive after the garbage.
    query = dns.message.make_query("www.example.test.", "A")
    assert udp(server, query).rcode() == dns.rcode.NOERROR


def test_query_log_line_per_query(server: NameServer) -> None:
    query = dns.message.make_query("WWW.example.test.", "A")
    udp(server, query)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [line for line in server.log.read_text().splitlines() if '"A WWW.example.test."' in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines, server.log.read_text()
    line = lines[-1]
    assert f"{ADDRESS}:" in line
    assert " udp " in line
    assert " NOERROR " in line
    assert "qr,aa" in line
    assert line.endswith("us")


def test_chaos_id_server_over_udp(server: NameServer) -> None:
    query = dns.message.make_query("id.server.", "TXT", rdclass="CH")
    reply = udp(server, query)
    assert [rrset.to_text() for rrset in reply.answer] == ['id.server. 0 CH TXT "test-server"']


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed (Debian package bind9-dnsutils)")
def test_dig_gets_answer(server: NameServer) -> None:
    output = subprocess.run(
        ["dig", f"@{ADDRESS}", "-p", str(server.port), "www.example.test", "A",
         "+norec", "+time=2", "+tries=1"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    assert "status: NOERROR" in output
    assert "flags: qr aa;" in output
    assert "192.0.2.80" in output


def test_sigterm_stops_server_cleanly(tmp_path: Path) -> None:
    zone = tmp_path / "example.test.zone"
    zone.write_text(ZONE)
    running = NameServer([zone], ADDRESS, tmp_path / "server.log")
    try:
        running.wait_until_answering("example.test.")
    finally:
        status = running.stop()
    assert status == 0
    assert "stopped" in running.log.read_text()
    assert "Traceback" not in running.log.read_text()


def test_bad_zone_stops_start_with_line(tmp_path: Path) -> None:
    zone = tmp_path / "broken.zone"
    lines = ZONE.splitlines()
    lines.insert(5, "bad   IN A   1.2.3")  # becomes line 6
    zone.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "dns_toy", "serve", str(zone), "--address", ADDRESS, "--port", str(free_port([ADDRESS]))],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode != 0
    assert result.stderr.startswith(f"{zone}:6: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_zone_file_is_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.zone"
    result = subprocess.run(
        [sys.executable, "-m", "dns_toy", "serve", str(missing), "--port", str(free_port([ADDRESS]))],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
