"""The resolver's recursive and forward modes: fake networks first, then a
real resolver process that forwards to the resolver of `dns-toy up`."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
from chainnet import (
    NS1_ADDRESS,
    PORT,
    ROOT2_ADDRESS,
    ROOT_ADDRESS,
    ROOT_HINTS,
    Chain,
    build_chain,
)
from conftest import Hierarchy, free_port, stop_process
from dnslib import EDNS0, QTYPE, RCODE, RR, DNSRecord

from dns_toy.forwarder import (
    Mode,
    Upstream,
    UpstreamResolver,
    add_resolution_trail,
    build_resolver,
)
from dns_toy.hops import MeasuredResolver
from dns_toy.iterator import Resolution
from dns_toy.resolve_command import UsageError, parse_mode
from dns_toy.resolver_service import ResolverService
from dns_toy.trace import CacheEvent, FailureEvent, HopEvent, QueryEvent
from dns_toy.trail import read_trail, trail_request

REPO = Path(__file__).resolve().parent.parent
RESOLVER_A = "203.0.113.1"
RESOLVER_A2 = "203.0.113.2"
STOP_TIMEOUT = 10.0


def recursive_resolver(chain: Chain) -> UpstreamResolver:
    upstreams = [Upstream(name, address, PORT) for name, address in ROOT_HINTS]
    return UpstreamResolver(chain.network, chain.clock, upstreams, Mode.RECURSIVE)


def resolve(resolver: UpstreamResolver | MeasuredResolver, name: str) -> Resolution:
    return asyncio.run(resolver.resolve(name, QTYPE.A))


def hops(resolution: Resolution) -> list[HopEvent]:
    return [event for event in resolution.trace if isinstance(event, HopEvent)]


def addresses(resolution: Resolution) -> list[str]:
    return [str(rr.rdata) for rr in resolution.answer if rr.rtype == QTYPE.A]


# Recursive mode over recursing fake servers.


def test_recursive_mode_sends_one_query() -> None:
    chain = build_chain()
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    assert resolution.rcode == RCODE.NOERROR
    assert addresses(resolution) == ["192.0.2.80"]
    assert resolution.queries == 1
    assert chain.network.sent_to(ROOT_ADDRESS) == 1
    assert len(chain.network.log) == 3


def test_recursive_trace_shows_chain() -> None:
    chain = build_chain()
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    chain_hops = [(hop.depth, hop.asker, hop.server) for hop in hops(resolution)]
    assert chain_hops == [
        (0, "resolver", "a.root.test."),
        (1, "a.root.test.", "a.nic.com."),
        (2, "a.nic.com.", "ns1.example.com."),
    ]
    first, _, last = hops(resolution)
    assert (first.rd, first.ra, first.aa) == (True, True, False)
    assert (last.rd, last.ra, last.aa) == (True, True, True)
    assert first.rcode == "NOERROR"
    assert first.trail_bytes > 0
    assert first.received > first.trail_bytes


def test_second_resolution_from_own_cache() -> None:
    chain = build_chain()
    resolver = recursive_resolver(chain)
    resolve(resolver, "www.example.com")
    before = len(chain.network.log)
    again = resolve(resolver, "www.example.com")
    assert again.queries == 0
    assert len(chain.network.log) == before
    assert [type(event) for event in again.trace] == [CacheEvent]


def test_server_cache_named_in_hop() -> None:
    chain = build_chain()
    resolve(recursive_resolver(chain), "www.example.com")
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    (hop,) = hops(resolution)
    assert hop.cached_by == "a.root.test."
    assert len(chain.network.log) == 4


def test_silent_root_moves_to_next() -> None:
    chain = build_chain()
    del chain.network.nodes[ROOT_ADDRESS]
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    assert resolution.rcode == RCODE.NOERROR
    own = [hop for hop in hops(resolution) if hop.depth == 0]
    assert [(hop.address, hop.rcode) for hop in own] == [
        (ROOT_ADDRESS, "timeout"),
        (ROOT2_ADDRESS, "NOERROR"),
    ]
    assert resolution.queries == 2


def test_non_recursing_root_is_servfail() -> None:
    chain = build_chain(recursing=False)
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    assert resolution.rcode == RCODE.SERVFAIL
    assert "RA=0" in resolution.reason
    assert resolution.answer == ()
    assert isinstance(resolution.trace[-1], FailureEvent)


def test_query_events_kept_for_counters() -> None:
    chain = build_chain()
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    queries = [event for event in resolution.trace if isinstance(event, QueryEvent)]
    assert [(event.address, event.rtt_ms > 0) for event in queries] == [
        (ROOT_ADDRESS, True)
    ]


def test_nxdomain_cached_by_resolver() -> None:
    chain = build_chain()
    resolver = recursive_resolver(chain)
    first = resolve(resolver, "nosuch.example.com")
    assert first.rcode == RCODE.NXDOMAIN
    assert [QTYPE[rr.rtype] for rr in first.authority] == ["SOA"]
    second = resolve(resolver, "nosuch.example.com")
    assert second.rcode == RCODE.NXDOMAIN
    assert second.queries == 0


def test_cname_left_open_is_followed() -> None:
    # An upstream that answers with the CNAME alone: the resolver asks for
    # the target in a second query.
    chain = build_chain()
    recursor = chain.recursors[ROOT_ADDRESS]

    root_catalog = chain.network.nodes[ROOT2_ADDRESS].catalog  # type: ignore[union-attr]

    async def cname_only(query: DNSRecord) -> DNSRecord:
        if str(query.q.qname) == "alias.example.com.":
            reply = query.reply(ra=1, aa=0)
            reply.add_answer(
                *RR.fromZone("alias.example.com. 60 CNAME www.example.org.")
            )
            return reply
        return await recursor.respond(query, root_catalog)

    chain.network.nodes[ROOT_ADDRESS] = cname_only
    resolution = resolve(recursive_resolver(chain), "alias.example.com")
    assert [QTYPE[rr.rtype] for rr in resolution.answer] == ["CNAME", "A"]
    assert addresses(resolution) == ["192.0.2.90"]
    assert resolution.queries == 2


# Forward mode: resolver B forwards to resolver A.


def forwarding_pair(chain: Chain) -> tuple[UpstreamResolver, ResolverService]:
    """Resolver A iterates over `chain`, B forwards to A."""
    iterative = MeasuredResolver(
        chain.network, chain.clock, ROOT_HINTS, PORT, name="resolver A"
    )
    service = ResolverService(iterative, "resolver A")

    async def serve_a(query: DNSRecord) -> DNSRecord:
        return await service.respond(query)

    chain.network.nodes[RESOLVER_A] = serve_a
    upstreams = [Upstream("", RESOLVER_A, PORT)]
    forwarder = UpstreamResolver(
        chain.network, chain.clock, upstreams, Mode.FORWARD, name="resolver B"
    )
    return forwarder, service


def test_forward_then_own_cache() -> None:
    chain = build_chain(recursing=False)
    forwarder, _ = forwarding_pair(chain)
    first = resolve(forwarder, "www.example.com")
    assert addresses(first) == ["192.0.2.80"]
    assert first.queries == 1
    assert chain.network.sent_to(RESOLVER_A) == 1
    assert len(chain.network.log) == 4  # B -> A, then A -> root, com., leaf
    before = len(chain.network.log)
    second = resolve(forwarder, "www.example.com")
    assert addresses(second) == ["192.0.2.80"]
    assert second.queries == 0
    assert len(chain.network.log) == before


def test_forward_trail_shows_upstream_hops() -> None:
    chain = build_chain(recursing=False)
    forwarder, _ = forwarding_pair(chain)
    resolution = resolve(forwarder, "www.example.com")
    chain_hops = [(hop.depth, hop.asker, hop.address) for hop in hops(resolution)]
    assert chain_hops == [
        (0, "resolver B", RESOLVER_A),
        (1, "resolver A", ROOT_ADDRESS),
        (1, "resolver A", "198.51.100.10"),
        (1, "resolver A", NS1_ADDRESS),
    ]
    # The forwarder is given by address: its trail names it.
    assert hops(resolution)[0].server == "resolver A"


def test_upstream_cache_hit_reported() -> None:
    chain = build_chain(recursing=False)
    forwarder, _ = forwarding_pair(chain)
    resolve(forwarder, "www.example.com")
    fresh = UpstreamResolver(
        chain.network,
        chain.clock,
        [Upstream("", RESOLVER_A, PORT)],
        Mode.FORWARD,
        name="resolver C",
    )
    resolution = resolve(fresh, "www.example.com")
    (hop,) = hops(resolution)
    assert hop.cached_by == "resolver A"


def test_forwarders_tried_in_order() -> None:
    chain = build_chain(recursing=False)
    forwarding_pair(chain)
    upstreams = [Upstream("", RESOLVER_A2, PORT), Upstream("", RESOLVER_A, PORT)]
    forwarder = UpstreamResolver(chain.network, chain.clock, upstreams, Mode.FORWARD)
    resolution = resolve(forwarder, "www.example.com")
    assert resolution.rcode == RCODE.NOERROR
    assert [(hop.address, hop.rcode) for hop in hops(resolution)][:2] == [
        (RESOLVER_A2, "timeout"),
        (RESOLVER_A, "NOERROR"),
    ]


def test_every_forwarder_silent_is_servfail() -> None:
    chain = build_chain(recursing=False)
    upstreams = [Upstream("", RESOLVER_A2, PORT)]
    forwarder = UpstreamResolver(chain.network, chain.clock, upstreams, Mode.FORWARD)
    started = chain.clock()
    resolution = resolve(forwarder, "www.example.com")
    assert resolution.rcode == RCODE.SERVFAIL
    assert "timeout" in resolution.reason
    assert chain.clock() - started <= forwarder.limits.max_time


def test_service_rd0_answers_from_cache() -> None:
    chain = build_chain()
    service = ResolverService(recursive_resolver(chain))
    query = DNSRecord.question("www.example.com")
    query.header.rd = 0
    empty = asyncio.run(service.respond(query))
    assert empty.header.rcode == RCODE.SERVFAIL
    query.header.rd = 1
    asyncio.run(service.respond(query))
    query.header.rd = 0
    cached = asyncio.run(service.respond(query))
    assert cached.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in cached.rr] == ["192.0.2.80"]


def test_trail_added_only_when_asked() -> None:
    chain = build_chain()
    resolution = resolve(recursive_resolver(chain), "www.example.com")
    plain = DNSRecord.question("www.example.com")
    reply = plain.reply()
    assert read_trail(add_resolution_trail(reply, plain, resolution, "r")) is None
    asking = DNSRecord.question("www.example.com")
    asking.add_ar(EDNS0(udp_len=1232, opts=[trail_request()]))
    reply = asking.reply()
    reply.add_ar(EDNS0(udp_len=1232))
    trail = read_trail(add_resolution_trail(reply, asking, resolution, "r"))
    assert trail is not None
    assert trail.server == "r"
    assert len(trail.hops) == 3


# Choosing the mode.


def test_build_resolver_by_mode() -> None:
    chain = build_chain()
    iterative = build_resolver(
        Mode.ITERATIVE, chain.network, chain.clock, root_hints=ROOT_HINTS
    )
    assert isinstance(iterative, MeasuredResolver)
    recursive = build_resolver(
        Mode.RECURSIVE, chain.network, chain.clock, root_hints=ROOT_HINTS
    )
    assert isinstance(recursive, UpstreamResolver)
    assert [upstream.address for upstream in recursive.upstreams] == [
        ROOT_ADDRESS,
        ROOT2_ADDRESS,
    ]
    with pytest.raises(ValueError, match="forward mode needs"):
        build_resolver(Mode.FORWARD, chain.network, chain.clock)


@pytest.mark.parametrize(
    ("mode", "forwarders", "message"),
    [
        ("sideways", [], "invalid mode"),
        ("forward", [], "needs at least one --forwarder"),
        ("iterative", ["127.0.0.1"], "--forwarder needs --mode forward"),
        ("forward", ["not-an-address"], "invalid server address"),
    ],
)
def test_parse_mode_rejects(mode: str, forwarders: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_mode(mode, forwarders, 53)


def test_parse_mode_default_port() -> None:
    assert parse_mode("forward", ["127.0.0.1", "127.0.0.2:5300"], 1053) == (
        Mode.FORWARD,
        [("127.0.0.1", 1053), ("127.0.0.2", 5300)],
    )


# A real forwarding resolver in front of the resolver of `dns-toy up`.


@pytest.fixture
def forwarder_process(
    hierarchy: Hierarchy, tmp_path: Path
) -> Iterator[tuple[str, int, Path]]:
    address = "127.0.0.13"
    port = free_port([address])
    log = tmp_path / "forwarder.log"
    command = [sys.executable, "-m", "dns_toy", "resolver", "--address", address]
    command += ["--port", str(port), "--mode", "forward", "--verbose"]
    command += ["--forwarder", f"127.0.0.1:{hierarchy.port}"]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_until_answering(process, address, port, log)
        yield address, port, log
    finally:
        stop_process(process, STOP_TIMEOUT)


def _wait_until_answering(
    process: "subprocess.Popen[bytes]", address: str, port: int, log: Path
) -> None:
    query = dns.message.make_query(".", "NS")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"forwarder exited:\n{log.read_text()}")
        try:
            dns.query.udp(query, address, port=port, timeout=0.3)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    pytest.fail(f"forwarder did not answer:\n{log.read_text()}")


def test_stacked_resolvers_cache_twice(
    hierarchy: Hierarchy, forwarder_process: tuple[str, int, Path]
) -> None:
    address, port, log = forwarder_process
    name = "ttl30.example.com"
    answers = []
    for _ in range(2):
        reply = dns.query.udp(
            dns.message.make_query(name, "A"), address, port=port, timeout=5
        )
        assert reply.rcode() == dns.rcode.NOERROR
        answers.append([str(rr) for rrset in reply.answer for rr in rrset])
    assert answers == [["192.0.2.32"], ["192.0.2.32"]]
    text = log.read_text()
    upstream = f"resolver 127.0.0.1#{hierarchy.port} (127.0.0.1)"
    own = f"DEBUG {name}. A from resolver {address}#{port} to "
    asked_a = [line for line in text.splitlines() if own in line]
    assert len(asked_a) == 1, text
    assert f" to {upstream}: " in asked_a[0]
    assert f"cache store: {name}. A" in text
    assert f"{name}. A from cache" in text
    summaries = [line for line in text.splitlines() if f"{name}. A: summary:" in line]
    assert len(summaries) == 2
    assert "sent 0 queries" in summaries[1]
    assert f"1 cache hit (resolver {address}#{port})" in summaries[1]


def test_resolve_command_forward_mode(hierarchy: Hierarchy) -> None:
    upstream = f"127.0.0.1:{hierarchy.port}"
    command = [sys.executable, "-m", "dns_toy", "resolve", "ftp.example.com"]
    command += ["--mode", "forward", "--forwarder", upstream, "--trace"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=30, env=env, check=False
    )
    output = completed.stdout
    assert completed.returncode == 0, output + completed.stderr
    resolver_a = f"resolver 127.0.0.1#{hierarchy.port}"
    assert f"ftp.example.com. A from resolver to {resolver_a} (127.0.0.1): " in output
    # Resolver A iterated, and its hops came back in its hop trail. Where
    # it starts depends on what earlier tests left in its cache.
    nested = f"\n  ftp.example.com. A from {resolver_a} to "
    assert nested in output
    assert "zone example.com.: CNAME to www.example.com." in output
    assert "summary: resolver sent 1 query" in output
    assert "192.0.2.10" in output
