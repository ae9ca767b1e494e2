"""The authoritative name server process: zones, reloads and the handler.

Zones are reloaded on SIGHUP and, with `watch`, when a zone file changes.
A reload builds the new zone aside and swaps the catalog in one assignment,
so every query gets either the old or the new data. A zone that fails to
load keeps its old version serving, and the other zones reload normally.
"""

import asyncio
import logging
import os
import signal
import sys

from dnslib import CLASS, RCODE, DNSRecord

from .authority import EDNS_UDP_SIZE, Catalog, RRsetOrder, answer_query
from .control import ControlError, control_channel
from .control_handlers import authority_commands
from .faults import Decision, Faults
from .querycheck import MalformedMessage, decode_query
from .recursion import Recursor
from .server import Client, Handler, serve
from .wire import (
    encode_response,
    find_opt_records,
    finish_reply,
    formerr_for,
    start_reply,
)
from .zone import Zone
from .zonecheck import ZoneCheckError, load_checked_zone

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5


class ServedZones:
    """The zone files a server loads, and the catalog built from them."""

    def __init__(
        self,
        paths: list[str],
        name: str,
        order: RRsetOrder,
        faults: Faults | None = None,
    ) -> None:
        self.paths = paths
        self.name = name
        self.order = order
        self.faults = faults or Faults()
        self.zones: dict[str, Zone] = {}
        self.catalog = Catalog([], name, order)

    def load(self) -> list[str]:
        """Load every zone file; return the error lines (empty when all load)."""
        errors: list[str] = []
        for path in self.paths:
            try:
                self.zones[path] = load_checked_zone(path)
            except ZoneCheckError as exc:
                errors.extend(str(finding) for finding in exc.findings)
            except OSError as exc:
                errors.append(f"{path}: cannot read zone file: {exc.strerror}")
        errors.extend(self._clashing_origins())
        if not errors:
            self._publish()
            for zone in self.zones.values():
                log.info(
                    "loaded zone %s: %d records, serial %d",
                    zone.origin,
                    zone.record_count,
                    zone.serial,
                )
        return errors

    def reload(self, paths: list[str] | None = None) -> None:
        """Reload `paths` (default: all); a zone that fails keeps serving."""
        for path in paths or self.paths:
            self._reload_one(path)
        self._publish()

    def _reload_one(self, path: str) -> None:
        old = self.zones[path]
        try:
            new = load_checked_zone(path)
        except (ZoneCheckError, OSError) as exc:
            log.error(
                "reload of %s failed, still serving serial %d: %s",
                path,
                old.serial,
                exc,
            )
            return
        if new.origin != old.origin:
            log.error(
                "reload of %s failed: its origin changed from %s to %s",
                path,
                old.origin,
                new.origin,
            )
            return
        self.zones[path] = new
        log.info(
            "reloaded zone %s: serial %d -> %d, %d records",
            new.origin,
            old.serial,
            new.serial,
            new.record_count,
        )

    def _clashing_origins(self) -> list[str]:
        seen: dict[str, str] = {}
        errors = []
        for path, zone in self.zones.items():
            origin = str(zone.origin)
            if origin in seen:
                errors.append(
                    f"{path}: zone {origin} is already loaded from {seen[origin]}"
                )
            seen[origin] = path
        return errors

    def _publish(self) -> None:
        self.catalog = Catalog(list(self.zones.values()), self.name, self.order)


def authority_handler(served: ServedZones, recursor: Recursor | None = None) -> Handler:
    """Return a handler that answers from the current catalog of `served`,
    after applying the faults set for the server. With a
    `recursor`, RD=1 queries that the zones leave open are resolved."""

    async def handle(data: bytes, client: Client) -> bytes | None:
        try:
            query = decode_query(data)
        except MalformedMessage as exc:
            log.debug("FORMERR to %s:%d: %s", client.address, client.port, exc)
            return formerr_for(data)
        if query.header.qr:
            return None  # a reply sent to us: answering it could start a loop
        # Faults hit class IN only, so `CH TXT id.server` still shows
        # whether a faulty server is up and which one it is.
        decision = Decision()
        if all(question.qclass == CLASS.IN for question in query.questions):
            decision = served.faults.decide()
        if decision.drop:
            return None
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        response = _faulty_reply(query, decision, client, served.catalog)
        if response is None and recursor is not None:
            response = await recursor.respond(query, served.catalog)
        if response is None:
            response = answer_query(query, served.catalog)
        return encode_response(response, query, client.transport)

    return handle


def _faulty_reply(
    query: DNSRecord, decision: Decision, client: Client, catalog: Catalog
) -> DNSRecord | None:
    """Return the reply an injected fault calls for, or None to answer."""
    if decision.servfail or decision.refuse:
        reply = start_reply(query)
        rcode = RCODE.SERVFAIL if decision.servfail else RCODE.REFUSED
        return finish_reply(reply, rcode, find_opt_records(query), EDNS_UDP_SIZE)
    if decision.truncate and client.transport == "udp":
        # The real reply's header and OPT record, with every section
        # emptied and TC=1, as a server whose answer did not fit sends it.
        reply = answer_query(query, catalog)
        reply.rr = []
        reply.auth = []
        reply.ar = find_opt_records(reply)
        reply.header.tc = 1
        return reply
    return None


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


async def watch_zone_files(served: ServedZones) -> None:
    """Reload a zone file whenever its modification time or size changes."""
    stamps = {path: _file_stamp(path) for path in served.paths}
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        changed = []
        for path in served.paths:
            stamp = _file_stamp(path)
            if stamp != stamps[path]:
                stamps[path] = stamp
                changed.append(path)
        if changed:
            served.reload(changed)


async def _run(
    served: ServedZones,
    address: str,
    port: int,
    watch: bool,
    control: str | None,
    recursor: Recursor | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, served.reload)
    watcher = asyncio.create_task(watch_zone_files(served)) if watch else None
    try:
        commands = authority_commands(served)
        if recursor is not None:
            commands = {**commands, **recursor.control_commands()}
        async with control_channel(control, commands) as channel:
            handler = authority_handler(served, recursor)
            ready = None if channel is None else channel.mark_listening
            await serve(handler, address, port, served.name, ready=ready)
    finally:
        if watcher is not None:
            watcher.cancel()


def run_authority(
    zone_paths: list[str],
    address: str,
    port: int,
    name: str | None,
    order: RRsetOrder = RRsetOrder.CYCLIC,
    watch: bool = False,
    faults: Faults | None = None,
    control: str | None = None,
    recursor: Recursor | None = None,
) -> int:
    """Load zones and serve them; print `path:line: message` on a bad zone.

    With `control`, the control channel listens on that Unix socket. With
    a `recursor`, the server also recurses for RD=1 queries (RA=1).
    """
    served = ServedZones(zone_paths, name or address, order, faults)
    if served.faults.active:
        log.info("injecting faults: %s", served.faults.describe())
    errors = served.load()
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return 1
    if recursor is not None:
        log.info("recursion on: %d root hints", len(recursor.root_hints))
    try:
        asyncio.run(_run(served, address, port, watch, control, recursor))
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"error: cannot listen on {address}:{port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    return 0
