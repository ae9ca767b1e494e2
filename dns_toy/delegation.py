"""Delegations: a zone and the name servers to ask about it.

A delegation comes from the root hints, from a referral or from the cache.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dnslib import QTYPE, RR, DNSLabel

from .names import ROOT, NameKey, name_key

RootHints = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class NameServer:
    """A name server of a zone and the IPv4 addresses known for it."""

    name: DNSLabel
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Delegation:
    """A zone and the servers to ask about it."""

    zone: DNSLabel
    servers: tuple[NameServer, ...]
    source: str


@dataclass(frozen=True)
class CachedDelegation:
    """The closest cached zone cut: NS RRset and server addresses, remaining
    TTLs applied."""

    zone: DNSLabel
    ns: tuple[RR, ...]
    addresses: tuple[RR, ...]


def delegation_from_hints(hints: RootHints) -> Delegation:
    """Build the delegation of the root zone from (server name, address) pairs."""
    addresses: dict[NameKey, list[str]] = {}
    names: dict[NameKey, DNSLabel] = {}
    for server, address in hints:
        label = DNSLabel(server)
        names.setdefault(name_key(label), label)
        addresses.setdefault(name_key(label), []).append(address)
    servers = tuple(
        NameServer(names[key], tuple(found)) for key, found in addresses.items()
    )
    return Delegation(ROOT, servers, "root hints")


def addresses_of(server: DNSLabel, records: Sequence[RR]) -> tuple[str, ...]:
    """Return the distinct addresses in the A records of `server`, in order."""
    found: list[str] = []
    for rr in records:
        if rr.rtype != QTYPE.A or name_key(rr.rname) != name_key(server):
            continue
        address = str(rr.rdata)
        if address not in found:
            found.append(address)
    return tuple(found)


def delegation_from_cache(cached: CachedDelegation) -> Delegation:
    """Build the delegation of a cached zone cut."""
    servers = []
    for ns in cached.ns:
        server = ns.rdata.label
        servers.append(NameServer(server, addresses_of(server, cached.addresses)))
    return Delegation(cached.zone, tuple(servers), "cache")


def delegation_from_referral(
    zone: DNSLabel,
    ns_records: Sequence[RR],
    glue: Sequence[RR],
    cached: Callable[[DNSLabel], Sequence[RR]],
) -> Delegation:
    """Build the delegation of a referral from its glue and, for the name
    servers without glue, the addresses `cached` returns."""
    servers = []
    for ns in ns_records:
        server = ns.rdata.label
        known = list(glue) + list(cached(server))
        servers.append(NameServer(server, addresses_of(server, known)))
    return Delegation(zone, tuple(servers), "referral")
