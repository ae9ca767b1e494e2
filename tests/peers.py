"""Start and stop DNS peers on loopback for the interoperability tests.

NSD 4 and Unbound 1.17 run in the foreground from throwaway configurations
in a temporary folder, next to `dns-toy serve` and `dns-toy resolver`
processes. Every process is stopped by its PID. NSD forks processes of its
own, and `stop_peers` waits for those too, so no process outlives a test.

`FakeUpstream` is a scripted UDP name server on an asyncio loop of its own
thread. A script decides, per query, which datagrams go back: forged,
malformed or honest replies, in any order.
"""

import asyncio
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
from conftest import process_alive, stop_processes

from dns_toy.topology import ServerSpec

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0  # seconds for a peer to reply to its first query
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
PROBE_TIMEOUT = 0.2  # seconds to wait for one reply while a peer starts

# Unbound may send queries only to 127.0.0.0/8. These prefixes cover every
# other IPv4 address, and do-ip6: no rules out IPv6.
NON_LOOPBACK_PREFIXES = tuple(
    str(network)
    for network in sorted(
        ipaddress.IPv4Network("0.0.0.0/0").address_exclude(
            ipaddress.IPv4Network("127.0.0.0/8")
        )
    )
)

# rrl-ratelimit: 0 because NSD's response rate limiting would drop queries
# that arrive in bursts. minimal-responses stays at NSD's default (no), so
# positive answers carry the zone's NS RRset in the authority section, as
# a stock NSD sends them.
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
    rrl-ratelimit: 0
remote-control:
    control-enable: no
"""
NSD_ZONE = """\
zone:
    name: "{origin}"
    zonefile: "{path}"
"""

# The iterator alone, without validation, so no trust anchor is read or
# fetched. The root hints are the only start of every lookup, and
# do-not-query-address keeps every query on loopback. prefetch: no and
# harden-referral-path: no are Unbound 1.17's defaults, stated because they
# matter here. Unbound then sends no query of its own when a cached entry
# nears expiry, and no extra NS queries along a referral path.
UNBOUND_CONFIG = """\
server:
    interface: {address}@{port}
    outgoing-interface: {address}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    username: ""
    chroot: ""
    directory: "{folder}"
    pidfile: "{folder}/unbound.pid"
    use-syslog: no
    logfile: "{folder}/unbound.log"
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
{do_not_query}
    root-hints: "{root_hints}"
    module-config: "iterator"
    harden-referral-path: no
    prefetch: no
    qname-minimisation: {qname_minimisation}
    minimal-responses: yes
remote-control:
    control-enable: no
"""


class PeerError(Exception):
    """A peer exited or did not reply while it started."""


@dataclass
class Peer:
    """One started server or resolver process and the files it writes to."""

    label: str
    address: str
    port: int
    process: "subprocess.Popen[bytes]"
    logs: tuple[Path, ...]

    def output_text(self) -> str:
        """Return the process's output and log files, for failure messages."""
        texts = [
            f"--- {path}\n{path.read_text(errors='replace')}"
            for path in self.logs
            if path.exists()
        ]
        return "\n".join(texts)


def find_program(name: str) -> str | None:
    """Return the path of `name`, also looking in the sbin folders."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin"
    return shutil.which(name, path=path)


def spawn(
    label: str,
    command: Sequence[str],
    address: str,
    port: int,
    folder: Path,
    logs: Sequence[Path] = (),
) -> Peer:
    """Start `command` with its stdout and stderr in a file of `folder`."""
    output = folder / f"{label}.out"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with output.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Peer(label, address, port, process, (output, *logs))


def wait_until_replying(
    peer: Peer,
    qname: str = "id.server.",
    rdtype: str = "TXT",
    rdclass: str = "CH",
    authoritative: bool = False,
) -> None:
    """Wait until `peer` replies to one UDP query, with AA=1 if asked.

    Raises PeerError with the peer's output when it exits first or does
    not reply within START_TIMEOUT.
    """
    query = dns.message.make_query(qname, rdtype, rdclass)
    query.flags = 0
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise PeerError(
                f"{peer.label} exited with status {peer.process.returncode} "
                f"before replying:\n{peer.output_text()}"
            )
        try:
            reply = dns.query.udp(query, peer.address, PROBE_TIMEOUT, peer.port)
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
            continue
        if not authoritative or reply.flags & dns.flags.AA:
            return
        time.sleep(0.05)
    raise PeerError(
        f"{peer.label} did not reply to {qname} {rdtype} on "
        f"{peer.address}:{peer.port} within {START_TIMEOUT:g} s:\n"
        f"{peer.output_text()}"
    )


def descendants(pid: int) -> list[int]:
    """Return the PIDs of the children of `pid`, and theirs, from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        path = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            children = [int(text) for text in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.extend(children)
        pending.extend(children)
    return found


def stop_peers(peers: Sequence[Peer]) -> None:
    """Stop each peer and its forked children, as `stop_process_trees` does."""
    stop_process_trees([peer.process for peer in peers])


def stop_process_trees(processes: Sequence["subprocess.Popen[bytes]"]) -> None:
    """Stop each process by its PID: SIGTERM, then SIGKILL after STOP_TIMEOUT.

    The PIDs of forked children are read before the stop, and the function
    returns only when they are gone too. A child still alive at the
    deadline is killed, unless its PID now names another program.
    """
    children: list[tuple[int, str]] = []
    for process in processes:
        children += [(pid, process_name(pid)) for pid in descendants(process.pid)]
    stop_processes(processes, STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(process_alive(pid) for pid, _ in children):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid, name in children:
        if process_alive(pid) and process_name(pid) == name:
            os.kill(pid, signal.SIGKILL)


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def check_port_free(address: str, port: int) -> None:
    """Raise PeerError when `port` on `address` is bound, for UDP or TCP.

    PermissionError passes through, so that a caller can skip when binding
    a port below 1024 needs root.
    """
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except PermissionError:
                raise
            except OSError as exc:
                raise PeerError(
                    f"{address}:{port} is in use ({exc.strerror}); stop the "
                    "process that listens there and run the test again"
                ) from None


# --- dns-toy ------------------------------------------------------------------


def start_dns_toy_server(server: ServerSpec, port: int, folder: Path) -> Peer:
    """Start `dns-toy serve` for one server entry of a topology."""
    command = [sys.executable, "-m", "dns_toy", "serve"]
    command += [str(zone.path) for zone in server.zones]
    command += ["--address", server.address, "--port", str(port)]
    command += ["--name", server.name]
    return spawn(f"dns-toy-{server.name}", command, server.address, port, folder)


def start_dns_toy_resolver(
    address: str, port: int, root_hints: Path, server_port: int, folder: Path
) -> Peer:
    """Start `dns-toy resolver`, which queries every name server on
    `server_port`."""
    command = [sys.executable, "-m", "dns_toy", "resolver"]
    command += ["--address", address, "--port", str(port)]
    command += ["--root-hints", str(root_hints), "--server-port", str(server_port)]
    return spawn(f"dns-toy-resolver-{address}", command, address, port, folder)


# --- NSD ------------------------------------------------------------------------


def write_nsd_config(
    template: str,
    address: str,
    port: int,
    zones: Sequence[tuple[str, Path]],
    folder: Path,
) -> Path:
    """Write `folder`/nsd.conf and return its path.

    The file is `template`, whose placeholders are address, port and
    folder, followed by a zone entry for each (origin, file) of `zones`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = template.format(address=address, port=port, folder=folder)
    for origin, path in zones:
        config += NSD_ZONE.format(origin=origin, path=path)
    config_path = folder / "nsd.conf"
    config_path.write_text(config)
    return config_path


def start_nsd(
    nsd: str,
    label: str,
    address: str,
    port: int,
    zones: Sequence[tuple[str, Path]],
    folder: Path,
) -> Peer:
    """Write an nsd.conf for `zones` (origin, file) and start NSD in the
    foreground on `address`:`port`."""
    config_path = write_nsd_config(NSD_CONFIG, address, port, zones, folder)
    command = [nsd, "-d", "-c", str(config_path)]
    return spawn(f"nsd-{label}", command, address, port, folder, [folder / "nsd.log"])


# --- Unbound --------------------------------------------------------------------


def unbound_config(
    address: str,
    port: int,
    root_hints: Path,
    folder: Path,
    qname_minimisation: bool,
) -> str:
    """Return an unbound.conf that resolves from `root_hints` over loopback
    only."""
    do_not_query = "\n".join(
        f"    do-not-query-address: {prefix}" for prefix in NON_LOOPBACK_PREFIXES
    )
    return UNBOUND_CONFIG.format(
        address=address,
        port=port,
        folder=folder,
        root_hints=root_hints,
        do_not_query=do_not_query,
        qname_minimisation="yes" if qname_minimisation else "no",
    )


def start_unbound(
    unbound: str,
    address: str,
    port: int,
    root_hints: Path,
    folder: Path,
    qname_minimisation: bool,
) -> Peer:
    """Write an unbound.conf into `folder` and start Unbound in the
    foreground on `address`:`port`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = unbound_config(address, port, root_hints, folder, qname_minimisation)
    config_path = folder / "unbound.conf"
    config_path.write_text(config)
    command = [unbound, "-d", "-c", str(config_path)]
    logs = [folder / "unbound.log"]
    return spawn(f"unbound-{address}", command, address, port, folder, logs)


# --- A scripted fake upstream ---------------------------------------------------

# A script returns the datagrams to send back to one query, in order.
Script = Callable[[dns.message.Message], Sequence[bytes]]


class _ScriptedProtocol(asyncio.DatagramProtocol):
    def __init__(self, script: Script, received: list[dns.message.Message]) -> None:
        self.script = script
        self.received = received
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass
        # DatagramTransport, so this is a cast rather than a check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        self.received.append(query)
        assert self.transport is not None
        for datagram in self.script(query):
            self.transport.sendto(datagram, addr)


class FakeUpstream:
    """A UDP name server on `address`:`port` that sends back the datagrams
    that `script` returns for each query.

    The server runs on an event loop in a thread of its own, so a test can
    query a resolver synchronously while the fake answers it. `received`
    lists every query that decoded, in arrival order.
    """

    def __init__(self, address: str, port: int, script: Script) -> None:
        self.address = address
        self.port = port
        self.received: list[dns.message.Message] = []
        self._script = script
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._transport: asyncio.BaseTransport | None = None

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        self._transport = future.result(timeout=START_TIMEOUT)

    async def _open(self) -> asyncio.BaseTransport:
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _ScriptedProtocol(self._script, self.received),
            local_addr=(self.address, self.port),
        )
        return transport

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return
        if self._transport is not None:
            self._loop.call_soon_threadsafe(self._transport.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT)
        self._loop.close()

    def queries_for(self, qname: str) -> int:
        """Return how many queries for `qname` have arrived."""
        wanted = dns.name.from_text(qname)
        return sum(
            1
            for query in list(self.received)
            if query.question and query.question[0].name == wanted
        )
