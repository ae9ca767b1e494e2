"""A simulated network and clock, so a whole hierarchy runs in one process.

`SimNetwork` is a resolver transport that hands each query to the Catalog
registered for its address, and the real authority code builds the reply.
Time moves only when `SimClock.advance` or `set` is called, never by
itself, so an experiment that spans minutes of TTLs runs in milliseconds
and its times are exact.
"""

from collections import Counter

from dnslib import DNSRecord

from .authority import Catalog, answer_query
from .errors import TransportTimeout


class SimClock:
    """A clock that reads `now`, which changes only through `advance` and `set`."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"the clock cannot go back from {self.now} to {now}")
        self.now = now


class SimNetwork:
    """A transport that delivers queries to in-memory servers by address.

    The port is ignored. A query to an address without a server raises
    TransportTimeout at once, without moving the clock.
    """

    def __init__(self) -> None:
        self.servers: dict[str, Catalog] = {}
        self.queries: Counter[str] = Counter()  # per address

    def add(self, address: str, catalog: Catalog) -> None:
        """Serve `catalog` at `address`, in place of any earlier one."""
        self.servers[address] = catalog

    async def query(
        self,
        message: DNSRecord,
        address: str,
        port: int,
        timeout: float,
        *,
        tcp: bool | None = None,
        exact_case: bool = False,
    ) -> DNSRecord:
        """Return the reply the server at `address` sends to `message`.

        Replies are never truncated, so `tcp` changes nothing, and the
        authority code echoes the question exactly, whatever `exact_case`.
        """
        self.queries[address] += 1
        catalog = self.servers.get(address)
        if catalog is None:
            raise TransportTimeout(f"no server at {address} in the simulation")
        # Packing and parsing gives each side its own copy of the message,
        # as the wire would.
        query = DNSRecord.parse(message.pack())
        return DNSRecord.parse(answer_query(query, catalog).pack())
