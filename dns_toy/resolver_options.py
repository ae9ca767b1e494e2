"""The resolver's policies: delivery, server selection, cache and privacy.

One frozen record contains every option that `dns-toy resolver` and `dns-toy
resolve` accept, with the defaults both use. `iterator.Resolver` takes it
whole, and `describe` renders it as the first line of every trace.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .cache import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL, Cache
from .selection import SelectionPolicy

DEFAULT_TIMEOUT = 1.0  # seconds, for the first try at an address
DEFAULT_RETRIES = 1  # per address, after a timeout
# Each retry doubles the timeout of the one before, up to this many seconds.
MAX_RETRY_TIMEOUT = 8.0
# RFC 8767 suggests keeping expired data for one to three days.
DEFAULT_STALE_WINDOW = 86_400.0
# RFC 8767 recommends a TTL of 30 s on stale answers.
STALE_ANSWER_TTL = 30


@dataclass(frozen=True)
class ResolverOptions:
    """Every policy of a resolver; the defaults are the command line's."""

    timeout: float = DEFAULT_TIMEOUT  # seconds
    retries: int = DEFAULT_RETRIES
    max_timeout: float = MAX_RETRY_TIMEOUT  # seconds
    selection: SelectionPolicy = SelectionPolicy.NEAREST
    case_randomisation: bool = False
    qname_minimisation: bool = False
    serve_stale: bool = False
    stale_window: float = DEFAULT_STALE_WINDOW  # seconds
    max_ttl: int = DEFAULT_MAX_TTL  # seconds
    min_ttl: int = DEFAULT_MIN_TTL  # seconds
    cache_size: int = DEFAULT_MAX_ENTRIES

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"invalid timeout {self.timeout:g} s: must be above 0")
        if self.retries < 0:
            raise ValueError(f"invalid retries {self.retries}: must be 0 or more")
        if self.min_ttl < 0 or self.max_ttl < 0:
            raise ValueError("invalid TTL bounds: must be 0 or more")
        if self.min_ttl > self.max_ttl:
            raise ValueError(
                f"minimum TTL {self.min_ttl} s is above the maximum TTL "
                f"{self.max_ttl} s; lower --min-ttl or raise --max-ttl"
            )
        if self.cache_size < 1:
            raise ValueError(f"invalid cache size {self.cache_size}: must be 1 or more")

    def retry_timeout(self, attempt: int) -> float:
        """Return the timeout of try `attempt` (0 for the first), in seconds."""
        cap = max(self.max_timeout, self.timeout)
        return min(self.timeout * 2**attempt, cap)

    def new_cache(self, clock: Callable[[], float]) -> Cache:
        """Build an empty cache with these size, TTL and stale bounds."""
        stale_window = self.stale_window if self.serve_stale else 0.0
        return Cache(
            clock,
            self.cache_size,
            min_ttl=self.min_ttl,
            max_ttl=self.max_ttl,
            stale_window=stale_window,
        )

    def describe(self) -> str:
        """Describe the policies in one line, for the trace and the log."""
        if self.retries == 0:
            delivery = "no retries (best-effort)"
        else:
            cap_ms = max(self.max_timeout, self.timeout) * 1000
            delivery = (
                f"{self.retries} retries per server, timeout doubling up to "
                f"{cap_ms:g} ms (at-least-once)"
            )
        parts = [
            f"timeout {self.timeout * 1000:g} ms",
            delivery,
            f"selection {self.selection.value}",
            f"TTL {self.min_ttl}-{self.max_ttl} s",
            f"cache {self.cache_size} entries",
            f"case randomisation {_on_off(self.case_randomisation)}",
            f"QNAME minimisation {_on_off(self.qname_minimisation)}",
            f"serve-stale {_on_off(self.serve_stale)}",
        ]
        return ", ".join(parts)


def _on_off(enabled: bool) -> str:
    return "on" if enabled else "off"
