"""Bad input of every kind, against real dns-toy processes on loopback.

The standard: each bad input gets a clear error or the reply an RFC
requires. It never gets a crash, a hang, a traceback or a server that stops
answering. The file covers four kinds of input:

1. malformed queries over UDP and TCP, sent to an authoritative server and
   to the resolver;
2. broken zone files, given to `check-zone` and to `serve`;
3. a hierarchy with broken delegations and a hostile name server, behind
   the resolver;
4. bad command-line arguments.

Every server listens on a 127.0.0.x address on one port in 40000-50000 and
is stopped by its PID when its fixture ends.
"""

import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from conftest import free_port, stop_process
from dnslib import (
    CNAME,
    NS,
    QTYPE,
    RCODE,
    RD,
    RR,
    SOA,
    A,
    DNSError,
    DNSLabel,
    DNSRecord,
)

from dns_toy import server as server_module

REPO = Path(__file__).resolve().parent.parent
PORT_RANGE = (40000, 50000)
START_TIMEOUT = 15.0  # seconds for a server to answer its first query
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
REPLY_TIMEOUT = 2.0  # seconds to wait for one reply
# A silent server costs the resolver its timeout times its tries
# (dns_toy.iterator.Limits), a few seconds, and 6 s leaves room for the rest
# of a resolution.
RESOLUTION_DEADLINE = 6.0
CLI_TIMEOUT = 20.0  # seconds for one command that should fail at once

AUTHORITY_ADDRESS = "127.0.0.19"
RESOLVER_ADDRESS = "127.0.0.20"
ROOT_ADDRESS = "127.0.0.21"
TLD_ADDRESS = "127.0.0.22"
GOOD_ADDRESS = "127.0.0.23"
CNAME_ADDRESS = "127.0.0.24"
DEAD_ADDRESS = "127.0.0.25"  # nothing listens here
SILENT_ADDRESS = "127.0.0.26"  # sockets that never reply
ROGUE_ADDRESS = "127.0.0.27"  # a name server that sends broken replies
ODD_ADDRESS = "127.0.0.28"  # a name server that sends odd but decodable data
SPARE_ADDRESS = "127.0.0.18"  # for commands that should fail before binding

MAX_TTL_RFC2181 = 2**31 - 1
TRACEBACK = "Traceback (most recent call last)"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")


# Processes, ports and logs.


class Log:
    """A child process's output file, read in slices after a mark."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> str:
        with self.path.open("rb") as stream:
            stream.seek(mark)
            return stream.read().decode("utf-8", "replace")

    def text(self) -> str:
        return self.since(0)


class Child:
    """One `python -m dns_toy` process with its output in a log file."""

    def __init__(self, arguments: list[str], log_path: Path) -> None:
        self.log = Log(log_path)
        self.arguments = arguments
        env = {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "PATH": "/usr/bin:/bin",
        }
        with log_path.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dns_toy", *arguments],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_until_answering(self, address: str, port: int, probe: str) -> None:
        query = dns.message.make_query(probe, "SOA")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                message = f"{self.arguments} exited with status {status}"
                raise AssertionError(f"{message}:\n{self.log.text()}")
            try:
                dns.query.udp(query, address, port=port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        message = f"{self.arguments} did not reply within {START_TIMEOUT} s"
        raise AssertionError(f"{message}:\n{self.log.text()}")

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL after STOP_TIMEOUT."""
        stop_process(self.process, STOP_TIMEOUT)


def run_cli(
    *arguments: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run one `python -m dns_toy` command; a command that outlives `timeout`
    is killed by subprocess.run and reported as exit status None."""
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "dns_toy", *arguments],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or b""
        errors = expired.stderr or b""
        return subprocess.CompletedProcess(
            expired.cmd,
            None,  # type: ignore[arg-type]
            output.decode("utf-8", "replace") if isinstance(output, bytes) else output,
            errors.decode("utf-8", "replace") if isinstance(errors, bytes) else errors,
        )


# Wire format, written by hand so that it can be wrong on purpose.


def header(
    ident: int = 0x1234,
    flags: int = 0x0100,
    qdcount: int = 1,
    ancount: int = 0,
    nscount: int = 0,
    arcount: int = 0,
) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qdcount, ancount, nscount, arcount)


def wire_name(name: str | bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    labels = [label for label in raw.split(b".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def question(name: str | bytes, qtype: int = QTYPE.A, qclass: int = 1) -> bytes:
    return wire_name(name) + struct.pack("!HH", qtype, qclass)


def opt_record(
    size: int = 1232, version: int = 0, rdata: bytes = b"", owner: bytes = b"\0"
) -> bytes:
    return (
        owner
        + struct.pack("!HHBBHH", QTYPE.OPT, size, 0, version, 0, len(rdata))
        + rdata
    )


def udp_exchange(
    address: str, port: int, payload: bytes, timeout: float = REPLY_TIMEOUT
) -> bytes | None:
    """Send one datagram and return the reply, or None when none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (address, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def read_exactly(sock: socket.socket, count: int) -> bytes | None:
    """Read `count` octets, or return None when the peer closes first."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_tcp_message(sock: socket.socket) -> bytes | None:
    """Read one length-prefixed message; None when the server closed."""
    prefix = read_exactly(sock, 2)
    if prefix is None:
        return None
    return read_exactly(sock, struct.unpack("!H", prefix)[0])


def tcp_frame(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def tcp_exchange(
    address: str, port: int, payload: bytes, timeout: float = REPLY_TIMEOUT
) -> bytes | None:
    """Send one framed message over a new connection; None when the server
    closed it without a reply or sent nothing within `timeout`."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(tcp_frame(payload))
        try:
            return read_tcp_message(sock)
        except (TimeoutError, ConnectionResetError):
            return None


def exchange(target: "Target", transport: str, payload: bytes) -> bytes | None:
    if transport == "udp":
        return udp_exchange(target.address, target.port, payload)
    return tcp_exchange(target.address, target.port, payload)


def reply_id(reply: bytes) -> int:
    return struct.unpack_from("!H", reply)[0]


def reply_flags(reply: bytes) -> int:
    return struct.unpack_from("!H", reply, 2)[0]


def reply_rcode(reply: bytes) -> int:
    return reply_flags(reply) & 0x000F


def rcode_text(reply: bytes) -> str:
    return dns.rcode.to_text(dns.rcode.Rcode(reply_rcode(reply)))


# Targets: the authoritative server and the resolver.


@dataclass
class Target:
    """A server under attack and a name that gets NOERROR while it works."""

    label: str
    address: str
    port: int
    log: Log
    good_name: str

    def good_query(self, ident: int = 0x4242) -> bytes:
        return header(ident) + question(self.good_name)

    def assert_answering(self) -> None:
        """Check that a normal query still gets NOERROR over UDP and TCP."""
        for transport in ("udp", "tcp"):
            reply = exchange(self, transport, self.good_query())
            assert reply is not None, f"{self.label} stopped answering over {transport}"
            assert reply_id(reply) == 0x4242
            assert reply_rcode(reply) == RCODE.NOERROR, f"{self.label} over {transport}"


AUTHORITY_ZONE = (
    """\
$ORIGIN example.test.
$TTL 300
@     IN SOA ns1 hostmaster 1 3600 600 86400 60
      IN NS  ns1
ns1   IN A   127.0.0.19
www   IN A   192.0.2.80
"""
    + "".join(
        f'mid IN TXT "mid record {i} padded so that eight of them pass 512 octets"\n'
        for i in range(8)
    )
    + "".join(
        f'big IN TXT "big record {i:02d} padded so that sixty of them pass 1232 octets"\n'
        for i in range(60)
    )
)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("authority")
    zone = folder / "example.test.zone"
    zone.write_text(AUTHORITY_ZONE)
    port = free_port([AUTHORITY_ADDRESS], PORT_RANGE)
    arguments = [
        "serve",
        str(zone),
        "--address",
        AUTHORITY_ADDRESS,
        "--port",
        str(port),
    ]
    child = Child(arguments + ["--name", "attacked"], folder / "serve.log")
    try:
        child.wait_until_answering(AUTHORITY_ADDRESS, port, "example.test.")
        yield Target(
            "authority", AUTHORITY_ADDRESS, port, child.log, "www.example.test"
        )
    finally:
        child.stop()


# The hierarchy behind the resolver. Every delegation below test. and other.
# is broken in its own way, except good.test.

ROOT_ZONE = f"""\
$ORIGIN .
$TTL 300
@         IN SOA a.root. hostmaster.root. 1 3600 600 86400 60
          IN NS  a.root.
a.root.   IN A   {ROOT_ADDRESS}
test.     IN NS  ns.test.
ns.test.  IN A   {TLD_ADDRESS}
other.    IN NS  ns.other.
ns.other. IN A   {TLD_ADDRESS}
"""

TEST_ZONE = f"""\
$ORIGIN test.
$TTL 300
@        IN SOA ns hostmaster 1 3600 600 86400 60
         IN NS  ns
ns       IN A   {TLD_ADDRESS}
good     IN NS  ns.good
ns.good  IN A   {GOOD_ADDRESS}
; x.cnamea.test. and x.cnameb.other. are CNAMEs of each other.
cnamea   IN NS  ns.good
; a.test. and b.other. name each other's servers as theirs, without glue.
a        IN NS  ns.b.other.
dead     IN NS  ns.dead
ns.dead  IN A   {DEAD_ADDRESS}
silent   IN NS  ns.silent
ns.silent IN A  {SILENT_ADDRESS}
; The server at GOOD_ADDRESS does not serve lame.test., so it replies REFUSED.
lame     IN NS  ns.lame
ns.lame  IN A   {GOOD_ADDRESS}
; Delegated to this very server, which refers the resolver back to itself.
self     IN NS  ns.self
ns.self  IN A   {TLD_ADDRESS}
; Delegated to the resolver itself.
loop     IN NS  ns.loop
ns.loop  IN A   {RESOLVER_ADDRESS}
rogue    IN NS  ns.rogue
ns.rogue IN A   {ROGUE_ADDRESS}
; A resolver may stop asking a server that sent broken replies, so the odd
; but decodable data comes from another server.
odd      IN NS  ns.odd
ns.odd   IN A   {ODD_ADDRESS}
"""

OTHER_ZONE = f"""\
$ORIGIN other.
$TTL 300
@         IN SOA ns hostmaster 1 3600 600 86400 60
          IN NS  ns
ns        IN A   {TLD_ADDRESS}
b         IN NS  ns.a.test.
cnameb    IN NS  ns.cnameb
ns.cnameb IN A   {CNAME_ADDRESS}
"""

GOOD_ZONE = f"""\
$ORIGIN good.test.
$TTL 300
@    IN SOA ns hostmaster 1 3600 600 86400 60
     IN NS  ns
ns   IN A   {GOOD_ADDRESS}
www  IN A   192.0.2.1
"""

CNAMEA_ZONE = """\
$ORIGIN cnamea.test.
$TTL 300
@    IN SOA ns.good.test. hostmaster.good.test. 1 3600 600 86400 60
     IN NS  ns.good.test.
x    IN CNAME x.cnameb.other.
"""

CNAMEB_ZONE = f"""\
$ORIGIN cnameb.other.
$TTL 300
@    IN SOA ns hostmaster 1 3600 600 86400 60
     IN NS  ns
ns   IN A   {CNAME_ADDRESS}
x    IN CNAME x.cnamea.test.
"""

# The NSEC rdata of a hostile reply: a next name and no type bitmap at all.
NSEC_WITHOUT_BITMAP = b"\x04next\x03odd\x04test\x00"
ROGUE_TTL = 0xFFFFFFFF


class SilentServer:
    """UDP and TCP sockets that take queries and never answer them."""

    def __init__(self, address: str, port: int) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((address, port))
        self.tcp.listen(16)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


class RogueServer:
    """A name server for any zone, that sends broken or odd replies.

    The first label of the query name picks the reply:

    - `nsec`: an NSEC record without a type bitmap;
    - `bigttl`: an A record with TTL 2**32-1;
    - `chainN`: a CNAME to chainN+1;
    - `wrongid`: the wrong ID;
    - `garbage`: undecodable bytes;
    - `formerr`: rcode FORMERR;
    - `tc*`: TC=1 over UDP. Over TCP, `tcclose` gets a closed connection,
      `tcshort` a length prefix longer than what follows, `tcgarbage`
      undecodable bytes and `tctc` another TC=1 reply.

    The zone apex gets its NS record or NODATA, for resolvers that minimise
    query names. Any other name gets an A record.
    """

    def __init__(self, address: str, port: int) -> None:
        self.stopping = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((address, port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=2)
        self.udp.close()
        self.tcp.close()

    def _reply(self, query: DNSRecord) -> bytes:
        qname = query.questions[0].qname
        first = str(qname).split(".")[0].lower()
        reply = query.reply()
        reply.header.aa = 1
        if len(qname.label) <= 2:
            self._answer_apex(reply)
        elif first == "nsec":
            reply.add_answer(
                RR(qname, QTYPE.NSEC, ttl=60, rdata=RD(NSEC_WITHOUT_BITMAP))
            )
        elif first == "bigttl":
            reply.add_answer(RR(qname, QTYPE.A, ttl=ROGUE_TTL, rdata=A("192.0.2.7")))
        elif first.startswith("chain") and first[5:].isdigit():
            following = f"chain{int(first[5:]) + 1}".encode()
            target = DNSLabel((following, *qname.label[1:]))
            reply.add_answer(RR(qname, QTYPE.CNAME, ttl=60, rdata=CNAME(target)))
        elif first == "wrongid":
            reply.header.id ^= 1
        elif first == "garbage":
            return b"\x00\x01garbage"
        elif first == "formerr":
            reply.header.rcode = RCODE.FORMERR
        elif first.startswith("tc"):
            reply.header.tc = 1
        else:
            reply.add_answer(RR(qname, QTYPE.A, ttl=60, rdata=A("192.0.2.99")))
        return bytes(reply.pack())

    @staticmethod
    def _answer_apex(reply: DNSRecord) -> None:
        question = reply.questions[0]
        server = DNSLabel((b"ns", *question.qname.label))
        if question.qtype == QTYPE.NS:
            reply.add_answer(RR(question.qname, QTYPE.NS, ttl=60, rdata=NS(server)))
            return
        times = (1, 3600, 600, 86400, 60)
        soa = SOA(server, DNSLabel((b"hostmaster", *question.qname.label)), times)
        reply.add_auth(RR(question.qname, QTYPE.SOA, ttl=60, rdata=soa))

    def _serve_udp(self) -> None:
        while not self.stopping.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            query = _parse_or_none(data)
            if query is not None:
                self.udp.sendto(self._reply(query), peer)

    def _serve_tcp(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                self._answer_tcp(connection)

    def _answer_tcp(self, connection: socket.socket) -> None:
        try:
            data = read_tcp_message(connection)
        except OSError:
            return
        query = None if data is None else _parse_or_none(data)
        if query is None:
            return
        first = str(query.questions[0].qname).split(".")[0].lower()
        if first == "tcclose":
            return
        if first == "tcshort":
            connection.sendall(b"\x01\x00" + b"\x00" * 10)
        elif first == "tcgarbage":
            connection.sendall(tcp_frame(b"\xff" * 14))
        else:
            connection.sendall(tcp_frame(self._reply(query)))


def _parse_or_none(data: bytes) -> DNSRecord | None:
    """Decode a query, or return None: a rogue server ignores what it cannot read."""
    try:
        return DNSRecord.parse(data)
    except DNSError:
        return None


@dataclass
class Hierarchy:
    """The resolver and the servers behind it."""

    resolver: Target
    port: int
    hints: Path
    rogue: RogueServer
    odd: RogueServer


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """Start the servers of the broken hierarchy and the resolver in front."""
    folder = tmp_path_factory.mktemp("hierarchy")
    zones = {
        "root.zone": ROOT_ZONE,
        "test.zone": TEST_ZONE,
        "other.zone": OTHER_ZONE,
        "good.test.zone": GOOD_ZONE,
        "cnamea.test.zone": CNAMEA_ZONE,
        "cnameb.other.zone": CNAMEB_ZONE,
    }
    for name, text in zones.items():
        (folder / name).write_text(text)

    hints = folder / "root.hints"
    hints.write_text(f".  3600000 NS a.root.\na.root.  3600000 A {ROOT_ADDRESS}\n")
    addresses = [
        RESOLVER_ADDRESS,
        ROOT_ADDRESS,
        TLD_ADDRESS,
        GOOD_ADDRESS,
        CNAME_ADDRESS,
        DEAD_ADDRESS,
        SILENT_ADDRESS,
        ROGUE_ADDRESS,
        ODD_ADDRESS,
    ]
    port = free_port(addresses, PORT_RANGE)

    servers = [
        (ROOT_ADDRESS, ".", ["root.zone"]),
        (TLD_ADDRESS, "test.", ["test.zone", "other.zone"]),
        (GOOD_ADDRESS, "good.test.", ["good.test.zone", "cnamea.test.zone"]),
        (CNAME_ADDRESS, "cnameb.other.", ["cnameb.other.zone"]),
    ]

    children: list[tuple[Child, str, str]] = []
    silent = SilentServer(SILENT_ADDRESS, port)
    rogue = RogueServer(ROGUE_ADDRESS, port)
    odd = RogueServer(ODD_ADDRESS, port)
    try:
        for address, probe, files in servers:
            arguments = ["serve", *[str(folder / f) for f in files]]
            arguments += ["--address", address, "--port", str(port)]
            children.append(
                (Child(arguments, folder / f"{address}.log"), address, probe)
            )
        arguments = ["resolver", "--address", RESOLVER_ADDRESS, "--port", str(port)]
        arguments += ["--root-hints", str(hints), "--server-port", str(port)]
        resolver = Child(arguments, folder / "resolver.log")
        children.append((resolver, RESOLVER_ADDRESS, "."))

        for child, address, probe in children:
            child.wait_until_answering(address, port, probe)
        target = Target(
            "resolver", RESOLVER_ADDRESS, port, resolver.log, "www.good.test"
        )
        yield Hierarchy(target, port, hints, rogue, odd)
    finally:
        for child, _, _ in children:
            child.stop()
        rogue.close()
        odd.close()
        silent.close()


@pytest.fixture(params=["authority", "resolver"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each of the two servers in turn."""
    if request.param == "authority":
        return request.getfixturevalue("authority")
    return request.getfixturevalue("hierarchy").resolver


# 1. Malformed queries.

LONG_LABEL = b"a" * 64
# Four 63-octet labels and one of 5 octets: 4 * 64 + 6 + 1 = 263 octets.
LONG_NAME = (b"\x3f" + b"a" * 63) * 4 + b"\x05bbbbb\x00"

FORMERR_CASES = {
    "qdcount_0": header(qdcount=0),
    "qdcount_2_one_question": header(qdcount=2) + question("www.example.test"),
    "qdcount_65535": header(qdcount=65535) + question("www.example.test"),
    "question_cut_short": header() + question("www.example.test")[:-2],
    "ancount_lies": header(ancount=1) + question("www.example.test"),
    "pointer_loop": header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
    "pointer_forward": header()
    + b"\xc0\x12"
    + struct.pack("!HH", 1, 1)
    + wire_name("a.test"),
    # The top bits 01 mark an extended label type, which RFC 6891 retired.
    "extended_label_type": header() + b"\x41a\x00" + struct.pack("!HH", 1, 1),
    "label_longer_than_63": header()
    + b"\x40"
    + LONG_LABEL
    + b"\x00"
    + struct.pack("!HH", 1, 1),
    "name_longer_than_255": header() + LONG_NAME + struct.pack("!HH", 1, 1),
    "two_opt_records": header(arcount=2)
    + question("www.example.test")
    + opt_record()
    + opt_record(),
    # RFC 6891 section 6.1.1: more than one OPT RR anywhere in the message.
    "opt_in_authority_and_additional": header(nscount=1, arcount=1)
    + question("www.example.test")
    + opt_record()
    + opt_record(),
    # RFC 6891 section 6.1.1: the OPT RR goes in the additional section.
    "opt_in_answer_section": header(ancount=1)
    + question("www.example.test")
    + opt_record(),
    # RFC 6891 section 6.1.2: the OPT owner MUST be the root.
    "opt_owner_not_root": header(arcount=1)
    + question("www.example.test")
    + opt_record(owner=b"\x01a\x00"),
    # One octet of rdata cannot hold an option's 4-octet code and length.
    "opt_option_cut_short": header(arcount=1)
    + question("www.example.test")
    + opt_record(rdata=b"\x00"),
    "opt_option_length_overruns": header(arcount=1)
    + question("www.example.test")
    + opt_record(rdata=b"\x00\x0a\x00\x05abc"),
}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("case", list(FORMERR_CASES))
def test_malformed_query_gets_formerr(
    target: Target, case: str, transport: str
) -> None:
    mark = target.log.mark()
    reply = exchange(target, transport, FORMERR_CASES[case])
    assert reply is not None, "no reply to a malformed query with a readable header"
    assert reply_id(reply) == 0x1234
    assert reply_flags(reply) & 0x8000, "QR=0 in the reply"
    assert rcode_text(reply) == "FORMERR"
    assert TRACEBACK not in target.log.since(mark)
    target.assert_answering()


@pytest.mark.parametrize(
    "payload", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"]
)
def test_short_datagram_gets_no_reply(target: Target, payload: bytes) -> None:
    assert udp_exchange(target.address, target.port, payload, timeout=0.3) is None
    target.assert_answering()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(
    "payload",
    [
        header(flags=0x8100) + question("www.example.test"),
        header(flags=0x8100) + b"\xff\xff",
    ],
    ids=["decodable", "undecodable"],
)
def test_reply_sent_as_query_is_ignored(
    target: Target, payload: bytes, transport: str
) -> None:
    if transport == "udp":
        assert udp_exchange(target.address, target.port, payload, timeout=0.3) is None
    else:
        assert tcp_exchange(target.address, target.port, payload, timeout=0.3) is None
    target.assert_answering()


@pytest.mark.parametrize("opcode", [1, 2, 3, 4, 5, 15])
def test_unknown_opcode_gets_notimp(target: Target, opcode: int) -> None:
    reply = udp_exchange(
        target.address,
        target.port,
        header(flags=opcode << 11) + question(target.good_name),
    )
    assert reply is not None
    assert reply_id(reply) == 0x1234
    assert rcode_text(reply) == "NOTIMP"
    assert (reply_flags(reply) >> 11) & 0xF == opcode
    target.assert_answering()


def test_edns_version_1_gets_badvers(target: Target) -> None:
    payload = header(arcount=1) + question(target.good_name) + opt_record(version=1)
    reply = udp_exchange(target.address, target.port, payload)
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert message.id == 0x1234
    assert message.rcode() == dns.rcode.BADVERS
    assert message.edns == 0


@pytest.mark.parametrize("qclass", [255, 3, 254, 0], ids=["ANY", "CH", "NONE", "zero"])
def test_other_query_class_gets_reply(target: Target, qclass: int) -> None:
    reply = udp_exchange(
        target.address, target.port, header() + question(target.good_name, 1, qclass)
    )
    assert reply is not None
    assert reply_id(reply) == 0x1234
    assert rcode_text(reply) in {"NOERROR", "REFUSED", "NOTIMP"}
    target.assert_answering()


@pytest.mark.parametrize(
    "qtype", [0, 255, 65535, 128, 41], ids=["0", "ANY", "65535", "128", "OPT"]
)
def test_odd_query_type_gets_reply(target: Target, qtype: int) -> None:
    mark = target.log.mark()
    reply = udp_exchange(
        target.address, target.port, header() + question(target.good_name, qtype)
    )
    assert reply is not None
    assert reply_id(reply) == 0x1234
    assert rcode_text(reply) in {
        "NOERROR",
        "NXDOMAIN",
        "FORMERR",
        "NOTIMP",
        "REFUSED",
    }
    assert TRACEBACK not in target.log.since(mark)
    target.assert_answering()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("qtype", [QTYPE.AXFR, QTYPE.IXFR], ids=["AXFR", "IXFR"])
def test_zone_transfer_is_rejected(target: Target, qtype: int, transport: str) -> None:
    # dns-toy serves no zone transfers. A NOERROR reply without the zone's
    # SOA in the answer section is no valid transfer (RFC 5936, RFC 1995).
    payload = header(flags=0) + question("example.test", qtype)
    reply = exchange(target, transport, payload)
    assert reply is not None
    assert reply_id(reply) == 0x1234
    allowed = (
        {"REFUSED", "NOTIMP"}
        if transport == "tcp"
        else {"REFUSED", "NOTIMP", "FORMERR"}
    )
    assert rcode_text(reply) in allowed


@pytest.mark.xfail(
    strict=True,
    reason="dnslib 0.9.26 refuses to decode labels that are not UTF-8, "
    "so such a query gets FORMERR although RFC 2181 section 11 allows any octet",
)
def test_binary_label_is_answered(target: Target) -> None:
    # RFC 2181 section 11: a label may hold any octet, so a query for one is
    # well formed. Names under the zones do not exist, hence NXDOMAIN.
    zone = target.good_name.split(".", 1)[1].encode()
    reply = udp_exchange(
        target.address, target.port, header() + question(b"\xff\xfe\x80." + zone)
    )
    assert reply is not None
    assert reply_id(reply) == 0x1234
    assert rcode_text(reply) == "NXDOMAIN"


def test_query_log_escapes_newline(target: Target) -> None:
    zone = target.good_name.split(".", 1)[1].encode()
    mark = target.log.mark()
    payload = header() + question(b"x\nforged-log-entry 1.2.3.4." + zone)
    assert udp_exchange(target.address, target.port, payload) is not None
    logged = target.log.since(mark)
    forged = [
        line for line in logged.splitlines() if line.startswith("forged-log-entry")
    ]
    assert forged == [], f"a query name started a log line of its own:\n{logged}"


@pytest.mark.parametrize("size", [None, 0, 1, 100, 511, 512, 600, 1232, 4096, 65535])
@pytest.mark.parametrize("name", ["mid.example.test", "big.example.test"])
def test_edns_size_bounds_udp_reply(
    authority: Target, name: str, size: int | None
) -> None:
    edns = b"" if size is None else opt_record(size=size)
    payload = (
        header(arcount=0 if size is None else 1) + question(name, QTYPE.TXT) + edns
    )
    reply = udp_exchange(authority.address, authority.port, payload)
    assert reply is not None
    limit = max(512, size or 512)
    assert len(reply) <= limit
    message = dns.message.from_wire(reply)
    if not message.answer:
        assert message.flags & dns.flags.TC, "records left out without TC=1"


def test_tcp_prefix_longer_than_data(target: Target) -> None:
    with socket.create_connection(
        (target.address, target.port), timeout=REPLY_TIMEOUT
    ) as sock:
        sock.sendall(b"\x01\x00" + target.good_query())
        sock.shutdown(socket.SHUT_WR)
        assert read_tcp_message(sock) is None
    target.assert_answering()


def test_tcp_zero_length_message(target: Target) -> None:
    with socket.create_connection(
        (target.address, target.port), timeout=REPLY_TIMEOUT
    ) as sock:
        sock.sendall(b"\x00\x00")
        try:
            reply = read_tcp_message(sock)
        except (TimeoutError, ConnectionResetError):
            reply = None
        assert reply is None, "a reply to an empty message"
    target.assert_answering()


def test_tcp_pipelined_queries_all_answered(target: Target) -> None:
    count = 100
    queries = [target.good_query(ident) for ident in range(count)]
    with socket.create_connection(
        (target.address, target.port), timeout=REPLY_TIMEOUT
    ) as sock:
        sock.sendall(b"".join(tcp_frame(query) for query in queries))
        idents: list[int] = []
        for _ in range(count):
            reply = read_tcp_message(sock)
            assert reply is not None, f"connection closed after {len(idents)} replies"
            idents.append(reply_id(reply))
    assert sorted(idents) == list(range(count))


def test_tcp_stalled_clients_are_dropped(
    authority: Target, hierarchy: Hierarchy
) -> None:
    servers = [authority, hierarchy.resolver]
    stalled = []
    for server in servers:
        idle = socket.create_connection((server.address, server.port))
        half = socket.create_connection((server.address, server.port))
        half.sendall(b"\x00\x30" + server.good_query()[:6])
        stalled += [idle, half]
    try:
        for server in servers:
            started = time.monotonic()
            server.assert_answering()
            assert time.monotonic() - started < 1.0, (
                f"{server.label} slowed by stalled clients"
            )
        for sock in stalled:
            sock.settimeout(server_module.TCP_IDLE_TIMEOUT + 3)
            assert sock.recv(1) == b"", "the server kept a stalled connection open"
    finally:
        for sock in stalled:
            sock.close()
    for server in servers:
        server.assert_answering()


def test_random_bytes_keep_server_answering(target: Target) -> None:
    generator = random.Random(20261204)
    mark = target.log.mark()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(300):
            sock.sendto(
                generator.randbytes(generator.randint(12, 200)),
                (target.address, target.port),
            )
    for _ in range(20):
        message = generator.randbytes(generator.randint(12, 200))
        with socket.create_connection(
            (target.address, target.port), timeout=REPLY_TIMEOUT
        ) as sock:
            sock.sendall(tcp_frame(message))
            try:
                read_tcp_message(sock)
            except (TimeoutError, ConnectionResetError):
                pass
    target.assert_answering()
    assert TRACEBACK not in target.log.since(mark)


# 2. Broken zone files.

ZONE_HEAD = b"""\
$ORIGIN z.test.
$TTL 300
@  IN SOA ns hostmaster 1 3600 600 86400 60
   IN NS  ns
ns IN A   127.0.0.1
"""


@dataclass(frozen=True)
class BrokenZone:
    """A zone file, extra files beside it, and where its first error is."""

    text: bytes
    line: int | None  # None when the line of the error is not pinned down
    error_file: str = "zone.db"
    extra: tuple[tuple[str, bytes], ...] = ()


def _after_head(
    text: bytes,
    line: int | None = 6,
    error_file: str = "zone.db",
    extra: tuple[tuple[str, bytes], ...] = (),
) -> BrokenZone:
    return BrokenZone(ZONE_HEAD + text, line, error_file, extra)


BROKEN_ZONES = {
    "ttl_negative": _after_head(b"a -5 IN A 192.0.2.1\n"),
    "ttl_above_2_31": _after_head(b"a 2147483648 IN A 192.0.2.1\n"),
    "ttl_bad_unit": _after_head(b"a 5x IN A 192.0.2.1\n"),
    "ttl_units_overflow": _after_head(b"a 9999999999w IN A 192.0.2.1\n"),
    "dollar_ttl_not_number": _after_head(b"$TTL abc\n"),
    "dollar_ttl_missing": _after_head(b"$TTL\n"),
    "a_three_octets": _after_head(b"a IN A 1.2.3\n"),
    "a_octet_256": _after_head(b"a IN A 1.2.3.256\n"),
    "a_ipv6_address": _after_head(b"a IN A ::1\n"),
    "a_two_addresses": _after_head(b"a IN A 192.0.2.1 192.0.2.2\n"),
    "aaaa_bad_digit": _after_head(b"a IN AAAA 2001:db8::g\n"),
    "paren_unclosed": _after_head(b'a IN TXT ( "x"\n'),
    "paren_stray_close": _after_head(b'a IN TXT "x" )\n'),
    "quote_unclosed": _after_head(b'a IN TXT "abc\n'),
    "rdata_missing": _after_head(b"a IN A\n"),
    "type_missing": _after_head(b"a IN 300\n"),
    "type_unknown": _after_head(b"a IN FOO 1\n"),
    "type_0": _after_head(b"a IN TYPE0 \\# 0\n"),
    "class_chaos": _after_head(b'a CH TXT "x"\n'),
    "soa_short": _after_head(b"@ IN SOA ns hostmaster 1 2 3\n"),
    "soa_second": _after_head(b"@ IN SOA ns hostmaster 2 3600 600 86400 60\n"),
    "soa_below_apex": _after_head(b"a IN SOA ns hostmaster 2 3600 600 86400 60\n"),
    "mx_preference_too_big": _after_head(b"a IN MX 70000 mail\n"),
    "generic_length_mismatch": _after_head(b"a IN TYPE65280 \\# 3 abcd\n"),
    "generic_bad_hex": _after_head(b"a IN TYPE65280 \\# 2 zz\n"),
    "generic_bad_a": _after_head(b"a IN A \\# 3 010203\n"),
    "escape_above_255": _after_head(b"a\\999 IN A 192.0.2.1\n"),
    "backslash_at_line_end": _after_head(b"a IN TXT abc\\\n"),
    "directive_unknown": _after_head(b"$FOO bar\n"),
    "origin_empty_label": _after_head(b"$ORIGIN a..b.\n"),
    "label_longer_than_63": _after_head(b"a" * 64 + b" IN A 192.0.2.1\n"),
    "name_longer_than_255": _after_head(
        b".".join([b"a" * 60] * 5) + b" IN A 192.0.2.1\n"
    ),
    "txt_string_over_255": _after_head(b'a IN TXT "' + b"x" * 300 + b'"\n'),
    # 5000 strings of 201 octets: the rdata cannot fit its 16-bit RDLENGTH.
    "txt_rdata_over_65535": _after_head(
        b"a IN TXT " + b" ".join([b'"' + b"x" * 200 + b'"'] * 5000) + b"\n"
    ),
    "huge_junk_line": _after_head(b"a IN A " + b"1" * 1_000_000 + b"\n"),
    "binary_junk": _after_head(
        b"a IN A 192.0.2.1\n\x00\x01\x02\xff\xfe junk\n", line=7
    ),
    "owner_not_utf8": _after_head(b"\xff\xfe IN A 192.0.2.1\n"),
    "cname_and_a": _after_head(b"a IN CNAME ns\na IN A 192.0.2.1\n"),
    # A name has at most one CNAME record (RFC 2181).
    "two_cnames": _after_head(b"a IN CNAME ns\na IN CNAME www\n", line=None),
    "cname_at_apex": _after_head(b"@ IN CNAME ns\n"),
    "out_of_zone": _after_head(b"www.other.test. IN A 192.0.2.1\n"),
    # The error is about ns2, named on line 6. Line 4 is the other NS record.
    "ns_without_address": _after_head(b"@ IN NS ns2\n"),
    "delegation_without_glue": _after_head(b"sub IN NS ns.sub\n"),
    "include_missing": _after_head(b"$INCLUDE absent.db\n"),
    "include_itself": _after_head(b"$INCLUDE zone.db\n"),
    "include_directory": _after_head(b"$INCLUDE /\n"),
    "include_loop": _after_head(
        b"$INCLUDE first.db\n",
        line=1,
        error_file="second.db",
        extra=(
            ("first.db", b"$INCLUDE second.db\n"),
            ("second.db", b"$INCLUDE first.db\n"),
        ),
    ),
    "empty_file": BrokenZone(b"", 1),
    "comment_only": BrokenZone(b"; nothing but a comment\n", 1),
    "no_origin": BrokenZone(b"a 300 IN A 192.0.2.1\n", 1),
    "no_ttl": BrokenZone(
        b"$ORIGIN z.test.\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n", 2
    ),
    "no_soa": BrokenZone(b"$ORIGIN z.test.\n$TTL 300\na IN A 192.0.2.1\n", 1),
    "no_ns": BrokenZone(
        b"$ORIGIN z.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n", 3
    ),
    "blank_owner_first": BrokenZone(b"$ORIGIN z.test.\n$TTL 300\n IN A 192.0.2.1\n", 3),
    "random_bytes": BrokenZone(random.Random(7).randbytes(3000), None),
}


@dataclass(frozen=True)
class ZoneRuns:
    """`check-zone` run on each broken zone, and one `serve` run on all of them."""

    paths: dict[str, Path]
    checks: dict[str, subprocess.CompletedProcess[str]]
    serve: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def zone_runs(tmp_path_factory: pytest.TempPathFactory) -> ZoneRuns:
    """Run `check-zone` on every broken zone, a few processes at a time, and
    `serve` once with all of them, so that it reports an error for each."""
    base = tmp_path_factory.mktemp("zones")
    paths = {}
    for index, (name, zone) in enumerate(BROKEN_ZONES.items()):
        folder = base / name
        folder.mkdir()
        # `serve` rejects two files with one origin, so each case has its own.
        origin = f"case{index}.test.".encode()
        (folder / "zone.db").write_bytes(zone.text.replace(b"z.test.", origin))
        for file_name, text in zone.extra:
            (folder / file_name).write_bytes(text)
        paths[name] = folder / "zone.db"

    def check(name: str) -> subprocess.CompletedProcess[str]:
        return run_cli("check-zone", str(paths[name]))

    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = dict(zip(BROKEN_ZONES, pool.map(check, BROKEN_ZONES)))
    port = str(free_port([SPARE_ADDRESS], PORT_RANGE))
    serve_arguments = ["serve", *map(str, paths.values())]
    serve = run_cli(*serve_arguments, "--address", SPARE_ADDRESS, "--port", port)
    return ZoneRuns(paths, checks, serve)


def _error_lines(text: str) -> list[str]:
    """Return the lines of a command's output that are not log records."""
    return [
        line for line in text.splitlines() if line.strip() and not LOG_LINE.match(line)
    ]


def _location_pattern(path: Path, zone: BrokenZone) -> re.Pattern[str]:
    file_name = re.escape(str(path.parent / zone.error_file))
    line = r"\d+" if zone.line is None else str(zone.line)
    return re.compile(rf"^{file_name}:{line}: \S")


@pytest.mark.parametrize("name", list(BROKEN_ZONES))
def test_check_zone_rejects_broken_zone(zone_runs: ZoneRuns, name: str) -> None:
    result = zone_runs.checks[name]
    output = result.stdout + result.stderr
    assert result.returncode is not None, "check-zone hung"
    assert result.returncode != 0, f"check-zone accepted it:\n{output}"
    assert TRACEBACK not in output
    lines = _error_lines(output)
    assert lines, "check-zone printed no error"
    pattern = _location_pattern(zone_runs.paths[name], BROKEN_ZONES[name])
    assert pattern.match(lines[0]), lines[0]
    for line in lines[1:]:
        summary = r"^\S+:\d+: \S|^zone \S+: not loaded due to errors$"
        assert re.match(summary, line), line


@pytest.mark.parametrize("name", list(BROKEN_ZONES))
def test_serve_rejects_broken_zone(zone_runs: ZoneRuns, name: str) -> None:
    result = zone_runs.serve
    output = result.stdout + result.stderr
    assert result.returncode is not None, f"serve listened:\n{output}"
    assert result.returncode != 0
    assert TRACEBACK not in output
    folder = str(zone_runs.paths[name].parent) + "/"
    lines = [line for line in _error_lines(result.stderr) if line.startswith(folder)]
    assert lines, f"serve loaded the zone without an error:\n{output}"
    pattern = _location_pattern(zone_runs.paths[name], BROKEN_ZONES[name])
    assert pattern.match(lines[0]), lines[0]
    for line in lines:
        assert re.match(r"^\S+:\d+: \S", line), line


# 3. The resolver against a broken hierarchy.

BROKEN_DELEGATIONS = {
    "cname_loop_across_zones": "x.cnamea.test",
    "ns_names_in_each_other": "www.a.test",
    "server_not_running": "www.dead.test",
    "server_silent": "www.silent.test",
    "lame_server_refuses": "www.lame.test",
    "delegation_to_parent_server": "www.self.test",
    "delegation_to_resolver": "www.loop.test",
    "cname_chain_without_end": "chain0.odd.test",
    "reply_with_wrong_id": "wrongid.rogue.test",
    "reply_undecodable": "garbage.rogue.test",
    "reply_formerr": "formerr.rogue.test",
    "tcp_closed_after_tc": "tcclose.rogue.test",
    "tcp_prefix_too_long_after_tc": "tcshort.rogue.test",
    "tcp_garbage_after_tc": "tcgarbage.rogue.test",
    "tcp_tc_again": "tctc.rogue.test",
}


def _ask(
    resolver: Target, name: str, rdtype: str = "A", recursion: bool = True
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if not recursion:
        query.flags &= ~dns.flags.RD
    return dns.query.udp(
        query, resolver.address, port=resolver.port, timeout=RESOLUTION_DEADLINE + 2
    )


@pytest.mark.parametrize("case", list(BROKEN_DELEGATIONS))
def test_broken_delegation_gets_servfail(hierarchy: Hierarchy, case: str) -> None:
    resolver = hierarchy.resolver
    mark = resolver.log.mark()
    started = time.monotonic()
    reply = _ask(resolver, BROKEN_DELEGATIONS[case])
    elapsed = time.monotonic() - started
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert elapsed < RESOLUTION_DEADLINE
    assert TRACEBACK not in resolver.log.since(mark)
    resolver.assert_answering()


def test_resolver_answers_during_slow_lookup(hierarchy: Hierarchy) -> None:
    resolver = hierarchy.resolver
    slow = ThreadPoolExecutor(max_workers=1)
    pending = slow.submit(_ask, resolver, f"slow{time.monotonic_ns()}.silent.test")
    try:
        time.sleep(0.2)
        started = time.monotonic()
        reply = _ask(resolver, "www.good.test")
        assert reply.rcode() == dns.rcode.NOERROR
        assert time.monotonic() - started < 0.5
        assert (
            pending.result(timeout=RESOLUTION_DEADLINE + 3).rcode()
            == dns.rcode.SERVFAIL
        )
    finally:
        slow.shutdown(wait=True)


def test_tcp_slow_query_blocks_no_other(hierarchy: Hierarchy) -> None:
    # RFC 7766: a server should process pipelined queries concurrently and
    # send each reply when it is ready.
    resolver = hierarchy.resolver
    _ask(resolver, "www.good.test")  # now cached
    slow = header(1) + question(f"pipe{time.monotonic_ns()}.silent.test")
    fast = header(2) + question("www.good.test")
    with socket.create_connection(
        (resolver.address, resolver.port), timeout=RESOLUTION_DEADLINE
    ) as sock:
        started = time.monotonic()
        sock.sendall(tcp_frame(slow) + tcp_frame(fast))
        # The slow lookup may also fail fast when earlier tests left the
        # silent server held down, so the order of the replies is not fixed.
        arrivals: dict[int, float] = {}
        for _ in range(2):
            message = read_tcp_message(sock)
            assert message is not None
            arrivals[reply_id(message)] = time.monotonic() - started
    assert set(arrivals) == {1, 2}
    assert arrivals[2] < 1.0, "the cached answer waited for the slow lookup"


def test_cached_cname_loop_without_recursion(hierarchy: Hierarchy) -> None:
    resolver = hierarchy.resolver
    assert _ask(resolver, "x.cnamea.test").rcode() == dns.rcode.SERVFAIL
    # The cache now contains both CNAMEs. RD=0 is answered from the cache alone,
    # and the other name of the loop has no cached failure of its own.
    # dnspython would merge repeated records, so dnslib reads the reply.
    raw = udp_exchange(
        resolver.address, resolver.port, header(flags=0) + question("x.cnameb.other")
    )
    assert raw is not None
    reply = DNSRecord.parse(raw)
    records = [(str(rr.rname).lower(), rr.rtype, str(rr.rdata)) for rr in reply.rr]
    assert len(records) == len(set(records)), f"records repeated:\n{reply}"
    assert RCODE[reply.header.rcode] in {"NOERROR", "SERVFAIL"}


def test_upstream_nsec_without_bitmap(hierarchy: Hierarchy) -> None:
    resolver = hierarchy.resolver
    mark = resolver.log.mark()
    for recursion in (True, False):
        reply = _ask(resolver, "nsec.odd.test", "NSEC", recursion=recursion)
        # The client's query was well formed, so FORMERR blames the client.
        assert dns.rcode.to_text(reply.rcode()) in {"SERVFAIL", "NOERROR"}, (
            f"RD={int(recursion)}"
        )
    assert TRACEBACK not in resolver.log.since(mark)
    resolver.assert_answering()


def test_upstream_ttl_is_capped(hierarchy: Hierarchy) -> None:
    # RFC 2181 section 8: a TTL is at most 2**31 - 1, and one received with
    # the top bit set counts as 0. Either way 2**32 - 1 must not reach a client.
    resolver = hierarchy.resolver
    for attempt in ("first", "cached"):
        reply = _ask(resolver, "bigttl.odd.test")
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer, attempt
        assert reply.answer[0].ttl <= MAX_TTL_RFC2181, (
            f"{attempt} reply passed TTL {reply.answer[0].ttl} on"
        )


# 4. The command line.

# Each command is a template: {resolver}, {hints}, {hierarchy_port},
# {authority}, {authority_port}, {port} (a fresh free port for each command)
# and {folder} are filled in by the fixture. Commands that must not start
# are killed after COMMAND_TIMEOUT seconds.
COMMAND_TIMEOUT = 6.0
LONG_NAME_TEXT = ".".join(["a" * 63] * 5)
IN_PROCESS = ("--root-hints", "{hints}", "--server-port", "{hierarchy_port}")
SPARE = ("--address", SPARE_ADDRESS, "--port", "{port}")

# name: (arguments, required exit status or None for any non-zero one).
# `resolve` documents exit status 2 for an invalid name, type, server or
# root hints file.
BAD_COMMANDS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "resolve_empty_label": (("resolve", "a..b", "--server", "{resolver}"), 2),
    "resolve_long_label": (("resolve", "a" * 64, "--server", "{resolver}"), 2),
    "resolve_long_name": (("resolve", LONG_NAME_TEXT, "--server", "{resolver}"), 2),
    "resolve_long_name_in_process": (("resolve", LONG_NAME_TEXT, *IN_PROCESS), 2),
    "resolve_unknown_type": (
        ("resolve", "a.test", "BOGUS", "--server", "{resolver}"),
        2,
    ),
    "resolve_type_too_big": (
        ("resolve", "a.test", "TYPE70000", "--server", "{resolver}"),
        2,
    ),
    "resolve_server_not_ip": (("resolve", "a.test", "--server", "not-an-ip"), 2),
    "resolve_server_port_too_big": (
        ("resolve", "a.test", "--server", f"{RESOLVER_ADDRESS}:99999"),
        2,
    ),
    "resolve_server_port_option_too_big": (
        ("resolve", "a.test", "--root-hints", "{hints}", "--server-port", "70000"),
        2,
    ),
    "resolve_hints_missing": (
        ("resolve", "a.test", "--root-hints", "{folder}/absent"),
        2,
    ),
    "resolve_hints_not_utf8": (
        ("resolve", "a.test", "--root-hints", "{folder}/binary"),
        2,
    ),
    "serve_address_not_local": (
        ("serve", "{folder}/z.test.zone", "--address", "192.0.2.1", "--port", "{port}"),
        None,
    ),
    "serve_port_in_use": (
        (
            "serve",
            "{folder}/z.test.zone",
            "--address",
            "{authority}",
            "--port",
            "{authority_port}",
        ),
        None,
    ),
    "serve_port_too_big": (
        (
            "serve",
            "{folder}/z.test.zone",
            "--address",
            SPARE_ADDRESS,
            "--port",
            "70000",
        ),
        None,
    ),
    "serve_zone_missing": (("serve", "{folder}/absent.zone", *SPARE), None),
    "resolver_port_too_big": (
        ("resolver", "--address", SPARE_ADDRESS, "--port", "70000", *IN_PROCESS),
        None,
    ),
    "resolver_hints_not_utf8": (
        ("resolver", *SPARE, "--root-hints", "{folder}/binary"),
        None,
    ),
    # A resolver that can reach no name server must not start at all.
    "resolver_server_port_too_big": (
        ("resolver", *SPARE, "--root-hints", "{hints}", "--server-port", "70000"),
        None,
    ),
    "up_topology_missing": (
        ("up", "--topology", "{folder}/absent.toml", "--port", "{port}"),
        None,
    ),
    "up_topology_not_utf8": (
        ("up", "--topology", "{folder}/binary", "--port", "{port}"),
        None,
    ),
    "up_topology_broken_zone": (
        ("up", "--topology", "{folder}/broken.toml", "--port", "{port}"),
        None,
    ),
    "up_port_too_big": (
        ("up", "--topology", "{folder}/good.toml", "--port", "70000"),
        None,
    ),
}


def _topology(zone: Path) -> str:
    return (
        f'[[server]]\nname = "ns.z.test"\naddress = "{SPARE_ADDRESS}"\n'
        f'zones = [{{ origin = "z.test.", file = "{zone}" }}]\n'
    )


@pytest.fixture(scope="module")
def command_runs(
    hierarchy: Hierarchy, authority: Target, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every bad command, a few at a time."""
    folder = tmp_path_factory.mktemp("commands")
    (folder / "binary").write_bytes(b"\xff\xfe\x00garbage\n")
    (folder / "z.test.zone").write_bytes(ZONE_HEAD)
    (folder / "broken.zone").write_bytes(ZONE_HEAD + b"a IN A 1.2.3\n")
    (folder / "broken.toml").write_text(_topology(folder / "broken.zone"))
    (folder / "good.toml").write_text(_topology(folder / "z.test.zone"))

    def run(name: str) -> subprocess.CompletedProcess[str]:
        values = {
            "resolver": f"{RESOLVER_ADDRESS}:{hierarchy.port}",
            "hints": str(hierarchy.hints),
            "hierarchy_port": str(hierarchy.port),
            "authority": authority.address,
            "authority_port": str(authority.port),
            "port": str(free_port([SPARE_ADDRESS], PORT_RANGE)),
            "folder": str(folder),
        }
        arguments = [argument.format(**values) for argument in BAD_COMMANDS[name][0]]
        if arguments[0] == "up":
            arguments += ["--run-dir", str(folder / f"run-{name}")]
        return run_cli(*arguments, timeout=COMMAND_TIMEOUT)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(BAD_COMMANDS, pool.map(run, BAD_COMMANDS)))


@pytest.mark.parametrize("name", list(BAD_COMMANDS))
def test_bad_command_fails_clearly(
    command_runs: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = command_runs[name]
    status = BAD_COMMANDS[name][1]
    output = result.stdout + result.stderr
    assert result.returncode is not None, f"still running after {COMMAND_TIMEOUT} s"
    assert result.returncode != 0, output
    if status is not None:
        assert result.returncode == status, output
    assert TRACEBACK not in output
    if result.returncode == 2 and "Invalid value for" in output:
        return  # the command line parser's own usage error, with the option named
    lines = _error_lines(result.stderr)
    if name.startswith("up_"):
        # `up` also prints progress and the tail of a failed child's log.
        assert any(line.startswith("error: ") for line in lines), output
    else:
        assert len(lines) == 1, output
