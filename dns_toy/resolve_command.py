"""The `dns-toy resolve` command: resolve one name and print it as dig does.

Without --server the name is resolved in this process, starting from the
root hints, and --trace prints every step: each server asked, what came
back and how long it took, and each use of the cache. With --server the
question goes to that resolver with RD=1, and --trace shows that single
exchange.

Exit status: 0 for NOERROR and NXDOMAIN, 1 for any other rcode or for no
reply, 2 for an invalid name, type or server, or unusable root hints.
"""

import asyncio
import ipaddress
import sys
import time
from collections.abc import Sequence

from dnslib import (
    CLASS,
    QTYPE,
    RCODE,
    DNSError,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)
from dnslib.label import DNSLabelError

from .errors import TopologyError, TransportError
from .forwarder import AnyResolver, Mode, UpstreamResolver, build_resolver
from .hops import trace_lines
from .iterator import Resolution
from .mermaid import Run, sequence_diagram
from .resolver_options import ResolverOptions
from .topology import read_root_hints
from .transport import NetworkTransport

SERVER_TIMEOUT = 5.0  # seconds: the resolver may need a few round trips
SERVER_TRIES = 2


class UsageError(ValueError):
    """An invalid command-line argument or root hints file."""


def run_resolve(
    name: str,
    qtype: str,
    server: str | None,
    root_hints_path: str,
    server_port: int,
    trace: bool,
    *,
    mode: str = "iterative",
    forwarders: Sequence[str] = (),
    trace_format: str = "text",
    repeat: int = 1,
    options: ResolverOptions | None = None,
) -> int:
    """Resolve `name` `qtype` and print the result; return the exit status.

    In-process resolution runs in `mode` (iterative, recursive or forward,
    the last to `forwarders`) under the policies of `options`, `repeat`
    times with one cache. With
    `trace_format` "mermaid" the trace is printed as a Mermaid diagram in
    place of the text trace and the reply.
    """
    try:
        question = parse_question(name, qtype)
        if server is not None:
            address, port = parse_server(server, server_port)
            return _ask_resolver(question, address, port, trace)
        resolution_mode, upstreams = parse_mode(mode, forwarders, server_port)
        hints: list[tuple[str, str]] = []
        if resolution_mode is not Mode.FORWARD:
            hints = _read_hints(root_hints_path)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    resolver = build_resolver(
        resolution_mode,
        NetworkTransport(),
        time.monotonic,
        root_hints=hints,
        forwarders=upstreams,
        server_port=server_port,
        options=options,
    )
    return _resolve_here(question, resolver, trace, trace_format, repeat)


def parse_mode(
    mode: str, forwarders: Sequence[str], default_port: int
) -> tuple[Mode, list[tuple[str, int]]]:
    """Check a mode name and its forwarders (ADDR[:PORT] each), which forward
    mode needs and the other modes reject."""
    try:
        resolution_mode = Mode(mode)
    except ValueError:
        raise UsageError(
            f"invalid mode {mode!r}; use iterative, recursive or forward"
        ) from None
    upstreams = [parse_server(text, default_port) for text in forwarders]
    if resolution_mode is Mode.FORWARD and not upstreams:
        raise UsageError("--mode forward needs at least one --forwarder ADDR[:PORT]")
    if resolution_mode is not Mode.FORWARD and upstreams:
        raise UsageError(f"--forwarder needs --mode forward, not --mode {mode}")
    return resolution_mode, upstreams


def parse_question(name: str, qtype: str) -> DNSQuestion:
    """Return the IN question for `name` and a type name such as MX or TYPE65."""
    text = qtype.upper()
    number = QTYPE.reverse.get(text)
    if number is None and text.startswith("TYPE") and text[4:].isdigit():
        number = int(text[4:])
    if number is None or not 0 < number < 65536:
        raise UsageError(f"unknown record type {qtype!r}; use a name such as A or MX")
    try:
        label = DNSLabel(name)
        # Packing checks the label and name lengths of RFC 1035 section 2.3.4.
        DNSRecord(q=DNSQuestion(label, number)).pack()
    except DNSLabelError:
        # dnslib reports a name over 255 octets as a "label too long".
        raise UsageError(
            f"invalid domain name {name!r}: a label is over 63 octets or "
            "the name over 255"
        ) from None
    except (DNSError, UnicodeError) as exc:
        raise UsageError(f"invalid domain name {name!r}: {exc}") from None
    return DNSQuestion(label, number, CLASS.IN)


def parse_server(server: str, default_port: int) -> tuple[str, int]:
    """Split ADDR[:PORT] (IPv6 as [ADDR]:PORT) into an address and a port."""
    host, port_text = server, ""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif server.count(":") == 1:
        host, _, port_text = server.partition(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise UsageError(f"invalid server address {host!r}; give an IP address")
    if not port_text:
        return address, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"invalid server port {port_text!r}; use 1 to 65535")
    return address, int(port_text)


def _read_hints(path: str) -> list[tuple[str, str]]:
    try:
        hints = read_root_hints(path)
    except TopologyError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read root hints {path}: {exc.strerror}") from None
    if not hints:
        raise UsageError(f"{path}: no A records for root name servers")
    return hints


def _ask_resolver(question: DNSQuestion, address: str, port: int, trace: bool) -> int:
    query = DNSRecord(DNSHeader(rd=1), q=question)
    transport = NetworkTransport()
    for attempt in range(1, SERVER_TRIES + 1):
        started = time.monotonic()
        try:
            reply = asyncio.run(transport.query(query, address, port, SERVER_TIMEOUT))
        except TransportError as exc:
            print(f";; {exc} (try {attempt} of {SERVER_TRIES})", file=sys.stderr)
            continue
        elapsed_ms = (time.monotonic() - started) * 1000
        if trace:
            status = RCODE.get(reply.header.rcode, reply.header.rcode)
            print(
                f"{question.qname} {QTYPE[question.qtype]} to {address}#{port}: "
                f"{status}, {elapsed_ms:.1f} ms\n"
            )
        print(reply)
        print(f";; Query time: {elapsed_ms:.0f} msec")
        print(f";; SERVER: {address}#{port}")
        return _exit_status(reply.header.rcode)
    return 1


def _resolve_here(
    question: DNSQuestion,
    resolver: AnyResolver,
    trace: bool,
    trace_format: str = "text",
    repeat: int = 1,
) -> int:
    runs = asyncio.run(_resolve_runs(resolver, question, repeat))
    if trace_format == "mermaid":
        print(sequence_diagram(runs, resolver.name), end="")
        return _exit_status(runs[-1].resolution.rcode)
    for number, run in enumerate(runs, start=1):
        resolution = run.resolution
        if len(runs) > 1:
            print(f";; run {number} of {len(runs)}")
        if trace:
            for line in trace_lines(resolution, resolver.name, run.elapsed_ms):
                print(line)
            print()
        print(_as_reply(question, resolution))
        print(
            f";; Query time: {run.elapsed_ms:.0f} msec, "
            f"{resolution.queries} queries sent"
        )
        print(f";; SERVER: {_describe_in_process(resolver)}")
        if resolution.reason:
            print(f";; SERVFAIL reason: {resolution.reason}")
        if number < len(runs):
            print()
    return _exit_status(runs[-1].resolution.rcode)


async def _resolve_runs(
    resolver: AnyResolver, question: DNSQuestion, repeat: int
) -> list[Run]:
    runs = []
    for _ in range(repeat):
        started = time.monotonic()
        resolution = await resolver.resolve(question.qname, question.qtype)
        runs.append(Run(resolution, (time.monotonic() - started) * 1000))
    return runs


def _describe_in_process(resolver: AnyResolver) -> str:
    if not isinstance(resolver, UpstreamResolver):
        return "in-process resolution from the root hints"
    upstreams = ", ".join(
        upstream.name or f"{upstream.address}#{upstream.port}"
        for upstream in resolver.upstreams
    )
    return f"in-process resolution in {resolver.mode.value} mode, RD=1 to {upstreams}"


def _as_reply(question: DNSQuestion, resolution: Resolution) -> DNSRecord:
    """Build the reply a resolver would send, for dig-like printing."""
    header = DNSHeader(qr=1, rd=1, ra=1, rcode=resolution.rcode)
    reply = DNSRecord(header, q=question)
    for record in resolution.answer:
        reply.add_answer(record)
    for record in resolution.authority:
        reply.add_auth(record)
    return reply


def _exit_status(rcode: int) -> int:
    return 0 if rcode in (RCODE.NOERROR, RCODE.NXDOMAIN) else 1
