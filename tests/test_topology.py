"""The topology file, root hints derived from it, and the shipped zone data.

The delegation checks read the zone files with dnspython, a reader that is
independent of dns-toy's own, so a mistake in either shows up here.
"""

from pathlib import Path

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from dns_toy.errors import TopologyError
from dns_toy.topology import (
    Topology,
    format_root_hints,
    load_topology,
    read_root_hints,
    root_hints,
)

ZONES = Path(__file__).resolve().parent.parent / "zones"
DEFAULT_TOPOLOGY = ZONES / "topology.toml"

ZONE_TEXT = """\
$ORIGIN {origin}
$TTL 300
@    IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 60
@    IN NS  ns1.{origin}
ns1  IN A   127.0.0.2
"""


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(DEFAULT_TOPOLOGY)


def write_topology(folder: Path, text: str) -> Path:
    path = folder / "topology.toml"
    path.write_text(text)
    (folder / "test.zone").write_text(ZONE_TEXT.format(origin="test."))
    return path


def server_entry(name: str, address: str, zone_file: str = "test.zone") -> str:
    return (
        f'[[server]]\nname = "{name}"\naddress = "{address}"\n'
        f'zones = [{{ origin = "test.", file = "{zone_file}" }}]\n'
    )


# Loading the default topology


def test_default_topology_port_and_resolver(topology: Topology) -> None:
    assert topology.port == 1053
    assert topology.resolver_address == "127.0.0.1"


def test_default_topology_servers(topology: Topology) -> None:
    addresses = {server.name: server.address for server in topology.servers}
    assert addresses == {
        "a.root-servers.net": "127.0.0.2",
        "b.root-servers.net": "127.0.0.3",
        "a.gtld-servers.net": "127.0.0.4",
        "b.gtld-servers.net": "127.0.0.5",
        "ns1.org-servers.net": "127.0.0.6",
        "ns1.dns.pt": "127.0.0.7",
        "ns1.example.com": "127.0.0.8",
        "ns2.example.com": "127.0.0.9",
        "ns1.exemplo.com": "127.0.0.10",
        "ns1.exemplo.pt": "127.0.0.11",
        "ns1.di.exemplo.pt": "127.0.0.12",
    }


def test_default_topology_zones(topology: Topology) -> None:
    zones = {s.name: [z.origin for z in s.zones] for s in topology.servers}
    assert zones["a.root-servers.net"] == ["."]
    assert zones["a.gtld-servers.net"] == ["com.", "net."]
    assert zones["ns1.exemplo.com"] == ["exemplo.com.", "example.org."]
    assert zones["ns1.di.exemplo.pt"] == ["di.exemplo.pt."]


def test_example_com_servers_share_file(topology: Topology) -> None:
    paths = {
        zone.path
        for server in topology.servers
        for zone in server.zones
        if zone.origin == "example.com."
    }
    assert paths == {DEFAULT_TOPOLOGY.parent / "example.com.zone"}


def test_zone_files_start_with_origin_and_ttl(topology: Topology) -> None:
    for server in topology.servers:
        for zone in server.zones:
            lines = zone.path.read_text().splitlines()
            assert lines[0] == f"$ORIGIN {zone.origin}", zone.path
            assert lines[1].startswith("$TTL "), zone.path


# Errors, with their exact messages


def test_missing_topology_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == f"{path}: topology file not found"


def test_unknown_server_key(tmp_path: Path) -> None:
    text = server_entry("ns1.test", "127.0.0.2") + 'zone = "x"\n'
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: unknown key 'zone' in [[server]] entry 1 (ns1.test). "
        "Expected one of: address, faults, name, zones."
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_topology(tmp_path, "ports = 1053\n" + server_entry("a", "127.0.0.2"))
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: unknown key 'ports' in the top-level table. "
        "Expected one of: port, resolver, server."
    )


def test_duplicate_server_address(tmp_path: Path) -> None:
    text = server_entry("a.test", "127.0.0.2") + server_entry("b.test", "127.0.0.2")
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: duplicate address 127.0.0.2 (a.test and b.test)"
    )


def test_server_address_of_resolver(tmp_path: Path) -> None:
    text = '[resolver]\naddress = "127.0.0.1"\n' + server_entry("a.test", "127.0.0.1")
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: duplicate address 127.0.0.1 (the resolver and a.test)"
    )


def test_duplicate_server_name(tmp_path: Path) -> None:
    text = server_entry("a.test", "127.0.0.2") + server_entry("A.test.", "127.0.0.3")
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == f"{path}: duplicate server name a.test"


def test_missing_zone_file(tmp_path: Path) -> None:
    path = write_topology(tmp_path, server_entry("a.test", "127.0.0.2", "gone.zone"))
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: zone file not found: {tmp_path / 'gone.zone'} "
        "(zone test. of [[server]] entry 1 (a.test))"
    )


def test_zone_file_with_other_origin(tmp_path: Path) -> None:
    path = write_topology(tmp_path, server_entry("a.test", "127.0.0.2", "o.zone"))
    (tmp_path / "o.zone").write_text(ZONE_TEXT.format(origin="other."))
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: {tmp_path / 'o.zone'} declares $ORIGIN other., "
        "but [[server]] entry 1 (a.test) lists it as zone test."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 1053\n", "no [[server]] entries"),
        (
            "port = 70000\n" + server_entry("a", "127.0.0.2"),
            "invalid port 70000 (expected 1 to 65535)",
        ),
        (
            server_entry("a", "127.0.0.256"),
            "invalid IPv4 address '127.0.0.256' in [[server]] entry 1 (a)",
        ),
        (
            '[[server]]\naddress = "127.0.0.2"\nzones = []\n',
            "missing or empty key 'name' in [[server]] entry 1",
        ),
        (
            '[[server]]\nname = "a"\naddress = "127.0.0.2"\nzones = []\n',
            "[[server]] entry 1 (a) needs a non-empty list 'zones'",
        ),
        ("port = \n", "invalid TOML: Invalid value (at line 1, column 8)"),
    ],
)
def test_invalid_topology(tmp_path: Path, text: str, message: str) -> None:
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == f"{path}: {message}"


# Root hints


def test_root_hints_from_default(topology: Topology) -> None:
    assert root_hints(topology) == [
        ("a.root-servers.net.", "127.0.0.2"),
        ("b.root-servers.net.", "127.0.0.3"),
    ]


def test_shipped_root_hints_match(topology: Topology) -> None:
    shipped = (ZONES / "root.hints").read_text()
    assert shipped == format_root_hints(root_hints(topology))


def test_root_hints_format() -> None:
    text = format_root_hints([("a.root.test.", "127.0.0.2")])
    records = [line.split() for line in text.splitlines() if line[:1] != ";"]
    assert records == [
        [".", "3600000", "NS", "a.root.test."],
        ["a.root.test.", "3600000", "A", "127.0.0.2"],
    ]


def test_read_root_hints_round_trip(tmp_path: Path) -> None:
    hints = [("a.root.test.", "127.0.0.2"), ("b.root.test.", "127.0.0.3")]
    path = tmp_path / "root.hints"
    path.write_text(format_root_hints(hints))
    assert read_root_hints(path) == hints


def test_read_root_hints_named_root_style(tmp_path: Path) -> None:
    path = tmp_path / "named.root"
    path.write_text(
        ";       This file holds the information on root name servers\n"
        ".                        3600000      NS    A.ROOT-SERVERS.NET.\n"
        "A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4\n"
        "A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30\n"
        "; FORMERLY NS1.ISI.EDU\n"
        "B.ROOT-SERVERS.NET.      3600000  IN  A     170.247.170.2  ; trailing\n"
    )
    assert read_root_hints(path) == [
        ("a.root-servers.net.", "198.41.0.4"),
        ("b.root-servers.net.", "170.247.170.2"),
    ]


def test_read_root_hints_invalid_line(tmp_path: Path) -> None:
    path = tmp_path / "root.hints"
    path.write_text("; hints\na.root.test. 3600000 A 300.1.2.3\n")
    with pytest.raises(TopologyError) as caught:
        read_root_hints(path)
    assert str(caught.value) == f"{path}:2: invalid root hints line"


def test_root_ns_without_server(tmp_path: Path) -> None:
    (tmp_path / "root.zone").write_text(
        "$ORIGIN .\n$TTL 300\n"
        "@ IN SOA a.root.test. hostmaster.root.test. 1 3600 600 86400 60\n"
        "@ IN NS a.root.test.\n@ IN NS b.root.test.\n"
        "a.root.test. IN A 127.0.0.2\nb.root.test. IN A 127.0.0.3\n"
    )
    path = tmp_path / "topology.toml"
    path.write_text(
        '[[server]]\nname = "a.root.test"\naddress = "127.0.0.2"\n'
        'zones = [{ origin = ".", file = "root.zone" }]\n'
    )
    with pytest.raises(TopologyError) as caught:
        root_hints(load_topology(path))
    assert str(caught.value) == (
        f"{path}: the root zone names b.root.test. as a name server, "
        "but no [[server]] entry has that name"
    )


def test_root_hints_without_root(tmp_path: Path) -> None:
    path = write_topology(tmp_path, server_entry("a.test", "127.0.0.2"))
    with pytest.raises(TopologyError) as caught:
        root_hints(load_topology(path))
    assert str(caught.value) == f"{path}: no server serves the root zone '.'"


# Delegations in the shipped zone files, read with dnspython


def read_zones(topology: Topology) -> dict[dns.name.Name, dns.zone.Zone]:
    zones: dict[dns.name.Name, dns.zone.Zone] = {}
    for server in topology.servers:
        for spec in server.zones:
            origin = dns.name.from_text(spec.origin)
            if origin not in zones:
                zones[origin] = dns.zone.from_file(
                    str(spec.path), origin, relativize=False
                )
    return zones


def server_addresses(topology: Topology) -> dict[dns.name.Name, str]:
    return {
        dns.name.from_text(server.name): server.address for server in topology.servers
    }


def delegations(zone: dns.zone.Zone) -> dict[dns.name.Name, set[dns.name.Name]]:
    """Return {child origin: NS names} for every zone cut below the apex."""
    cuts: dict[dns.name.Name, set[dns.name.Name]] = {}
    for name, node in zone.nodes.items():
        ns = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)
        if name != zone.origin and ns is not None:
            cuts[name] = {rdata.target for rdata in ns}
    return cuts


def apex_ns(zone: dns.zone.Zone) -> set[dns.name.Name]:
    assert zone.origin is not None
    return {rdata.target for rdata in zone.find_rdataset(zone.origin, "NS")}


def addresses_at(zone: dns.zone.Zone, name: dns.name.Name) -> set[str]:
    rdataset = zone.get_rdataset(name, "A")
    return set() if rdataset is None else {rdata.address for rdata in rdataset}


def parent_origin(
    origin: dns.name.Name, zones: dict[dns.name.Name, dns.zone.Zone]
) -> dns.name.Name:
    name = origin.parent()
    while name not in zones:
        name = name.parent()
    return name


def test_every_zone_has_soa_and_ns(topology: Topology) -> None:
    for origin, zone in read_zones(topology).items():
        assert zone.get_rdataset(origin, "SOA") is not None, origin
        assert apex_ns(zone), origin


def test_soa_serials_and_minimums(topology: Topology) -> None:
    for origin, zone in read_zones(topology).items():
        soa = zone.find_rdataset(origin, "SOA")[0]
        assert soa.serial == 2026120401, origin
        expected_minimum = 60 if origin == dns.name.from_text("example.com.") else 300
        assert soa.minimum == expected_minimum, origin


def test_every_zone_is_delegated(topology: Topology) -> None:
    zones = read_zones(topology)
    for origin in zones:
        if origin == dns.name.root:
            continue
        parent = parent_origin(origin, zones)
        assert origin in delegations(zones[parent]), f"{parent} lacks NS for {origin}"


def test_delegation_ns_matches_child_apex(topology: Topology) -> None:
    zones = read_zones(topology)
    for origin, zone in zones.items():
        for child, ns_names in delegations(zone).items():
            assert child in zones, f"{origin} delegates {child}, which no server has"
            assert ns_names == apex_ns(zones[child]), f"{origin} -> {child}"


def test_glue_matches_server_addresses(topology: Topology) -> None:
    zones = read_zones(topology)
    servers = server_addresses(topology)
    for origin, zone in zones.items():
        for child, ns_names in delegations(zone).items():
            for ns_name in ns_names:
                glue = addresses_at(zone, ns_name)
                where = f"{origin} delegation of {child}, NS {ns_name}"
                if ns_name.is_subdomain(origin):
                    assert glue == {servers[ns_name]}, where
                else:
                    assert glue == set(), f"{where}: out-of-zone glue"


def test_root_ns_glue_matches_servers(topology: Topology) -> None:
    root = read_zones(topology)[dns.name.root]
    servers = server_addresses(topology)
    for ns_name in apex_ns(root):
        assert addresses_at(root, ns_name) == {servers[ns_name]}, ns_name


def test_server_addresses_in_zone_data(topology: Topology) -> None:
    zones = read_zones(topology)
    servers = server_addresses(topology)
    for origin, zone in zones.items():
        for name, address in servers.items():
            found = addresses_at(zone, name)
            assert found in (set(), {address}), f"{name} in {origin}: {found}"


def test_ns_names_serve_their_zone(topology: Topology) -> None:
    served = {
        (dns.name.from_text(server.name), dns.name.from_text(zone.origin))
        for server in topology.servers
        for zone in server.zones
    }
    for origin, zone in read_zones(topology).items():
        for ns_name in apex_ns(zone):
            assert (ns_name, origin) in served, f"{ns_name} does not serve {origin}"


def test_example_org_is_glueless(topology: Topology) -> None:
    org = read_zones(topology)[dns.name.from_text("org.")]
    ns_names = delegations(org)[dns.name.from_text("example.org.")]
    assert ns_names == {dns.name.from_text("ns1.exemplo.com.")}
    assert addresses_at(org, dns.name.from_text("ns1.exemplo.com.")) == set()


def test_required_records_present(topology: Topology) -> None:
    zones = read_zones(topology)
    com = zones[dns.name.from_text("example.com.")]
    org = zones[dns.name.from_text("example.org.")]
    di = zones[dns.name.from_text("di.exemplo.pt.")]
    name = dns.name.from_text
    assert addresses_at(com, name("www.example.com.")) == {"192.0.2.10"}
    assert len(addresses_at(com, name("pool.example.com."))) == 3
    mx = com.find_rdataset(name("example.com."), "MX")
    assert {rdata.exchange for rdata in mx} == {name("mail.example.com.")}
    assert addresses_at(com, name("mail.example.com.")) == {"192.0.2.25"}
    assert com.get_rdataset(name("example.com."), "TXT") is not None
    assert com.find_rdataset(name("ttl10.example.com."), "A").ttl == 10
    assert com.find_rdataset(name("ttl30.example.com."), "A").ttl == 30
    cname = org.find_rdataset(name("www.example.org."), "CNAME")
    assert [rdata.target for rdata in cname] == [name("www.example.com.")]
    assert addresses_at(di, name("www.di.exemplo.pt.")) == {"198.51.100.30"}


def test_server_faults_read(tmp_path: Path) -> None:
    text = server_entry("ns1.test", "127.0.0.2") + 'faults = "delay=100,drop=0.2"\n'
    topology = load_topology(write_topology(tmp_path, text))
    assert topology.servers[0].faults == "delay=100,drop=0.2"


def test_server_bad_faults_rejected(tmp_path: Path) -> None:
    text = server_entry("ns1.test", "127.0.0.2") + 'faults = "drop=3"\n'
    path = write_topology(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert str(caught.value) == (
        f"{path}: [[server]] entry 1 (ns1.test): drop must be a fraction from 0 to 1, not 3.0"
    )
