"""Traces that compare the modes: hops, hop trails, the summary line and
the Mermaid diagram, first on the fake hierarchy of chainnet, then with
`dns-toy up --mode recursive` on loopback.

In the real hierarchy every server runs with --recursion and logs at
DEBUG, so each hop and each cache store shows in the server's own log.
Each test there asks for a name of its own, because the servers' caches
outlive a test.
"""

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from chainnet import PORT, ROOT_HINTS, build_chain
from conftest import (
    DEFAULT_TOPOLOGY,
    READY_LINE,
    START_TIMEOUT,
    Hierarchy,
    free_port,
    parse_pid_table,
    stop_hierarchy,
    topology_addresses,
)
from dnslib import EDNS0, QTYPE, DNSRecord, EDNSOption

from dns_toy.control import control_socket_path, request
from dns_toy.forwarder import Mode, Upstream, UpstreamResolver
from dns_toy.hops import (
    MeasuredResolver,
    describe_summary,
    shown_events,
    summarize,
)
from dns_toy.iterator import Resolution
from dns_toy.mermaid import Run, sequence_diagram
from dns_toy.topology import load_topology
from dns_toy.trace import HopEvent, QueryEvent, describe_event
from dns_toy.trail import (
    MAX_TRAIL_HOPS,
    TRAIL_OPTION,
    Budget,
    budget_option,
    read_budget,
    read_trail,
    trail_option,
    trail_request,
    wants_trail,
)

REPO = Path(__file__).resolve().parent.parent
RESOLVER = "127.0.0.1"
ROOT = "a.root-servers.net"
TLD_SERVERS = ("a.gtld-servers.net", "b.gtld-servers.net")
LEAF_SERVERS = ("ns1.example.com", "ns2.example.com")
LOG_WAIT = 3.0  # seconds for a log line to appear after the reply


@pytest.fixture(scope="module")
def recursive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """The default hierarchy started with --mode recursive --verbose."""
    base = tmp_path_factory.mktemp("recursive")
    topology = load_topology(DEFAULT_TOPOLOGY)
    port = free_port(topology_addresses(topology))
    run_dir = base / "run"
    output_path = base / "up.out"

    command = [sys.executable, "-m", "dns_toy", "up", "--mode", "recursive"]
    command += ["--verbose", "--port", str(port), "--run-dir", str(run_dir)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    running = Hierarchy(port, run_dir, topology, process, output_path)
    deadline = time.monotonic() + START_TIMEOUT
    while READY_LINE not in running.output():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_hierarchy(running, check=False)
            pytest.fail(
                f"`dns-toy up --mode recursive` did not start:\n{running.output()}"
            )
        time.sleep(0.1)
    running.pids = parse_pid_table(running.output())
    try:
        yield running
    finally:
        stop_hierarchy(running)


def server_log(hierarchy: Hierarchy, name: str) -> str:
    return (hierarchy.run_dir / f"{name}.log").read_text(errors="replace")


def wait_for_line(hierarchy: Hierarchy, name: str, text: str) -> str:
    """Return the log of `name` once it contains `text`, else fail."""
    deadline = time.monotonic() + LOG_WAIT
    while True:
        log = server_log(hierarchy, name)
        if text in log or time.monotonic() > deadline:
            assert text in log, f"{text!r} not in the log of {name}:\n{log}"
            return log
        time.sleep(0.05)


def cache_stores(hierarchy: Hierarchy, name: str, owner: str) -> list[str]:
    needle = f"cache store: {owner} A"
    return [line for line in server_log(hierarchy, name).splitlines() if needle in line]


def cached_names(hierarchy: Hierarchy, server: str) -> set[str]:
    """Return the owners of the A RRsets in a server's cache, through its
    control channel."""
    path = control_socket_path(hierarchy.run_dir, server)
    result = request(path, "cache.show", {"name": "example.com"})
    return {entry["name"] for entry in result["entries"] if entry["type"] == "A"}


def run_resolve(hierarchy: Hierarchy, *arguments: str) -> str:
    command = [sys.executable, "-m", "dns_toy", "resolve", *arguments]
    command += ["--server-port", str(hierarchy.port)]
    command += ["--root-hints", str(hierarchy.run_dir / "root.hints")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


OWN_HOP = re.compile(r"^\S+ \S+ from resolver to ")


def own_hops(output: str) -> list[str]:
    """Return the trace lines of queries the in-process resolver sent."""
    return [line for line in output.splitlines() if OWN_HOP.match(line)]


# Hop trails and budgets on the wire.


def sample_hop(**changes: object) -> HopEvent:
    fields: dict[str, object] = {
        "depth": 0,
        "asker": "a.root.test.",
        "server": "a.nic.com.",
        "address": "198.51.100.10",
        "qname": "www.example.com.",
        "qtype": "A",
        "rd": True,
        "rcode": "NOERROR",
        "aa": False,
        "ra": True,
        "rtt_ms": 3.25,
        "sent": 56,
        "received": 120,
    }
    fields.update(changes)
    return HopEvent(**fields)  # type: ignore[arg-type]


def reply_with_trail(option: EDNSOption) -> DNSRecord:
    reply = DNSRecord.question("www.example.com").reply()
    reply.add_ar(EDNS0(udp_len=1232, opts=[option]))
    return DNSRecord.parse(reply.pack())


def test_trail_round_trip() -> None:
    hops = [sample_hop(), sample_hop(depth=1, cached_by="x.", detail="a\tb")]
    trail = read_trail(reply_with_trail(trail_option("a.root.test.", "cache", hops)))
    assert trail is not None
    assert (trail.server, trail.source) == ("a.root.test.", "cache")
    assert trail.hops[0] == hops[0]
    assert trail.hops[1].detail == "a b"  # a tab would split the fields
    assert trail.hops[1].cached_by == "x."
    assert trail.size > 4


def test_trail_keeps_max_hops() -> None:
    hops = [sample_hop(depth=n) for n in range(MAX_TRAIL_HOPS + 5)]
    trail = read_trail(reply_with_trail(trail_option("s.", "recursion", hops)))
    assert trail is not None
    assert len(trail.hops) == MAX_TRAIL_HOPS


def test_trail_skips_invalid_lines() -> None:
    good = trail_option("s.", "recursion", [sample_hop()]).data.decode()
    data = (good + "\nnot\ta\thop\n").encode()
    trail = read_trail(reply_with_trail(EDNSOption(TRAIL_OPTION, data)))
    assert trail is not None
    assert len(trail.hops) == 1
    bad_header = EDNSOption(TRAIL_OPTION, b"nonsense")
    assert read_trail(reply_with_trail(bad_header)) is None


def test_trail_request_survives_parsing() -> None:
    query = DNSRecord.question("www.example.com")
    query.add_ar(EDNS0(udp_len=1232, opts=[trail_request()]))
    assert wants_trail(DNSRecord.parse(query.pack()))
    assert not wants_trail(DNSRecord.question("www.example.com"))


def test_budget_round_trip_and_cap() -> None:
    query = DNSRecord.question("www.example.com")
    query.add_ar(EDNS0(udp_len=1232, opts=[budget_option(Budget(3, 100_000))]))
    assert read_budget(DNSRecord.parse(query.pack())) == Budget(3, 65535)
    assert read_budget(DNSRecord.question("www.example.com")) is None


def test_hop_line_names_both_ends() -> None:
    line = describe_event(sample_hop(cached_by="a.root.test.", detail="answer"))
    assert line == (
        "www.example.com. A from a.root.test. to a.nic.com. (198.51.100.10): "
        "answer from the cache of a.root.test., 3.2 ms, RD=1 -> NOERROR AA=0 "
        "RA=1, 56 bytes sent, 120 received"
    )
    timeout = describe_event(sample_hop(rcode="timeout", received=0, ra=False))
    assert timeout.endswith(": timeout, 3.2 ms, RD=1 -> no reply, 56 bytes sent")


# Traces of the modes on the fake hierarchy.


def iterative_resolution() -> Resolution:
    chain = build_chain(recursing=False)
    resolver = MeasuredResolver(chain.network, chain.clock, ROOT_HINTS, PORT)
    return asyncio.run(resolver.resolve("www.example.com", QTYPE.A))


def recursive_resolution() -> Resolution:
    chain = build_chain()
    upstreams = [Upstream(name, address, PORT) for name, address in ROOT_HINTS]
    resolver = UpstreamResolver(chain.network, chain.clock, upstreams, Mode.RECURSIVE)
    return asyncio.run(resolver.resolve("www.example.com", QTYPE.A))


def test_iterative_hops_follow_query_events() -> None:
    trace = iterative_resolution().trace
    hops = [event for event in trace if isinstance(event, HopEvent)]
    assert [hop.zone for hop in hops] == [".", "com.", "example.com."]
    assert [hop.detail for hop in hops] == [
        "referral to com.",
        "referral to example.com.",
        "answer with 1 record(s)",
    ]
    for hop in hops:
        before = trace[trace.index(hop) - 1]
        assert isinstance(before, QueryEvent)
        assert before.address == hop.address
    shown = shown_events(trace)
    assert not any(isinstance(event, QueryEvent) for event in shown)


def test_summary_of_each_mode() -> None:
    iterative = summarize(iterative_resolution().trace, "resolver", 5.0)
    assert (iterative.queries, iterative.chain_queries) == (3, 3)
    assert iterative.cache_hits == 0
    assert iterative.trail_bytes == 0
    recursive = summarize(recursive_resolution().trace, "resolver", 5.0)
    assert (recursive.queries, recursive.chain_queries) == (1, 3)
    assert recursive.trail_bytes > 0
    assert recursive.sent < iterative.sent
    line = describe_summary(recursive, "resolver")
    assert line.startswith("summary: resolver sent 1 query (")
    assert "the whole chain sent 3 queries" in line


def test_mermaid_nests_recursive_hops() -> None:
    diagram = sequence_diagram([Run(recursive_resolution(), 7.5)])
    arrows = [line.strip() for line in diagram.splitlines() if ">>" in line]
    assert arrows == [
        "client->>resolver: www.example.com. A RD=1",
        "resolver->>s1: www.example.com. A RD=1",
        "s1->>s2: www.example.com. A RD=1",
        "s2->>s3: www.example.com. A RD=1",
        arrows[4],
        arrows[5],
        arrows[6],
        "resolver-->>client: NOERROR RA=1, 192.0.2.80, 7.5 ms",
    ]
    assert arrows[4].startswith("s3-->>s2: NOERROR AA=1 RA=1")
    assert arrows[5].startswith("s2-->>s1: NOERROR AA=0 RA=1")
    assert arrows[6].startswith("s1-->>resolver: NOERROR AA=0 RA=1")
    assert "participant s3 as ns1.example.com. (192.0.2.1)" in diagram


def test_mermaid_escapes_hash_and_semicolon() -> None:
    resolution = recursive_resolution()
    hop = sample_hop(asker="resolver", server="r 127.0.0.1#53", detail="a; b")
    changed = dataclasses.replace(resolution, trace=(hop,))
    diagram = sequence_diagram([Run(changed, 1.0)])
    assert "#35;" in diagram
    assert "a, b" in diagram
    assert "a; b" not in diagram


# The organisational resolver in recursive mode.


def test_resolver_sends_one_upstream_query(recursive: Hierarchy) -> None:
    query = dns.message.make_query("www.example.com", "A")
    reply = dns.query.udp(query, RESOLVER, port=recursive.port, timeout=5)
    assert reply.rcode() == dns.rcode.NOERROR
    assert [str(rr) for rrset in reply.answer for rr in rrset] == ["192.0.2.10"]
    assert reply.flags & dns.flags.RA

    summary = "www.example.com. A: summary:"
    log = wait_for_line(recursive, "resolver", summary)
    own = re.compile(r"DEBUG www\.example\.com\. A from resolver \S+ to ")
    asked = [line for line in log.splitlines() if own.search(line)]
    assert len(asked) == 1, log
    assert f" to {ROOT}. (127.0.0.2): " in asked[0]
    assert "RD=1 -> NOERROR AA=0 RA=1" in asked[0]
    (line,) = [line for line in log.splitlines() if summary in line]
    assert "sent 1 query" in line
    assert "the whole chain sent 3 queries" in line


def test_chain_servers_cache_what_they_passed_on(recursive: Hierarchy) -> None:
    name = "mail.example.com"
    query = dns.message.make_query(name, "A")
    reply = dns.query.udp(query, RESOLVER, port=recursive.port, timeout=5)
    assert reply.rcode() == dns.rcode.NOERROR
    wait_for_line(recursive, "resolver", f"{name}. A: summary:")

    assert len(cache_stores(recursive, ROOT, f"{name}.")) == 1
    tld_stores = [len(cache_stores(recursive, tld, f"{name}.")) for tld in TLD_SERVERS]
    assert sorted(tld_stores) == [0, 1]
    # The authoritative server answered from its zone: nothing to cache.
    for leaf in LEAF_SERVERS:
        assert cache_stores(recursive, leaf, f"{name}.") == []

    # The control channel shows the same caches.
    held = {
        server: cached_names(recursive, server)
        for server in (ROOT, *TLD_SERVERS, *LEAF_SERVERS)
    }
    assert f"{name}." in held[ROOT]
    assert sorted(f"{name}." in held[tld] for tld in TLD_SERVERS) == [False, True]
    assert held["ns1.example.com"] == held["ns2.example.com"] == set()


def test_server_answers_rd1_with_ra(recursive: Hierarchy) -> None:
    query = dns.message.make_query("pool.example.com", "A")
    reply = dns.query.udp(query, "127.0.0.2", port=recursive.port, timeout=5)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.RA
    assert not reply.flags & dns.flags.AA
    assert len([rr for rrset in reply.answer for rr in rrset]) == 3


def test_server_answers_rd0_with_referral(recursive: Hierarchy) -> None:
    query = dns.message.make_query("www.example.com", "A")
    query.flags &= ~dns.flags.RD
    reply = dns.query.udp(query, "127.0.0.2", port=recursive.port, timeout=5)
    assert reply.flags & dns.flags.RA
    assert reply.answer == []
    assert {str(rrset.name) for rrset in reply.authority} == {"com."}


# In-process traces, cold and warm.


def test_recursive_trace_cold_then_warm(recursive: Hierarchy) -> None:
    name = "ttl30.example.com"
    cold = run_resolve(recursive, name, "--mode", "recursive", "--trace")
    assert len(own_hops(cold)) == 1
    tld_hop = f"\n  {name}. A from {ROOT}. to a.gtld-servers.net. (127.0.0.4): "
    assert tld_hop in cold
    leaf_hop = f"\n    {name}. A from a.gtld-servers.net. to ns1.example.com. "
    assert leaf_hop in cold
    assert "RD=1 -> NOERROR AA=1 RA=1" in cold
    (summary,) = [line for line in cold.splitlines() if line.startswith("summary:")]
    assert "resolver sent 1 query" in summary
    assert "the whole chain sent 3 queries" in summary
    assert "0 cache hits" in summary

    warm = run_resolve(recursive, name, "--mode", "recursive", "--trace")
    (hop,) = own_hops(warm)
    assert f"from the cache of {ROOT}." in hop
    assert f" from {ROOT}. to " not in warm
    assert f"1 cache hit ({ROOT}.)" in warm


def test_iterative_trace_one_query_per_level(recursive: Hierarchy) -> None:
    output = run_resolve(recursive, "www.example.com", "--trace", "--repeat", "2")
    cold, warm = output.split(";; run 2 of 2")
    asked = own_hops(cold)
    assert [hop.split(" (")[0] for hop in asked] == [
        f"www.example.com. A from resolver to {ROOT}.",
        "www.example.com. A from resolver to a.gtld-servers.net.",
        "www.example.com. A from resolver to ns1.example.com.",
    ]
    assert all("RD=0 -> NOERROR" in hop for hop in asked)
    assert "resolver sent 3 queries" in cold
    assert own_hops(warm) == []
    assert "www.example.com. A from cache" in warm
    assert "resolver sent 0 queries" in warm
    assert "1 cache hit (resolver)" in warm


def test_mermaid_diagram_of_chain(recursive: Hierarchy) -> None:
    output = run_resolve(
        recursive,
        "ttl10.example.com",
        "--mode",
        "recursive",
        "--trace-format",
        "mermaid",
    )
    lines = output.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert "    participant client" in lines
    assert "    participant resolver" in lines
    assert f"    participant s1 as {ROOT}. (127.0.0.2)" in lines
    queries = [line for line in lines if "->>" in line and "-->>" not in line]
    replies = [line for line in lines if "-->>" in line]
    assert len(queries) == 4  # client, resolver, root and TLD server each ask
    assert len(replies) == 4
    assert queries[0].startswith("    client->>resolver: ttl10.example.com. A")
    assert replies[-1].startswith("    resolver-->>client: NOERROR")


def test_cache_show_names_recursing_server(recursive: Hierarchy) -> None:
    name = "ftp.example.com"
    query = dns.message.make_query(name, "A")
    assert dns.query.udp(query, RESOLVER, port=recursive.port, timeout=5).answer
    wait_for_line(recursive, "resolver", f"{name}. A: summary:")
    command = [sys.executable, "-m", "dns_toy", "cache", "show", name, "--json"]
    command += ["--server", ROOT, "--run-dir", str(recursive.run_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    owners = {entry["name"] for entry in json.loads(result.stdout)["entries"]}
    assert f"{name}." in owners
