"""The caching resolver service (`dns-toy resolver`): clients get RA=1.

A query with RD=1 is resolved iteratively by `iterator.Resolver`. Clients
asking the same question at the same time share one resolution. A query
with RD=0 is answered from the cache alone, as BIND and Unbound do: the
cached answer if there is one, else a referral to the closest cached
delegation, else SERVFAIL. The referral tells the client what the cache
knows without sending any query on its behalf, which makes RD=0 a way to
look into the cache.
"""

import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from dnslib import (
    CLASS,
    QTYPE,
    RCODE,
    DNSLabel,
    DNSRecord,
)

from .control import run_service_with_control
from .control_handlers import resolver_commands
from .errors import TopologyError
from .forwarder import Mode, UpstreamResolver, add_resolution_trail, build_resolver
from .iterator import Resolution, Resolver
from .names import NameKey, name_key
from .querycheck import MalformedMessage, decode_query
from .resolve_command import UsageError, parse_mode
from .resolver_options import ResolverOptions
from .resolverstats import ResolverStats
from .server import Client, run_service
from .topology import read_root_hints
from .transport import NetworkTransport
from .wire import (
    encode_response,
    find_opt_records,
    finish_reply,
    formerr_for,
    reject_unanswerable,
    start_reply,
)

log = logging.getLogger(__name__)

EDNS_UDP_SIZE = 1232
ZONE_TRANSFER_TYPES = (QTYPE.AXFR, QTYPE.IXFR)


class ResolverService:
    """Turns client queries into replies, using one shared Resolver."""

    def __init__(
        self, resolver: Resolver | UpstreamResolver, name: str = "resolver"
    ) -> None:
        self.resolver = resolver
        # The name this resolver gives itself in the hop trails it returns.
        self.name = name
        self.stats = ResolverStats()
        self._in_flight: dict[tuple[NameKey, int], asyncio.Task[Resolution]] = {}

    async def handle(self, wire: bytes, client: Client) -> bytes | None:
        """Reply to the query in `wire`; return None to send nothing."""
        try:
            query = decode_query(wire)
        except MalformedMessage as exc:
            log.debug("FORMERR to %s:%d: %s", client.address, client.port, exc)
            return formerr_for(wire)
        if query.header.qr:
            return None  # a reply sent to us: answering could start a loop
        response = await self.respond(query)
        return encode_response(response, query, client.transport, EDNS_UDP_SIZE)

    async def respond(self, query: DNSRecord) -> DNSRecord:
        """Build the reply to a decoded query."""
        self.stats.count_query()
        reply = start_reply(query, ra=True)
        options = find_opt_records(query)
        rejected = reject_unanswerable(query, reply, options, EDNS_UDP_SIZE)
        if rejected is not None:
            return rejected
        question = query.questions[0]
        # Only class IN is resolved, and a resolver serves no zone transfers.
        if question.qclass != CLASS.IN or question.qtype in ZONE_TRANSFER_TYPES:
            return finish_reply(reply, RCODE.REFUSED, options, EDNS_UDP_SIZE)

        if query.header.rd:
            resolution = await self._resolve(question.qname, question.qtype)
            self.stats.count_resolution(resolution)
            _add_resolution(reply, resolution)
            reply = finish_reply(reply, resolution.rcode, options, EDNS_UDP_SIZE)
            return add_resolution_trail(reply, query, resolution, self.name)
        return finish_reply(
            reply, self._answer_without_recursion(reply), options, EDNS_UDP_SIZE
        )

    async def _resolve(self, qname: DNSLabel, qtype: int) -> Resolution:
        key = (name_key(qname), qtype)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self.resolver.resolve(qname, qtype))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # The shield keeps the shared resolution running when one of the
        # clients waiting for it is cancelled.
        return await asyncio.shield(task)

    def _finished(
        self, key: tuple[NameKey, int], task: "asyncio.Task[Resolution]"
    ) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if task.cancelled() or task.exception() is not None:
            return
        resolution = task.result()
        self.stats.count_upstream(resolution.trace)
        if resolution.rcode == RCODE.SERVFAIL:
            log.info(
                "SERVFAIL for %s %s after %d queries: %s",
                resolution.qname,
                QTYPE[resolution.qtype],
                resolution.queries,
                resolution.reason,
            )

    def _answer_without_recursion(self, reply: DNSRecord) -> int:
        """Fill `reply` from the cache alone and return its rcode."""
        question = reply.questions[0]
        cached = self.resolver.answer_from_cache(question.qname, question.qtype)
        self.stats.count_lookup(cached is not None)
        if cached is not None:
            _add_resolution(reply, cached)
            return int(cached.rcode)
        delegation = self.resolver.cached_delegation(question.qname)
        if delegation is None:
            return int(RCODE.SERVFAIL)
        for record in delegation.ns:
            reply.add_auth(record)
        for record in delegation.addresses:
            reply.add_ar(record)
        return int(RCODE.NOERROR)


def _add_resolution(reply: DNSRecord, resolution: Resolution) -> None:
    for record in resolution.answer:
        reply.add_answer(record)
    for record in resolution.authority:
        reply.add_auth(record)


def run_resolver(
    address: str,
    port: int,
    root_hints_path: str,
    server_port: int,
    control_path: str | None = None,
    *,
    mode: str = "iterative",
    forwarders: Sequence[str] = (),
    options: ResolverOptions | None = None,
) -> int:
    """Serve the caching resolver on `address`:`port` until SIGINT or SIGTERM.

    Every name server is queried on `server_port`. In `mode` "forward" each
    cache miss goes to `forwarders` (ADDR[:PORT], the port defaulting to
    `server_port`), in "recursive" to the root servers with RD=1. With
    `control_path`, the control channel listens on that Unix socket.
    Returns the exit status: 1 when the root hints cannot be used or a
    socket cannot be bound, 2 for an invalid mode or forwarder.
    """
    try:
        resolution_mode, upstreams = parse_mode(mode, forwarders, server_port)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hints: list[tuple[str, str]] | None = []
    if resolution_mode is not Mode.FORWARD:
        hints = _load_root_hints(root_hints_path)
    if hints is None:
        return 1
    name = f"resolver {address}#{port}"
    resolver = build_resolver(
        resolution_mode,
        NetworkTransport(),
        time.monotonic,
        root_hints=hints,
        forwarders=upstreams,
        server_port=server_port,
        name=name,
        options=options,
    )
    log.info("resolving in %s mode", resolution_mode.value)
    policies = options if options is not None else ResolverOptions()
    log.info("resolver policies: %s", policies.describe())
    service = ResolverService(resolver, name)
    if control_path is None:
        return run_service(service.handle, address, port, "resolver")
    commands = resolver_commands(
        resolver, service.stats, NetworkTransport(), server_port
    )
    return run_service_with_control(
        service.handle, address, port, "resolver", control_path, commands
    )


def _load_root_hints(root_hints_path: str) -> list[tuple[str, str]] | None:
    """Read the root hints; print the error and return None when unusable."""
    try:
        hints = read_root_hints(root_hints_path)
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    except OSError as exc:
        print(
            f"error: cannot read root hints {root_hints_path}: {exc.strerror}",
            file=sys.stderr,
        )
        return None
    if not hints:
        print(
            f"error: {root_hints_path}: no A records for root name servers",
            file=sys.stderr,
        )
        return None
    log.info("loaded %d root hints from %s", len(hints), root_hints_path)
    return hints
