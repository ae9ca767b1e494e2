"""The topology of a hierarchy: which server, on which address, serves which zones.

A topology file is TOML:

    port = 1053                          # optional, for every server
    [resolver]                           # optional
    address = "127.0.0.1"
    [[server]]
    name = "a.root-servers.net"
    address = "127.0.0.2"
    zones = [{ origin = ".", file = "root.zone" }]
    faults = "delay=200,drop=0.1"          # optional, see dns_toy.faults

Zone files are relative to the topology file's folder. The root hints that
a resolver starts from are derived here: the root zone's apex NS names,
each with the address of the server entry of that name.
"""

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnslib import NS, QTYPE

from .errors import TopologyError
from .faults import FaultSpecError, parse_faults

TOP_LEVEL_KEYS = frozenset({"port", "resolver", "server"})
RESOLVER_KEYS = frozenset({"address"})
SERVER_KEYS = frozenset({"name", "address", "zones", "faults"})
ZONE_KEYS = frozenset({"origin", "file"})

# The TTL that named.root gives its records: 3,600,000 s, about 41.7 days.
ROOT_HINTS_TTL = 3600000


@dataclass(frozen=True)
class ZoneSpec:
    """One zone a server loads: its origin (absolute, lowercase) and file."""

    origin: str
    path: Path


@dataclass(frozen=True)
class ServerSpec:
    """One authoritative server: its name, IPv4 address and zones."""

    name: str
    address: str
    zones: tuple[ZoneSpec, ...]
    faults: str = ""  # a fault specification, as `dns-toy serve` reads it


@dataclass(frozen=True)
class Topology:
    """A whole hierarchy as read from a topology file."""

    path: Path
    port: int | None
    resolver_address: str | None
    servers: tuple[ServerSpec, ...]


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file.

    Raises TopologyError, prefixed with the file's path, for a missing or
    invalid file, an unknown or missing key, a bad value, or a duplicate
    server name or address. A zone file that is missing, or that declares
    another $ORIGIN than its entry, raises it too.
    """
    topology_path = Path(path)
    data = _read_toml(topology_path)
    _check_keys(topology_path, data, TOP_LEVEL_KEYS, "the top-level table")
    port = _read_port(topology_path, data.get("port"))
    resolver_address = _read_resolver(topology_path, data.get("resolver"))
    entries = data.get("server", [])
    if not isinstance(entries, list) or not entries:
        raise TopologyError(f"{topology_path}: no [[server]] entries")
    servers = tuple(
        _read_server(topology_path, number, entry)
        for number, entry in enumerate(entries, start=1)
    )
    _check_unique(topology_path, servers, resolver_address)
    return Topology(topology_path, port, resolver_address, servers)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise TopologyError(f"{path}: topology file not found") from None
    except OSError as exc:
        raise TopologyError(f"{path}: failed to read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: invalid TOML: the file is not UTF-8") from None


def _check_keys(
    path: Path, table: object, allowed: frozenset[str], where: str
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise TopologyError(f"{path}: {where} must be a table")
    for key in table:
        if key not in allowed:
            expected = ", ".join(sorted(allowed))
            raise TopologyError(
                f"{path}: unknown key '{key}' in {where}. Expected one of: {expected}."
            )
    return table


def _read_port(path: Path, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise TopologyError(f"{path}: invalid port {value!r} (expected 1 to 65535)")
    return value


def _read_resolver(path: Path, table: object) -> str | None:
    if table is None:
        return None
    resolver = _check_keys(path, table, RESOLVER_KEYS, "[resolver]")
    return _read_address(path, resolver.get("address"), "[resolver]")


def _read_address(path: Path, value: object, where: str) -> str:
    if value is None:
        raise TopologyError(f"{path}: missing key 'address' in {where}")
    try:
        address = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise TopologyError(
            f"{path}: invalid IPv4 address {value!r} in {where}"
        ) from None
    return str(address)


def _read_server(path: Path, number: int, entry: object) -> ServerSpec:
    where = f"[[server]] entry {number}"
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        where += f" ({entry['name']})"
    server = _check_keys(path, entry, SERVER_KEYS, where)
    name = server.get("name")
    if not isinstance(name, str) or not name.strip("."):
        raise TopologyError(f"{path}: missing or empty key 'name' in {where}")
    address = _read_address(path, server.get("address"), where)
    zones = server.get("zones")
    if not isinstance(zones, list) or not zones:
        raise TopologyError(f"{path}: {where} needs a non-empty list 'zones'")
    specs = tuple(_read_zone(path, zone, where) for zone in zones)
    origins = [spec.origin for spec in specs]
    for origin in origins:
        if origins.count(origin) > 1:
            raise TopologyError(f"{path}: zone {origin} is listed twice in {where}")
    faults = _read_faults(path, server.get("faults", ""), where)
    return ServerSpec(name.rstrip(".").lower(), address, specs, faults)


def _read_faults(path: Path, value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(f"{path}: 'faults' in {where} must be a string")
    try:
        parse_faults(value)
    except FaultSpecError as exc:
        raise TopologyError(f"{path}: {where}: {exc}") from None
    return value


def _read_zone(path: Path, table: object, where: str) -> ZoneSpec:
    zone = _check_keys(path, table, ZONE_KEYS, f"a zone of {where}")
    origin = zone.get("origin")
    file = zone.get("file")
    if not isinstance(origin, str) or not isinstance(file, str):
        raise TopologyError(
            f"{path}: a zone of {where} needs string keys 'origin' and 'file'"
        )
    origin = absolute_name(origin)
    zone_path = path.parent / file
    if not zone_path.is_file():
        raise TopologyError(
            f"{path}: zone file not found: {zone_path} (zone {origin} of {where})"
        )
    declared = _declared_origin(zone_path)
    if declared is not None and declared != origin:
        raise TopologyError(
            f"{path}: {zone_path} declares $ORIGIN {declared}, "
            f"but {where} lists it as zone {origin}"
        )
    return ZoneSpec(origin, zone_path)


def _declared_origin(zone_path: Path) -> str | None:
    # `serve` takes a zone's origin from the file's first $ORIGIN line, so a
    # file that names another origin would serve a different zone.
    with zone_path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            fields = line.split(";", 1)[0].split()
            if not fields:
                continue
            if fields[0].upper() == "$ORIGIN" and len(fields) > 1:
                return absolute_name(fields[1])
            return None
    return None


def _check_unique(
    path: Path, servers: tuple[ServerSpec, ...], resolver_address: str | None
) -> None:
    owners: dict[str, str] = {}
    if resolver_address is not None:
        owners[resolver_address] = "the resolver"
    names: set[str] = set()
    for server in servers:
        if server.name in names:
            raise TopologyError(f"{path}: duplicate server name {server.name}")
        names.add(server.name)
        other = owners.get(server.address)
        if other is not None:
            raise TopologyError(
                f"{path}: duplicate address {server.address} "
                f"({other} and {server.name})"
            )
        owners[server.address] = server.name


def absolute_name(name: str) -> str:
    """Return `name` lowercased with exactly one trailing dot ("." for the root)."""
    return name.strip().rstrip(".").lower() + "."


def root_servers(topology: Topology) -> list[tuple[ServerSpec, ZoneSpec]]:
    """Return the servers that serve the root zone, with their root zone entry."""
    found: list[tuple[ServerSpec, ZoneSpec]] = []
    for server in topology.servers:
        for zone in server.zones:
            if zone.origin == ".":
                found.append((server, zone))
    return found


def root_hints(topology: Topology) -> list[tuple[str, str]]:
    """Derive root hints as (NS name, IPv4 address) pairs, in the zone's order.

    The names are the root zone's apex NS RRset. Each name is matched to the
    server entry of that name, whose address is the hint. A server that
    serves the root zone without being named in that RRset is no hint.
    Raises TopologyError when no server serves the root zone or an NS name
    has no server entry. A bad root zone file raises ZoneFileError.
    """
    serving = root_servers(topology)
    if not serving:
        raise TopologyError(f"{topology.path}: no server serves the root zone '.'")
    by_name = {server.name: server for server in topology.servers}
    root_zone = serving[0][1].path
    ns_names = _root_ns_names(root_zone)
    if not ns_names:
        raise TopologyError(f"{root_zone}: the root zone has no NS records at its apex")
    hints: list[tuple[str, str]] = []
    for ns_name in ns_names:
        server = by_name.get(ns_name.rstrip("."))
        if server is None:
            raise TopologyError(
                f"{topology.path}: the root zone names {ns_name} as a name "
                "server, but no [[server]] entry has that name"
            )
        hints.append((ns_name, server.address))
    return hints


def _root_ns_names(zone_path: Path) -> list[str]:
    from .zonefile import load_zone

    zone = load_zone(str(zone_path), ".")
    apex = zone.rrsets_at(zone.origin) or {}
    rrset = apex.get(QTYPE.NS)
    names: list[str] = []
    for rdata in rrset.rdatas if rrset is not None else ():
        assert isinstance(rdata, NS)
        names.append(absolute_name(str(rdata.label)))
    return names


def format_root_hints(hints: list[tuple[str, str]]) -> str:
    """Format hints like named.root: the root NS RRset, then each name's A."""
    width = max([len(name) for name, _ in hints] + [1])
    lines = [
        "; Root hints for the dns-toy hierarchy, in the format of named.root.",
        "; A resolver starts every lookup by asking one of these servers.",
        ";",
    ]
    for name, _ in hints:
        lines.append(f"{'.':<{width}}  {ROOT_HINTS_TTL}  NS  {name}")
    for name, address in hints:
        lines.append(f"{name:<{width}}  {ROOT_HINTS_TTL}  A   {address}")
    return "\n".join(lines) + "\n"


def read_root_hints(path: str | Path) -> list[tuple[str, str]]:
    """Read (name, IPv4 address) pairs from the A records of a named.root file.

    Each record is one line of owner, optional TTL, optional class IN, type
    and data. NS and AAAA records are skipped and `;` starts a comment.
    Raises TopologyError for a missing file or an unreadable line.
    """
    hints_path = Path(path)
    try:
        text = hints_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{hints_path}: root hints file not found") from None
    except UnicodeDecodeError:
        raise TopologyError(f"{hints_path}: root hints file is not UTF-8 text") from None
    except OSError as exc:
        raise TopologyError(f"{hints_path}: failed to read: {exc.strerror}") from None
    hints: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(";", 1)[0].split()
        if not fields:
            continue
        hint = _read_hint_line(fields)
        if hint is None:
            raise TopologyError(f"{hints_path}:{number}: invalid root hints line")
        if hint[1]:
            hints.append(hint)
    return hints


def _read_hint_line(fields: list[str]) -> tuple[str, str] | None:
    # Returns (name, address), with an empty address for a record that is
    # not an A record, or None when the line does not parse.
    owner, rest = fields[0], fields[1:]
    if rest and rest[0].isdigit():
        rest = rest[1:]
    if rest and rest[0].upper() == "IN":
        rest = rest[1:]
    if len(rest) != 2:
        return None
    rtype, data = rest[0].upper(), rest[1]
    if rtype != "A":
        return (absolute_name(owner), "")
    try:
        return (absolute_name(owner), str(ipaddress.IPv4Address(data)))
    except ipaddress.AddressValueError:
        return None
