"""The commands that the resolver and the name servers serve on their
control channel (see `control`).

Resolver: `cache.show`, `cache.flush`, `cache.stale` and `stats`.
Name server: `faults.show` and `faults.set`, which replace the faults a
running server injects. Every process also serves `ping`.
"""

import logging
from typing import TYPE_CHECKING, Any, Protocol

from dnslib import DNSLabel

from .cache import Cache, CacheHit
from .cacheview import entry_json, report_json, sort_hits
from .control import Command, ControlError, name_argument
from .faults import parse_faults
from .iterator import Resolver, Transport
from .names import is_subdomain
from .resolverstats import ResolverStats
from .staleness import check_hits

if TYPE_CHECKING:
    from .nameserver import ServedZones

log = logging.getLogger(__name__)


class CachingResolver(Protocol):
    """The part of a resolver that the commands use, in every mode: its cache."""

    cache: Cache


def resolver_commands(
    resolver: CachingResolver,
    stats: ResolverStats,
    transport: Transport,
    server_port: int,
) -> dict[str, Command]:
    """Return the control commands of a resolver process.

    `transport` and `server_port` carry the queries of `cache.stale` to the
    servers that cached data came from.
    """

    async def show(arguments: dict[str, Any]) -> dict[str, Any]:
        hits = entries_below(resolver.cache, arguments)
        return {"entries": [entry_json(hit) for hit in hits]}

    async def flush(arguments: dict[str, Any]) -> dict[str, Any]:
        name = name_argument(arguments)
        removed = flush_entries(resolver.cache, name)
        log.info("cache flushed at %s: %d entries removed", name or "the root", removed)
        return {"removed": removed}

    async def stale(arguments: dict[str, Any]) -> dict[str, Any]:
        # NOTE: in forward and recursive mode the source of every entry is
        # an upstream resolver, not an authority, so the comparison is with
        # that resolver's own data (its cache, for a forwarder).
        hits = entries_below(resolver.cache, arguments)
        reports = await check_hits(hits, transport, server_port)
        return {"entries": [report_json(report) for report in reports]}

    async def counters(_arguments: dict[str, Any]) -> dict[str, Any]:
        result = stats.to_json()
        # Only the iterative resolver picks servers by smoothed RTT.
        if isinstance(resolver, Resolver):
            for address, server in result["servers"].items():
                srtt = resolver.selection.srtt(address)
                server["srtt_ms"] = None if srtt is None else round(srtt * 1000, 2)
        return result

    return {
        "cache.show": show,
        "cache.flush": flush,
        "cache.stale": stale,
        "stats": counters,
    }


def authority_commands(served: "ServedZones") -> dict[str, Command]:
    """Return the control commands of an authoritative server process."""

    async def show(_arguments: dict[str, Any]) -> dict[str, Any]:
        return {"faults": served.faults.describe()}

    async def replace(arguments: dict[str, Any]) -> dict[str, Any]:
        spec = arguments.get("spec")
        if not isinstance(spec, str):
            raise ControlError("faults.set needs a 'spec' string, e.g. 'delay=200'")
        # The handler reads `served.faults` for every query, so one
        # assignment switches every later query to the new faults.
        served.faults = parse_faults(spec)
        log.info("faults set over the control channel: %s", served.faults.describe())
        return {"faults": served.faults.describe()}

    return {"faults.show": show, "faults.set": replace}


def entries_below(cache: Cache, arguments: dict[str, Any]) -> list[CacheHit]:
    """Return the live entries at or below the `name` argument (default:
    all), sorted as `cacheview.sort_hits` sorts them."""
    name = name_argument(arguments)
    hits = cache.entries()
    if name is not None:
        hits = [hit for hit in hits if is_subdomain(hit.entry.name, name)]
    return sort_hits(hits)


def flush_entries(cache: Cache, name: DNSLabel | None) -> int:
    """Remove the entries at or below `name`, or every entry when `name` is
    None, and return how many entries were removed."""
    if name is None:
        removed = len(cache)
        cache.clear()
        return removed
    return cache.flush(name)
