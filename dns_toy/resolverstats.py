"""Counters of a resolver service, for `dns-toy stats`.

Client queries and cache use are counted per client query. Upstream
queries are counted per resolution, from its trace, so a resolution that
several clients share is counted once.
"""

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import RCODE

from .iterator import Outcome, QueryEvent, Resolution, TraceEvent


@dataclass
class ServerCounters:
    """Counters of the queries sent to one name server address, by outcome."""

    queries: int = 0
    timeouts: int = 0
    errors: int = 0  # transport errors other than timeouts
    replies: int = 0
    rtt_total_ms: float = 0.0  # over the replies only

    @property
    def mean_rtt_ms(self) -> float | None:
        return self.rtt_total_ms / self.replies if self.replies else None


@dataclass
class ResolverStats:
    """Counters since the service started."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    queries: int = 0  # client queries, whatever their kind
    cache_hits: int = 0
    cache_misses: int = 0
    servfail: int = 0
    servers: dict[str, ServerCounters] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def count_query(self) -> None:
        self.queries += 1

    def count_lookup(self, hit: bool) -> None:
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def count_resolution(self, resolution: Resolution) -> None:
        """Count one client's resolution as a cache hit (no upstream query) or a
        miss, and count a SERVFAIL."""
        if resolution.rcode == RCODE.SERVFAIL:
            self.servfail += 1
        self.count_lookup(
            resolution.queries == 0 and resolution.rcode != RCODE.SERVFAIL
        )

    def count_upstream(self, trace: Iterable[TraceEvent]) -> None:
        """Count the upstream queries in the trace of one finished resolution."""
        for event in trace:
            if not isinstance(event, QueryEvent):
                continue
            counters = self.servers.setdefault(event.address, ServerCounters())
            counters.queries += 1
            if event.outcome is Outcome.TIMEOUT:
                counters.timeouts += 1
            elif event.outcome is Outcome.ERROR:
                counters.errors += 1
            else:
                counters.replies += 1
                counters.rtt_total_ms += event.rtt_ms

    def to_json(self) -> dict[str, Any]:
        servers = {
            address: {
                "queries": counters.queries,
                "timeouts": counters.timeouts,
                "errors": counters.errors,
                "mean_rtt_ms": _rounded(counters.mean_rtt_ms),
            }
            for address, counters in sorted(
                self.servers.items(), key=lambda item: _address_order(item[0])
            )
        }
        return {
            "uptime": round(self.clock() - self.started, 1),
            "queries": self.queries,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "servfail": self.servfail,
            "upstream_queries": sum(c.queries for c in self.servers.values()),
            "timeouts": sum(c.timeouts for c in self.servers.values()),
            "servers": servers,
        }


def _address_order(address: str) -> tuple[int, str]:
    try:
        return int(ipaddress.ip_address(address)), address
    except ValueError:
        return 0, address


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
