"""The two labs the staleness experiment of `demo` runs in.

`LiveLab` works on the running hierarchy of `dns-toy up`: it edits the
zone file that the run state's topology names, reloads the zone's servers
with SIGHUP and queries the servers and resolvers over UDP, in real time.
Leaving its `with` block restores the zone file, reloads it again and
flushes the name from the resolvers, also after an error, Ctrl-C or
SIGTERM. A copy of the original is kept in the run directory meanwhile,
so even a SIGKILL leaves a way back.

`SimLab` builds the same hierarchy in memory from a topology file: one
Catalog per server on a `simnet.SimNetwork`, and resolvers on a
`simnet.SimClock` that jumps from step to step.
"""

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from dnslib import (
    CLASS,
    QTYPE,
    RCODE,
    RR,
    SOA,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from .authority import Catalog
from .control import request
from .demo import DemoError, Observation
from .errors import DnsToyError, TransportError, TransportTimeout
from .iterator import Resolution, Resolver
from .names import is_subdomain, name_key
from .runstate import ProcessEntry, default_run_dir, read_state
from .simnet import SimClock, SimNetwork
from .topology import ServerSpec, Topology, load_topology, root_hints
from .transport import NetworkTransport
from .zone import Zone
from .zonecheck import load_checked_zone
from .zoneedit import RRsetEdit, edit_rrset, zone_serial
from .zonefile import parse_zone_text

Output = Callable[[str], None]

QUERY_TIMEOUT = 3.0  # seconds: a resolver may need a few round trips
RELOAD_TIMEOUT = 3.0  # seconds for every server to serve a new serial
RELOAD_POLL = 0.02  # seconds between two checks of a server's serial
LIVE_SAMPLE_OFFSET = 0.25  # seconds into a step at which the row is sampled


@dataclass(frozen=True)
class ZoneSite:
    """The zone that contains a name, its file, and the servers that load it."""

    origin: DNSLabel
    path: Path
    servers: tuple[ServerSpec, ...]


def find_zone_site(topology: Topology, name: DNSLabel) -> ZoneSite:
    """Find the deepest zone of `topology` that contains `name`.

    Raises DemoError when no zone contains it, or when the zone's servers
    load different files, since the experiment edits one file.
    """
    best: DNSLabel | None = None
    for server in topology.servers:
        for zone in server.zones:
            origin = DNSLabel(zone.origin)
            deeper = best is None or len(origin.label) > len(best.label)
            if is_subdomain(name, origin) and deeper:
                best = origin
    if best is None:
        raise DemoError(f"no zone of {topology.path} contains {name}")
    servers = []
    paths = set()
    for server in topology.servers:
        for zone in server.zones:
            if name_key(DNSLabel(zone.origin)) == name_key(best):
                servers.append(server)
                paths.add(zone.path.resolve())
    if len(paths) > 1:
        listed = ", ".join(str(path) for path in sorted(paths))
        raise DemoError(f"the servers of zone {best} load different files: {listed}")
    return ZoneSite(best, paths.pop(), tuple(servers))


def observe(rcode: int, records: tuple[RR, ...], name: DNSLabel) -> Observation:
    """Turn an answer into the A data of `name` and its lowest TTL."""
    if rcode != RCODE.NOERROR:
        return Observation((), None, RCODE.get(rcode, str(rcode)))
    found = [
        rr
        for rr in records
        if rr.rtype == QTYPE.A and name_key(rr.rname) == name_key(name)
    ]
    if not found:
        return Observation((), None, "NODATA")
    values = tuple(sorted(str(rr.rdata) for rr in found))
    return Observation(values, min(rr.ttl for rr in found))


def make_query(name: DNSLabel, qtype: int, recursion: bool) -> DNSRecord:
    header = DNSHeader(id=secrets.randbits(16), rd=int(recursion))
    return DNSRecord(header, q=DNSQuestion(name, qtype, CLASS.IN))


class SimLab:
    """The hierarchy of a topology file in memory, on a simulated clock."""

    sample_offset = 0.0

    def __init__(
        self,
        site: ZoneSite,
        name: DNSLabel,
        network: SimNetwork,
        clock: SimClock,
        resolvers: list[Resolver],
        zones: dict[str, list[Zone]],
    ) -> None:
        self.site = site
        self.name = name
        self.network = network
        self.clock = clock
        self.resolvers = resolvers
        self.zones = zones  # by server address
        self.original = site.path.read_text(encoding="utf-8")
        first = site.servers[0]
        self.authority_label = f"{first.name} ({first.address}, simulated)"
        self.resolver_labels = _resolver_names(len(resolvers))
        self._start = clock.now

    @classmethod
    def create(cls, topology_path: Path, name: DNSLabel, count: int) -> "SimLab":
        """Load every zone of the topology and start `count` resolvers."""
        topology = load_topology(topology_path)
        site = find_zone_site(topology, name)
        network = SimNetwork()
        zones = {}
        for server in topology.servers:
            loaded = [load_checked_zone(str(zone.path)) for zone in server.zones]
            zones[server.address] = loaded
            network.add(server.address, Catalog(loaded, server.name))
        clock = SimClock()
        hints = root_hints(topology)
        resolvers = [Resolver(network, clock, hints) for _ in range(count)]
        return cls(site, name, network, clock, resolvers, zones)

    def begin(self) -> None:
        self._start = self.clock.now

    async def wait(self, step: float) -> None:
        self.clock.set(self._start + step)

    async def ask_authority(self) -> Observation:
        query = make_query(self.name, QTYPE.A, recursion=False)
        address = self.site.servers[0].address
        reply = await self.network.query(query, address, 53, QUERY_TIMEOUT)
        return observe(reply.header.rcode, tuple(reply.rr), self.name)

    async def ask_resolver(self, index: int) -> Observation:
        resolution: Resolution = await self.resolvers[index].resolve(self.name, QTYPE.A)
        return observe(resolution.rcode, resolution.answer, self.name)

    async def publish(self, edit: RRsetEdit, serial: int) -> None:
        """Load the edited zone into every server of the zone, at once."""
        text = edit_rrset(self.original, str(self.site.path), edit, serial)
        edited = parse_zone_text(text, path=str(self.site.path))
        for server in self.site.servers:
            zones = [
                edited if name_key(zone.origin) == name_key(edited.origin) else zone
                for zone in self.zones[server.address]
            ]
            self.zones[server.address] = zones
            self.network.add(server.address, Catalog(zones, server.name))

    def zone_serial(self) -> int:
        return zone_serial(self.original, str(self.site.path))


class LiveLab:
    """The running hierarchy of `dns-toy up`, in real time."""

    sample_offset = LIVE_SAMPLE_OFFSET

    def __init__(
        self,
        run_dir: Path,
        site: ZoneSite,
        name: DNSLabel,
        servers: list[ProcessEntry],
        resolvers: list[ProcessEntry],
        out: Output,
    ) -> None:
        self.site = site
        self.name = name
        self.servers = servers
        self.resolvers = resolvers
        self.out = out
        self.backup = run_dir / f"demo-backup-{site.path.name}"
        self.original = site.path.read_text(encoding="utf-8")
        self.authority_label = ", ".join(f"{s.name} ({s.address})" for s in servers)
        self.resolver_labels = tuple(entry.name for entry in resolvers)
        self._transport = NetworkTransport()
        self._start = time.monotonic()
        self._previous_sigterm: object = None

    @classmethod
    def create(
        cls, run_dir: Path | None, name: DNSLabel, count: int, out: Output
    ) -> "LiveLab":
        """Find the zone of `name` and `count` resolvers in the run state."""
        directory = run_dir or default_run_dir()
        state = read_state(directory)
        if not state.topology:
            raise DemoError(
                "the run state does not name its topology file; restart the "
                "hierarchy with this version of `dns-toy up`"
            )
        site = find_zone_site(load_topology(state.topology), name)
        by_name = {entry.name: entry for entry in state.processes}
        servers = [by_name[server.name] for server in site.servers]
        resolvers = [entry for entry in state.processes if entry.role == "resolver"]
        if len(resolvers) < count:
            raise DemoError(
                f"this hierarchy runs {len(resolvers)} resolver(s), not {count}; "
                "start more with `dns-toy up --extra-resolver 127.0.0.13`"
            )
        for entry in resolvers[:count]:
            if not entry.control:
                raise DemoError(
                    f"{entry.name} has no control channel to flush its cache"
                )
        return cls(directory, site, name, servers, resolvers[:count], out)

    def __enter__(self) -> Self:
        if self.backup.exists():
            raise DemoError(
                f"{self.backup} is left from an interrupted demo; copy it back "
                f"to {self.site.path}, or delete it if that file is right"
            )
        self.backup.write_text(self.original, encoding="utf-8")
        self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        self._flush_resolvers()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._restore()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]

    def _restore(self) -> None:
        current = self.site.path.read_text(encoding="utf-8")
        if current != self.original:
            self.site.path.write_text(self.original, encoding="utf-8")
            serial = zone_serial(self.original, str(self.site.path))
            try:
                asyncio.run(self._reload(serial))
            except DnsToyError as exc:
                self.out(f"warning: {exc}")
            self.out(f"Restored {self.site.path} (serial {serial}).")
        self.backup.unlink(missing_ok=True)
        self._flush_resolvers()

    def _flush_resolvers(self) -> None:
        """Remove the name from every resolver's cache, via its control channel."""
        for entry in self.resolvers:
            request(entry.control, "cache.flush", {"name": str(self.name)})

    def begin(self) -> None:
        self._start = time.monotonic()

    async def wait(self, step: float) -> None:
        await asyncio.sleep(max(0.0, self._start + step - time.monotonic()))

    async def ask_authority(self) -> Observation:
        entry = self.servers[0]
        return await self._ask(entry, recursion=False)

    async def ask_resolver(self, index: int) -> Observation:
        return await self._ask(self.resolvers[index], recursion=True)

    async def _ask(self, entry: ProcessEntry, recursion: bool) -> Observation:
        query = make_query(self.name, QTYPE.A, recursion)
        try:
            reply = await self._transport.query(
                query, entry.address, entry.port, QUERY_TIMEOUT
            )
        except TransportTimeout:
            return Observation((), None, "no reply")
        except TransportError as exc:
            return Observation((), None, str(exc))
        return observe(reply.header.rcode, tuple(reply.rr), self.name)

    async def publish(self, edit: RRsetEdit, serial: int) -> None:
        """Write the edited zone file and reload it at every server of the zone."""
        text = edit_rrset(self.original, str(self.site.path), edit, serial)
        self.site.path.write_text(text, encoding="utf-8")
        await self._reload(serial)

    async def _reload(self, serial: int) -> None:
        for entry in self.servers:
            try:
                os.kill(entry.pid, signal.SIGHUP)
            except ProcessLookupError:
                raise DemoError(
                    f"{entry.name} (PID {entry.pid}) is not running"
                ) from None
        for entry in self.servers:
            await self._wait_for_serial(entry, serial)

    async def _wait_for_serial(self, entry: ProcessEntry, serial: int) -> None:
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            if await self._serial_at(entry) == serial:
                return
            await asyncio.sleep(RELOAD_POLL)
        raise DemoError(
            f"{entry.name} did not serve serial {serial} within "
            f"{RELOAD_TIMEOUT:g} s of the reload; see its log"
        )

    async def _serial_at(self, entry: ProcessEntry) -> int | None:
        query = make_query(self.site.origin, QTYPE.SOA, recursion=False)
        try:
            reply = await self._transport.query(
                query, entry.address, entry.port, RELOAD_POLL * 10
            )
        except TransportError:
            return None
        for record in reply.rr:
            if isinstance(record.rdata, SOA):
                return int(record.rdata.times[0])
        return None

    def zone_serial(self) -> int:
        return zone_serial(self.original, str(self.site.path))


def _resolver_names(count: int) -> tuple[str, ...]:
    # The names `dns-toy up` gives its resolvers.
    return ("resolver",) + tuple(f"resolver{n}" for n in range(2, count + 1))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the path of Ctrl-C, so the zone file is restored.
    raise KeyboardInterrupt
