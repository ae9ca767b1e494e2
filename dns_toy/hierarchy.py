"""`dns-toy up`: run a whole hierarchy as child processes until Ctrl-C.

Each authoritative server of the topology and the resolver run as their own
`python -m dns_toy` process on their own loopback address, all on one port,
so the addresses in glue records are the ones the servers listen on.

Theory of operation: SIGINT, SIGTERM and SIGCHLD are blocked while the
children start, so a Ctrl-C at any moment is held until this process can
stop every child in order. Start-up polls each server with a UDP query
until it replies. Afterwards the process sleeps in `sigwait` until a
signal arrives: SIGCHLD means a child exited, which is reported once while
the others keep running, and SIGINT or SIGTERM means stop. Stopping sends
SIGTERM to each child by PID, waits, then sends SIGKILL to what is left.
Children also get SIGTERM from the kernel if this process dies, even by
SIGKILL (Linux PR_SET_PDEATHSIG).
"""

import ctypes
import dataclasses
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSError, DNSRecord

from .control import control_socket_path
from .control import request as control_request
from .errors import DnsToyError, TopologyError
from .faults import parse_faults
from .runstate import (
    ProcessEntry,
    RunState,
    default_run_dir,
    read_state,
    remove_state,
    write_state,
)
from .topology import (
    Topology,
    format_root_hints,
    load_topology,
    root_hints,
    root_servers,
)

DEFAULT_PORT = 1053
START_TIMEOUT = 15.0  # seconds for every child to reply to its first query
PROBE_TIMEOUT = 0.3  # seconds to wait for one reply while starting
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 10
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
HANDLED_SIGNALS = STOP_SIGNALS | {signal.SIGCHLD}


@dataclass
class Child:
    """One started server or resolver process and how to tell it is ready."""

    name: str
    address: str
    zones: str
    probe_name: str
    probe_type: str
    log_path: Path
    process: "subprocess.Popen[bytes]"
    is_resolver: bool = False
    reported: bool = False
    control: str = ""  # path of its control socket


def run_up(
    topology_path: str,
    port: int | None,
    run_dir: str | None,
    fault_overrides: list[str] | None = None,
    extra_resolvers: list[str] | None = None,
    mode: str = "iterative",
    verbose: bool = False,
) -> int:
    """Start every server of a topology and its resolver, and wait for a stop.

    `extra_resolvers` are the addresses of more resolver processes, named
    resolver2, resolver3 and so on. In `mode` "recursive" every server runs
    with --recursion and the resolvers in recursive mode. With `verbose`,
    every child logs at DEBUG. Returns 0 after a stop by SIGINT or
    SIGTERM, 1 when the topology is invalid, a child fails to start or
    every child has exited.
    """
    try:
        topology = apply_fault_overrides(
            load_topology(topology_path), fault_overrides or []
        )
        extra_resolvers = check_extra_resolvers(topology, extra_resolvers or [])
        hints = _derive_hints(topology)
    except DnsToyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if port is None:
        port = topology.port if topology.port is not None else DEFAULT_PORT
    try:
        directory = _make_run_dir(run_dir)
        hints_path = directory / "root.hints"
        hints_path.write_text(format_root_hints(hints), encoding="utf-8")
        extra = child_arguments(mode, verbose, hints_path)
    except DnsToyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: failed to write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1

    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    # A handler, even an empty one, keeps SIGCHLD from being discarded
    # while it is blocked, so that `sigwait` can receive it.
    previous_chld = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    children: list[Child] = []
    try:
        return _run(
            topology, port, directory, hints_path, children, extra_resolvers, extra
        )
    finally:
        _stop_children(children)
        _drain_stop_signals()
        signal.signal(signal.SIGCHLD, previous_chld)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def apply_fault_overrides(topology: Topology, overrides: list[str]) -> Topology:
    """Set the faults of servers from `NAME:SPEC` items (SPEC as in serve)."""
    servers = {server.name: server for server in topology.servers}
    for item in overrides:
        name, separator, spec = item.partition(":")
        key = name.strip().rstrip(".").lower()
        if not separator or key not in servers:
            known = ", ".join(servers)
            raise TopologyError(
                f"--fault {item!r}: expected SERVER:SPEC with SERVER one of {known}"
            )
        try:
            parse_faults(spec)
        except DnsToyError as exc:
            raise TopologyError(f"--fault {item!r}: {exc}") from None
        servers[key] = dataclasses.replace(servers[key], faults=spec)
    return dataclasses.replace(topology, servers=tuple(servers.values()))


def check_extra_resolvers(topology: Topology, addresses: list[str]) -> list[str]:
    """Check the addresses of extra resolvers: IPv4, each used once, and a
    root zone in the topology to derive their root hints from."""
    used = {server.address: server.name for server in topology.servers}
    if topology.resolver_address is not None:
        used[topology.resolver_address] = "resolver"
    checked = []
    for text in addresses:
        try:
            address = str(ipaddress.IPv4Address(text))
        except ValueError:
            raise TopologyError(
                f"--extra-resolver {text!r}: invalid IPv4 address"
            ) from None
        if address in used:
            raise TopologyError(
                f"--extra-resolver {address}: already used by {used[address]}"
            )
        used[address] = "another --extra-resolver"
        checked.append(address)
    if checked and not root_servers(topology):
        raise TopologyError(
            "--extra-resolver needs a topology with a root zone for its root hints"
        )
    return checked


@dataclass(frozen=True)
class ChildArguments:
    """Command-line arguments added to every server and every resolver."""

    server: tuple[str, ...] = ()
    resolver: tuple[str, ...] = ()


def child_arguments(mode: str, verbose: bool, hints_path: Path) -> ChildArguments:
    """Return the arguments of `mode` (iterative or recursive) and `verbose`;
    raise DnsToyError for another mode."""
    if mode not in ("iterative", "recursive"):
        raise DnsToyError(f"invalid mode {mode!r}; use iterative or recursive")
    server: list[str] = []
    resolver: list[str] = []
    if mode == "recursive":
        server += ["--recursion", "--root-hints", str(hints_path)]
        resolver += ["--mode", "recursive"]
    if verbose:
        server.append("--verbose")
        resolver.append("--verbose")
    return ChildArguments(tuple(server), tuple(resolver))


def _derive_hints(topology: Topology) -> list[tuple[str, str]]:
    # Only the resolver needs hints, so a topology without a root zone is
    # fine as long as it has no resolver.
    if topology.resolver_address is None and not root_servers(topology):
        return []
    return root_hints(topology)


def _make_run_dir(run_dir: str | None) -> Path:
    directory = default_run_dir() if run_dir is None else Path(run_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        state = read_state(directory)
    except DnsToyError:
        return directory  # no hierarchy is running from this directory
    raise DnsToyError(
        f"another dns-toy up (PID {state.up_pid}) is running with run "
        f"directory {directory}; stop it or pass a different --run-dir"
    )


def _run(
    topology: Topology,
    port: int,
    directory: Path,
    hints_path: Path,
    children: list[Child],
    extra_resolvers: list[str],
    extra: ChildArguments = ChildArguments(),
) -> int:
    count = _count_processes(topology, len(extra_resolvers))
    print(f"Starting {count} on port {port} ...", flush=True)
    if "--recursion" in extra.server:
        print("Recursive mode: every server recurses for RD=1 queries.")
    _start_children(topology, port, directory, hints_path, children, extra)
    for number, address in enumerate(extra_resolvers, start=2):
        name = f"resolver{number}"
        children.append(
            _start_resolver(name, address, port, directory, hints_path, extra)
        )
    if not _wait_until_ready(children, port):
        return 1
    state = _run_state(children, port)
    topology_file = str(topology.path.resolve())
    write_state(directory, dataclasses.replace(state, topology=topology_file))
    try:
        _print_summary(children, port, directory)
        if not _wait_for_stop(children):
            return 1
        return 0
    finally:
        remove_state(directory)


def _run_state(children: list[Child], port: int) -> RunState:
    entries = [
        ProcessEntry(
            name=child.name,
            address=child.address,
            port=port,
            pid=child.process.pid,
            role="resolver" if child.is_resolver else "server",
            zones=[] if child.is_resolver else child.zones.split(", "),
            control=child.control,
        )
        for child in children
    ]
    return RunState(os.getpid(), entries)


def _count_processes(topology: Topology, extra_resolvers: int = 0) -> str:
    text = f"{len(topology.servers)} servers"
    resolvers = extra_resolvers + (topology.resolver_address is not None)
    if resolvers == 1:
        text += " and a resolver"
    elif resolvers > 1:
        text += f" and {resolvers} resolvers"
    return text


def _start_children(
    topology: Topology,
    port: int,
    directory: Path,
    hints_path: Path,
    children: list[Child],
    extra: ChildArguments = ChildArguments(),
) -> None:
    # Children are appended one by one, so the caller can stop the ones
    # already started if a later start raises.
    for server in topology.servers:
        command = ["serve", *[str(zone.path) for zone in server.zones]]
        command += ["--address", server.address, "--port", str(port)]
        command += ["--name", server.name]
        control = str(control_socket_path(directory, server.name))
        command += ["--control", control]
        if server.faults:
            command += parse_faults(server.faults).to_arguments()
        command += extra.server
        zones = ", ".join(zone.origin for zone in server.zones)
        log_path = directory / f"{server.name}.log"
        process = _spawn(command, log_path)
        # The probe is CH TXT id.server, which injected faults leave alone.
        children.append(
            Child(
                server.name,
                server.address,
                zones,
                "id.server",
                "TXT",
                log_path,
                process,
                control=control,
            )
        )
    if topology.resolver_address is not None:
        address = topology.resolver_address
        children.append(
            _start_resolver("resolver", address, port, directory, hints_path, extra)
        )


def _start_resolver(
    name: str,
    address: str,
    port: int,
    directory: Path,
    hints_path: Path,
    extra: ChildArguments = ChildArguments(),
) -> Child:
    command = ["resolver", "--address", address, "--port", str(port)]
    command += ["--root-hints", str(hints_path), "--server-port", str(port)]
    command += extra.resolver
    control = str(control_socket_path(directory, name))
    command += ["--control", control]
    log_path = directory / f"{name}.log"
    process = _spawn(command, log_path)
    return Child(
        name, address, "(resolver)", ".", "NS", log_path, process, True, control=control
    )


def _spawn(arguments: list[str], log_path: Path) -> "subprocess.Popen[bytes]":
    command = [sys.executable, "-m", "dns_toy", *arguments]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_environment(),
            # `up` starts no threads, which keeps preexec_fn safe.
            preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509
        )


def _child_environment() -> dict[str, str]:
    # Children must import this same dns_toy package, wherever it was
    # imported from, and write their logs as they go.
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = (
        package_parent if not existing else package_parent + os.pathsep + existing
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _child_setup(parent_pid: int) -> Callable[[], None]:
    # Load libc before fork: the child should do as little as possible
    # between fork and exec.
    prctl = None
    if sys.platform.startswith("linux"):
        prctl = ctypes.CDLL(None, use_errno=True).prctl

    def setup() -> None:
        # The signal mask survives exec, so undo the parent's blocking.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died before prctl took effect.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


def _wait_until_ready(children: list[Child], port: int) -> bool:
    """Poll the servers, then the resolver, until each replies to a query.

    The resolver is polled last because its answer depends on the servers.
    Prints the reason and returns False on a timeout, an exited child or a
    stop signal.
    """
    deadline = time.monotonic() + START_TIMEOUT
    servers = [child for child in children if not child.is_resolver]
    resolvers = [child for child in children if child.is_resolver]
    for group in (servers, resolvers):
        if not _wait_for_group(group, children, port, deadline):
            return False
    return True


def _wait_for_group(
    group: list[Child], children: list[Child], port: int, deadline: float
) -> bool:
    waiting = list(group)
    while waiting:
        if _stop_requested():
            print("Interrupted during start-up, so stopping.", file=sys.stderr)
            return False
        exited = [child for child in children if child.process.poll() is not None]
        for child in exited:
            _report_start_failure(child, "exited during start-up")
        if exited:
            return False
        waiting = [child for child in waiting if not _is_ready(child, port)]
        if waiting and time.monotonic() > deadline:
            for child in waiting:
                _report_start_failure(
                    child, f"did not reply within {START_TIMEOUT:.0f} s"
                )
            return False
    return True


def _stop_requested() -> bool:
    return bool(signal.sigpending() & STOP_SIGNALS)


def _is_ready(child: Child, port: int) -> bool:
    """Return whether `child` itself listens: its control channel must say
    so, because a reply on its address may come from another hierarchy."""
    if child.control:
        try:
            status = control_request(child.control, "ping", timeout=PROBE_TIMEOUT)
        except DnsToyError:
            time.sleep(0.05)
            return False
        if not (isinstance(status, dict) and status.get("listening")):
            time.sleep(0.05)
            return False
    return _probe(child, port)


def _probe(child: Child, port: int) -> bool:
    """Send one UDP query to `child` and return whether a reply came back."""
    qclass = "IN" if child.is_resolver else "CH"
    query = DNSRecord.question(child.probe_name, child.probe_type, qclass)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        try:
            # A connected UDP socket reports an ICMP port unreachable as
            # ECONNREFUSED at once, so a server not yet listening costs
            # no timeout.
            sock.connect((child.address, port))
            sock.send(query.pack())
            data = sock.recv(65535)
        except OSError:
            time.sleep(0.05)
            return False
    try:
        reply = DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, struct.error):
        return False
    return bool(reply.header.qr) and reply.header.id == query.header.id


def _report_start_failure(child: Child, problem: str) -> None:
    status = child.process.poll()
    detail = "" if status is None else f" ({_describe_status(status)})"
    print(
        f"error: {child.name} on {child.address} {problem}{detail}.",
        file=sys.stderr,
    )
    _print_log_tail(child)


def _describe_status(status: int) -> str:
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def _print_log_tail(child: Child) -> None:
    try:
        lines = child.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"  cannot read {child.log_path}: {exc.strerror}", file=sys.stderr)
        return
    tail = lines.splitlines()[-LOG_TAIL_LINES:]
    print(f"  last lines of {child.log_path}:", file=sys.stderr)
    for line in tail:
        print(f"    {line}", file=sys.stderr)


def _print_summary(children: list[Child], port: int, directory: Path) -> None:
    rows = [("NAME", "ADDRESS", "PORT", "ZONES", "PID")]
    for child in children:
        rows.append(
            (child.name, child.address, str(port), child.zones, str(child.process.pid))
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        print("  ".join([*cells, row[4]]))
    print()
    print(_example_lines(children, port))
    print(f"Logs and root hints: {directory}")
    print("Press Ctrl-C to stop.", flush=True)


def _example_lines(children: list[Child], port: int) -> str:
    question = _example_question(children)
    lines = ["Try:"]
    resolver = next((c for c in children if c.is_resolver), None)
    if resolver is not None:
        lines.append(
            f"  dig @{resolver.address} -p {port} {question}"
            "           # through the resolver"
        )
    server = next((c for c in children if not c.is_resolver), None)
    if server is not None:
        lines.append(
            f"  dig @{server.address} -p {port} {question} +norec"
            "    # ask one server, no recursion"
        )
    return "\n".join(lines) + "\n"


def _example_question(children: list[Child]) -> str:
    """Return a question the hierarchy can answer: www.example.com in the
    default hierarchy, else the SOA of the last zone in the topology."""
    origins = [
        origin
        for child in children
        if not child.is_resolver
        for origin in child.zones.split(", ")
    ]
    if "example.com." in origins:
        return "www.example.com A"
    return f"{origins[-1]} SOA" if origins else "www.example.com A"


def _wait_for_stop(children: list[Child]) -> bool:
    """Sleep until SIGINT or SIGTERM; report children that exit meanwhile.

    Returns True on a stop signal, False when every child has exited.
    """
    while True:
        signum = signal.sigwait(HANDLED_SIGNALS)
        if signum in STOP_SIGNALS:
            return True
        _report_exits(children)
        if all(child.process.poll() is not None for child in children):
            print("error: every process has exited.", file=sys.stderr)
            return False


def _report_exits(children: list[Child]) -> None:
    # One SIGCHLD can stand for several exits, so every child is checked.
    for child in children:
        status = child.process.poll()
        if status is None or child.reported:
            continue
        child.reported = True
        print(
            f"error: {child.name} (PID {child.process.pid}) exited "
            f"({_describe_status(status)}). The others keep running. "
            f"Log: {child.log_path}",
            file=sys.stderr,
            flush=True,
        )


def _stop_children(children: list[Child]) -> None:
    """Send SIGTERM to every child, SIGKILL after STOP_TIMEOUT, and reap all."""
    if not children:
        return
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    print(f"Stopped {len(children)} processes.", flush=True)


def _drain_stop_signals() -> None:
    # Discard a Ctrl-C that arrived during the stop, so that unblocking
    # does not raise KeyboardInterrupt after the work is done.
    while signal.sigtimedwait(STOP_SIGNALS, 0) is not None:
        pass
