"""The resolver service: its replies over a fake network, then real sockets.

The first tests call `ResolverService.respond` and `handle` directly with a
fake hierarchy. The last ones start three authorities and `dns-toy
resolver` as subprocesses on loopback, ask through the resolver with
dnspython, and stop every process by its PID.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from conftest import free_port, stop_processes
from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, RR, DNSRecord
from fakenet import authority, silent
from test_iterator import EXAMPLE_COM, EXAMPLE_COM_1, EXAMPLE_COM_2, Hierarchy

from dns_toy.iterator import Limits
from dns_toy.resolve_command import (
    UsageError,
    parse_question,
    parse_server,
    run_resolve,
)
from dns_toy.resolver_service import ResolverService
from dns_toy.server import Client
from dns_toy.transport import NetworkTransport, TransportError, TransportTimeout

REPO = Path(__file__).resolve().parent.parent
UDP_CLIENT = Client("127.0.0.1", 40000, "udp")


@dataclass
class Service:
    hierarchy: Hierarchy
    service: ResolverService

    def respond(self, query: DNSRecord) -> DNSRecord:
        return asyncio.run(self.service.respond(query))

    def handle(self, wire: bytes) -> bytes | None:
        return asyncio.run(self.service.handle(wire, UDP_CLIENT))


@pytest.fixture
def fake() -> Service:
    hierarchy = Hierarchy()
    return Service(hierarchy, ResolverService(hierarchy.resolver))


def question(name: str, qtype: str = "A", rd: int = 1) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    query.header.rd = rd
    return query


# Replies, over the fake network.


def test_recursive_answer_has_ra_not_aa(fake: Service) -> None:
    query = question("www.example.com")
    reply = fake.respond(query)
    assert reply.header.id == query.header.id
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.ra == 1
    assert reply.header.rd == 1
    assert reply.header.aa == 0
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.80"]


def test_question_echoed_as_sent(fake: Service) -> None:
    reply = fake.respond(question("WWW.Example.COM"))
    assert str(reply.q.qname) == "WWW.Example.COM."


def test_nxdomain_carries_soa(fake: Service) -> None:
    reply = fake.respond(question("nosuch.example.com"))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_servfail_when_servers_fail(fake: Service) -> None:
    fake.hierarchy.network.add(EXAMPLE_COM_1, silent)
    fake.hierarchy.network.add(EXAMPLE_COM_2, silent)
    reply = fake.respond(question("www.example.com"))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert reply.header.ra == 1


def test_rd0_nothing_cached_is_servfail(fake: Service) -> None:
    reply = fake.respond(question("www.example.com", rd=0))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert fake.hierarchy.network.total == 0


def test_rd0_answers_from_cache(fake: Service) -> None:
    fake.respond(question("www.example.com"))
    before = fake.hierarchy.network.total
    fake.hierarchy.clock.advance(60)
    reply = fake.respond(question("www.example.com", rd=0))
    assert fake.hierarchy.network.total == before
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.rd == 0
    assert [(str(rr.rdata), rr.ttl) for rr in reply.rr] == [("192.0.2.80", 3540)]


def test_rd0_refers_to_closest_cached_zone(fake: Service) -> None:
    fake.respond(question("www.example.com"))
    before = fake.hierarchy.network.total
    reply = fake.respond(question("mail.example.com", rd=0))
    assert fake.hierarchy.network.total == before
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.rr == []
    assert {str(rr.rname) for rr in reply.auth} == {"example.com."}
    assert {QTYPE[rr.rtype] for rr in reply.auth} == {"NS"}
    assert {str(rr.rdata) for rr in reply.ar} == {"192.0.2.1", "192.0.2.2"}


def test_rd0_cached_nxdomain(fake: Service) -> None:
    fake.respond(question("nosuch.example.com"))
    reply = fake.respond(question("nosuch.example.com", "TXT", rd=0))
    assert reply.header.rcode == RCODE.NXDOMAIN


@pytest.mark.parametrize(
    ("qclass", "qtype"),
    [(CLASS.CH, "TXT"), (CLASS.IN, "AXFR"), (CLASS.IN, "IXFR")],
)
def test_refused_class_and_transfers(fake: Service, qclass: int, qtype: str) -> None:
    query = question("example.com", qtype)
    query.q.qclass = qclass
    reply = fake.respond(query)
    assert reply.header.rcode == RCODE.REFUSED
    assert fake.hierarchy.network.total == 0


def test_other_opcode_is_notimp(fake: Service) -> None:
    query = question("example.com")
    query.header.opcode = OPCODE.STATUS
    reply = fake.respond(query)
    assert reply.header.rcode == RCODE.NOTIMP
    assert reply.header.opcode == OPCODE.STATUS


def test_edns_echoed_only_when_sent(fake: Service) -> None:
    plain = fake.respond(question("www.example.com"))
    assert [rr for rr in plain.ar if rr.rtype == QTYPE.OPT] == []
    query = question("www.example.com")
    query.add_ar(EDNS0(udp_len=4096))
    with_edns = fake.respond(query)
    options = [rr for rr in with_edns.ar if rr.rtype == QTYPE.OPT]
    assert len(options) == 1
    assert options[0].rclass == 1232


def test_edns_version_1_is_badvers(fake: Service) -> None:
    query = question("www.example.com")
    query.add_ar(EDNS0(udp_len=4096, version=1))
    reply = fake.respond(query)
    options = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    assert len(options) == 1
    # Extended rcode 16 = (upper eight bits 1 in the OPT TTL) << 4 | header 0.
    assert options[0].ttl >> 24 == 1
    assert reply.header.rcode == 0
    assert fake.hierarchy.network.total == 0


def test_undecodable_query_is_formerr(fake: Service) -> None:
    wire = bytes(question("www.example.com").pack())[:-3]
    reply = fake.handle(wire)
    assert reply is not None
    parsed = DNSRecord.parse(reply)
    assert parsed.header.id == int.from_bytes(wire[:2], "big")
    assert parsed.header.rcode == RCODE.FORMERR


def test_reply_sent_to_us_is_dropped(fake: Service) -> None:
    reply = question("www.example.com").reply()
    assert fake.handle(bytes(reply.pack())) is None


def test_large_udp_reply_truncated(fake: Service) -> None:
    big = "".join(f'big IN TXT "{i:02d} {"x" * 200}"\n' for i in range(10))
    fake.hierarchy.network.add(EXAMPLE_COM_1, authority(EXAMPLE_COM + big))
    wire = fake.handle(bytes(question("big.example.com", "TXT").pack()))
    assert wire is not None
    reply = DNSRecord.parse(wire)
    assert len(wire) <= 512
    assert reply.header.tc == 1


def test_identical_queries_share_resolution(fake: Service) -> None:
    async def ask_twice() -> list[DNSRecord]:
        queries = [question("www.example.com"), question("WWW.example.com")]
        return list(await asyncio.gather(*(fake.service.respond(q) for q in queries)))

    replies = asyncio.run(ask_twice())
    assert [len(reply.rr) for reply in replies] == [1, 1]
    assert fake.hierarchy.network.queries[EXAMPLE_COM_1] == 1
    assert fake.hierarchy.network.total == 3


def test_servfail_logged_with_reason(
    fake: Service, caplog: pytest.LogCaptureFixture
) -> None:
    fake.hierarchy.resolver.limits = Limits(max_queries=1)
    with caplog.at_level("INFO", logger="dns_toy.resolver_service"):
        fake.respond(question("www.example.com"))
    assert "query budget of 1 queries used up" in caplog.text


# Real sockets: three authorities and the resolver as subprocesses.

ROOT_ADDRESS = "127.0.0.31"
TLD_ADDRESS = "127.0.0.32"
LEAF_ADDRESS = "127.0.0.33"
RESOLVER_ADDRESS = "127.0.0.30"
ADDRESSES = [ROOT_ADDRESS, TLD_ADDRESS, LEAF_ADDRESS, RESOLVER_ADDRESS]
START_TIMEOUT = 20.0  # seconds for every process to answer a probe
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL

ROOT_ZONE = """\
$ORIGIN .
$TTL 86400
@              IN SOA a.root-servers.test. admin 1 1800 900 604800 300
@              IN NS  a.root-servers.test.
a.root-servers.test. IN A 127.0.0.31
test.          IN NS  ns.nic.test.
ns.nic.test.   IN A   127.0.0.32
"""

TLD_ZONE = """\
$ORIGIN test.
$TTL 86400
@            IN SOA ns.nic admin.nic 1 1800 900 604800 300
@            IN NS  ns.nic
ns.nic       IN A   127.0.0.32
example      IN NS  ns1.example
ns1.example  IN A   127.0.0.33
; A zone whose server's name lies in another zone: no glue here.
other        IN NS  ns1.example.test.
"""

LEAF_ZONE = """\
$ORIGIN example.test.
$TTL 3600
@      IN SOA ns1 admin 1 7200 3600 1209600 60
@      IN NS  ns1
ns1    IN A   127.0.0.33
www    IN A   192.0.2.10
alias  IN CNAME www.other.test.
""" + "".join(f'big IN TXT "{i:02d} {"x" * 200}"\n' for i in range(10))

OTHER_ZONE = """\
$ORIGIN other.test.
$TTL 600
@      IN SOA ns1.example.test. admin 1 7200 3600 1209600 60
@      IN NS  ns1.example.test.
www    IN A   192.0.2.20
"""


@dataclass
class Processes:
    port: int
    children: dict[str, "subprocess.Popen[bytes]"]
    logs: dict[str, Path]

    def log_text(self) -> str:
        return "".join(
            f"\n--- {name}\n{path.read_text(errors='replace')}"
            for name, path in self.logs.items()
        )


def _start(name: str, arguments: list[str], base: Path, processes: Processes) -> None:
    log_path = base / f"{name}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        processes.children[name] = subprocess.Popen(
            [sys.executable, "-m", "dns_toy", *arguments],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    processes.logs[name] = log_path


def _answers(address: str, port: int) -> bool:
    query = dns.message.make_query(".", "NS", flags=0)
    try:
        dns.query.udp(query, address, port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    return True


def _wait_until_ready(processes: Processes) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for name, child in processes.children.items():
        address = {
            "root": ROOT_ADDRESS,
            "tld": TLD_ADDRESS,
            "leaf": LEAF_ADDRESS,
            "resolver": RESOLVER_ADDRESS,
        }[name]
        while not _answers(address, processes.port):
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:{processes.log_text()}")
            time.sleep(0.05)


def _stop(processes: Processes) -> None:
    stop_processes(list(processes.children.values()), STOP_TIMEOUT)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    base = tmp_path_factory.mktemp("resolver")
    port = free_port(ADDRESSES)
    processes = Processes(port, {}, {})
    zones = {
        "root.zone": ROOT_ZONE,
        "test.zone": TLD_ZONE,
        "example.test.zone": LEAF_ZONE,
        "other.test.zone": OTHER_ZONE,
    }
    for file_name, text in zones.items():
        (base / file_name).write_text(text)
    (base / "root.hints").write_text(
        ".  3600000  NS  a.root-servers.test.\n"
        f"a.root-servers.test.  3600000  A  {ROOT_ADDRESS}\n"
    )
    serve = ["serve", "--port", str(port), "--address"]
    try:
        _start("root", [*serve, ROOT_ADDRESS, str(base / "root.zone")], base, processes)
        _start("tld", [*serve, TLD_ADDRESS, str(base / "test.zone")], base, processes)
        leaf_files = [str(base / "example.test.zone"), str(base / "other.test.zone")]
        _start("leaf", [*serve, LEAF_ADDRESS, *leaf_files], base, processes)
        resolver = ["resolver", "--address", RESOLVER_ADDRESS, "--port", str(port)]
        resolver += ["--root-hints", str(base / "root.hints")]
        resolver += ["--server-port", str(port)]
        _start("resolver", resolver, base, processes)
        _wait_until_ready(processes)
        yield processes
    finally:
        _stop(processes)


def ask(
    network: Processes, name: str, rdtype: str = "A", **options: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **options)  # type: ignore[arg-type]
    return dns.query.udp(query, RESOLVER_ADDRESS, port=network.port, timeout=5)


def rdata_texts(reply: dns.message.Message, rdtype: str) -> list[str]:
    expected_type = dns.rdatatype.from_text(rdtype)
    return [
        rdata.to_text()
        for rrset in reply.answer
        if rrset.rdtype == expected_type
        for rdata in rrset
    ]


def test_real_resolution_through_hierarchy(network: Processes) -> None:
    reply = ask(network, "www.example.test")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.RA
    assert not reply.flags & dns.flags.AA
    assert rdata_texts(reply, "A") == ["192.0.2.10"]


def test_real_cname_to_glueless_zone(network: Processes) -> None:
    reply = ask(network, "alias.example.test")
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdata_texts(reply, "CNAME") == ["www.other.test."]
    assert rdata_texts(reply, "A") == ["192.0.2.20"]


def test_real_nxdomain(network: Processes) -> None:
    reply = ask(network, "nosuch.example.test")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.rdtype for rrset in reply.authority] == [dns.rdatatype.SOA]


def test_real_rd0_served_from_cache(network: Processes) -> None:
    ask(network, "www.example.test")
    reply = ask(network, "www.example.test", flags=0)
    assert reply.rcode() == dns.rcode.NOERROR
    assert rdata_texts(reply, "A") == ["192.0.2.10"]


def test_real_large_answer_over_tcp(network: Processes) -> None:
    # The authority truncates at 1232 bytes, so the resolver needs TCP to
    # fetch the RRset, and its own UDP reply to this client is cut to 512.
    reply = ask(network, "big.example.test", "TXT")
    assert reply.flags & dns.flags.TC
    query = dns.message.make_query("big.example.test", "TXT")
    full = dns.query.tcp(query, RESOLVER_ADDRESS, port=network.port, timeout=5)
    assert full.rcode() == dns.rcode.NOERROR
    assert len(rdata_texts(full, "TXT")) == 10


def test_real_edns_echoed_with_own_size(network: Processes) -> None:
    reply = ask(network, "big.example.test", "TXT", use_edns=0, payload=4096)
    assert reply.edns == 0
    assert reply.payload == 1232
    # About 2,100 bytes of TXT do not fit the resolver's 1232-byte limit.
    assert reply.flags & dns.flags.TC


def test_real_formerr_keeps_id(network: Processes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect((RESOLVER_ADDRESS, network.port))
        # A header asking one question, then a name cut short.
        sock.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05abc")
        data = sock.recv(512)
    reply = dns.message.from_wire(data)
    assert reply.id == 0x1234
    assert reply.rcode() == dns.rcode.FORMERR


# The transport, against scripted servers on loopback in the test's own loop.


class _ScriptedUdp(asyncio.DatagramProtocol):
    """Sends every reply that `reply_for` builds for each query received."""

    def __init__(self, reply_for: Callable[[DNSRecord], list[bytes]]) -> None:
        self.reply_for = reply_for
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector event loop's UDP transport does not subclass
        # DatagramTransport (CPython 3.11), so this is a cast, not a check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        assert self.transport is not None
        for reply in self.reply_for(DNSRecord.parse(data)):
            self.transport.sendto(reply, addr)


async def _udp_server(
    reply_for: Callable[[DNSRecord], list[bytes]],
) -> tuple[asyncio.DatagramTransport, _ScriptedUdp, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _ScriptedUdp(reply_for), local_addr=("127.0.0.1", 0)
    )
    return transport, protocol, transport.get_extra_info("sockname")[1]


def _answer_wire(query: DNSRecord, address: str = "192.0.2.1", **flags: int) -> bytes:
    reply = query.reply()
    reply.add_answer(*RR.fromZone(f"{query.q.qname} 60 IN A {address}"))
    for key, value in flags.items():
        setattr(reply.header, key, value)
    return bytes(reply.pack())


def test_transport_skips_bad_datagrams() -> None:
    def reply_for(query: DNSRecord) -> list[bytes]:
        wrong_id = query.reply()
        wrong_id.header.id = (query.header.id + 1) % 65536
        other_question = DNSRecord.question("other.example.com").reply()
        other_question.header.id = query.header.id
        return [
            b"\x00\x01garbage",
            bytes(wrong_id.pack()),
            bytes(other_question.pack()),
            _answer_wire(query),
        ]

    async def scenario() -> DNSRecord:
        server, _, port = await _udp_server(reply_for)
        try:
            query = DNSRecord.question("www.example.com")
            return await NetworkTransport().query(query, "127.0.0.1", port, 2.0)
        finally:
            server.close()

    reply = asyncio.run(scenario())
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.1"]


def test_transport_ignores_other_source() -> None:
    # A reply with the right ID and question, sent from another loopback
    # address first, must lose to the slower reply of the server asked.
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind(("127.0.0.2", 0))
    clients: list[tuple[str, int]] = []

    def reply_for(query: DNSRecord) -> list[bytes]:
        spoofer.sendto(_answer_wire(query, "203.0.113.66"), clients[-1])
        time.sleep(0.05)
        return [_answer_wire(query)]

    class Recording(_ScriptedUdp):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            clients.append(addr)
            super().datagram_received(data, addr)

    async def scenario() -> DNSRecord:
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(
            lambda: Recording(reply_for), local_addr=("127.0.0.1", 0)
        )
        port = server.get_extra_info("sockname")[1]
        try:
            query = DNSRecord.question("www.example.com")
            return await NetworkTransport().query(query, "127.0.0.1", port, 2.0)
        finally:
            server.close()

    try:
        reply = asyncio.run(scenario())
    finally:
        spoofer.close()
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.1"]


def test_transport_times_out_on_silence() -> None:
    async def scenario() -> float:
        server, protocol, port = await _udp_server(lambda query: [])
        started = time.monotonic()
        try:
            with pytest.raises(TransportTimeout):
                query = DNSRecord.question("www.example.com")
                await NetworkTransport().query(query, "127.0.0.1", port, 0.2)
        finally:
            server.close()
        assert protocol.received == 1
        return time.monotonic() - started

    assert 0.2 <= asyncio.run(scenario()) < 1.0


def test_transport_refused_port_is_error() -> None:
    port = free_port(["127.0.0.1"])

    async def scenario() -> None:
        query = DNSRecord.question("www.example.com")
        await NetworkTransport().query(query, "127.0.0.1", port, 2.0)

    with pytest.raises(TransportError) as raised:
        asyncio.run(scenario())
    assert not isinstance(raised.value, TransportTimeout)


async def _tcp_server(port: int, reply_for: Callable[[bytes], bytes]) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int.from_bytes(await reader.readexactly(2), "big")
        writer.write(reply_for(await reader.readexactly(length)))
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


def test_transport_retries_truncated_over_tcp() -> None:
    def tcp_reply(data: bytes) -> bytes:
        wire = _answer_wire(DNSRecord.parse(data), "192.0.2.2")
        return len(wire).to_bytes(2, "big") + wire

    async def scenario() -> DNSRecord:
        udp, _, port = await _udp_server(lambda query: [_answer_wire(query, tc=1)])
        tcp = await _tcp_server(port, tcp_reply)
        try:
            query = DNSRecord.question("www.example.com")
            return await NetworkTransport().query(query, "127.0.0.1", port, 2.0)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    reply = asyncio.run(scenario())
    assert reply.header.tc == 0
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.2"]


def test_transport_rejects_short_tcp_length() -> None:
    async def scenario() -> None:
        udp, _, port = await _udp_server(lambda query: [_answer_wire(query, tc=1)])
        tcp = await _tcp_server(port, lambda data: b"\x00\x05hello")
        try:
            query = DNSRecord.question("www.example.com")
            await NetworkTransport().query(query, "127.0.0.1", port, 2.0)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()

    with pytest.raises(TransportError, match="less than a DNS header"):
        asyncio.run(scenario())


# The `dns-toy resolve` command.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 1053)),
        ("127.0.0.1:5300", ("127.0.0.1", 5300)),
        ("::1", ("::1", 1053)),
        ("[::1]:5300", ("::1", 5300)),
    ],
)
def test_parse_server_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text, 1053) == expected


@pytest.mark.parametrize(
    "text", ["localhost", "127.0.0.1:0", "127.0.0.1:x", "[::1]:99999"]
)
def test_parse_server_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_server(text, 1053)


def test_parse_question_types() -> None:
    assert parse_question("example.com", "mx").qtype == QTYPE.MX
    assert parse_question("example.com", "TYPE65").qtype == 65
    with pytest.raises(UsageError, match="unknown record type"):
        parse_question("example.com", "BOGUS")
    with pytest.raises(UsageError, match="invalid domain name"):
        parse_question("a" * 64 + ".com", "A")


def test_resolve_bad_hints_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.hints")
    assert run_resolve("example.com", "A", None, missing, 53, False) == 2
    assert "root hints file not found" in capsys.readouterr().err


def test_resolve_command_trace(
    network: Processes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hints = tmp_path / "root.hints"
    hints.write_text(f"a.root-servers.test.  3600000  A  {ROOT_ADDRESS}\n")
    status = run_resolve(
        "alias.example.test", "A", None, str(hints), network.port, True
    )
    output = capsys.readouterr().out
    assert status == 0
    assert "start at zone . (root hints)" in output
    assert (
        f"to a.root-servers.test. ({ROOT_ADDRESS}), zone .: referral to test." in output
    )
    assert "CNAME to www.other.test." in output
    # other.test. has no glue, but the address of its server is cached as
    # glue of example.test., so no nested lookup is needed.
    assert "look up" not in output
    assert "zone other.test.: answer with 1 record(s)" in output
    assert "status: NOERROR" in output
    assert "192.0.2.20" in output


def test_resolve_command_via_server(
    network: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f"{RESOLVER_ADDRESS}:{network.port}"
    status = run_resolve("nosuch.example.test", "A", server, "unused", 53, False)
    output = capsys.readouterr().out
    assert status == 0
    assert "status: NXDOMAIN" in output
    assert f";; SERVER: {RESOLVER_ADDRESS}#{network.port}" in output
