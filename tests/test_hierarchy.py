"""`dns-toy up` on loopback: every server, referrals with glue, the resolver
end to end, a server that dies, a bad zone file, and clean stops."""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from conftest import (
    DEFAULT_TOPOLOGY,
    Hierarchy,
    free_port,
    process_alive,
    start_up_process,
    stop_hierarchy,
    topology_addresses,
)

from dns_toy.topology import load_topology

Dig = Callable[..., str]
Launch = Callable[[Path], Hierarchy]

RESOLVER = "127.0.0.1"
ROOT_ADDRESSES = ["127.0.0.2", "127.0.0.3"]


@dataclass
class DigReply:
    """The parts of dig's text output that the tests check."""

    status: str = ""
    flags: set[str] = field(default_factory=set)
    # Section name ("ANSWER", "AUTHORITY", "ADDITIONAL") -> records, each as
    # (owner, type, data) with the data fields joined by one space.
    sections: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def records(self, section: str, rtype: str) -> set[tuple[str, str]]:
        return {
            (owner, data)
            for owner, found_type, data in self.sections.get(section, [])
            if found_type == rtype
        }


def parse_dig(output: str) -> DigReply:
    reply = DigReply()
    section: str | None = None
    for line in output.splitlines():
        if line.startswith(";; ->>HEADER<<-"):
            reply.status = line.split("status: ")[1].split(",")[0]
        elif line.startswith(";; flags:"):
            reply.flags = set(line.split(":")[1].split(";")[0].split())
        elif line.startswith(";; ") and line.endswith(" SECTION:"):
            section = line[3:].split()[0]
            reply.sections[section] = []
        elif not line.strip():
            section = None
        elif section is not None and section != "QUESTION" and line[0] != ";":
            owner, _ttl, _class, rtype, *data = line.split()
            reply.sections[section].append((owner.lower(), rtype, " ".join(data)))
    return reply


def ask_dig(dig: Dig, address: str, port: int, *query: str) -> DigReply:
    output = dig(f"@{address}", "-p", str(port), *query)
    reply = parse_dig(output)
    assert reply.status, f"no reply from {address}:{port}:\n{output}"
    return reply


def ask(address: str, port: int, name: str, rtype: str) -> dns.message.Message:
    """Send one non-recursive UDP query with dnspython."""
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD
    return dns.query.udp(query, address, port=port, timeout=2)


def wait_for_text(hierarchy: Hierarchy, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while text not in hierarchy.output():
        assert time.monotonic() < deadline, f"no {text!r} in:\n{hierarchy.output()}"
        time.sleep(0.05)
    return hierarchy.output()


def processes_mentioning(text: str) -> list[int]:
    """Return the PIDs whose command line contains `text`, zombies excluded."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in command and process_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


# Authoritative servers, asked directly without recursion


def test_every_server_answers_apex_soa(hierarchy: Hierarchy, dig: Dig) -> None:
    for server in hierarchy.topology.servers:
        for zone in server.zones:
            where = f"{zone.origin} SOA @{server.name}"
            reply = ask_dig(
                dig, server.address, hierarchy.port, zone.origin, "SOA", "+norec"
            )
            assert reply.status == "NOERROR", where
            assert "aa" in reply.flags, where
            owners = {owner for owner, _ in reply.records("ANSWER", "SOA")}
            assert owners == {zone.origin}, where


@pytest.mark.parametrize("root", ROOT_ADDRESSES)
def test_root_referral_to_com(hierarchy: Hierarchy, dig: Dig, root: str) -> None:
    reply = ask_dig(dig, root, hierarchy.port, "www.example.com", "A", "+norec")
    assert reply.status == "NOERROR"
    assert "aa" not in reply.flags
    assert reply.sections.get("ANSWER", []) == []
    assert reply.records("AUTHORITY", "NS") == {
        ("com.", "a.gtld-servers.net."),
        ("com.", "b.gtld-servers.net."),
    }
    assert reply.records("ADDITIONAL", "A") == {
        ("a.gtld-servers.net.", "127.0.0.4"),
        ("b.gtld-servers.net.", "127.0.0.5"),
    }


def test_root_referral_with_dnspython(hierarchy: Hierarchy) -> None:
    reply = ask("127.0.0.2", hierarchy.port, "www.example.com.", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert not reply.flags & dns.flags.AA
    assert reply.answer == []
    assert [rrset.name.to_text() for rrset in reply.authority] == ["com."]
    glue = {
        rrset.name.to_text(): {r.address for r in rrset} for rrset in reply.additional
    }
    assert glue["a.gtld-servers.net."] == {"127.0.0.4"}
    assert glue["b.gtld-servers.net."] == {"127.0.0.5"}


def test_com_referral_has_glue(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = ask_dig(dig, "127.0.0.4", hierarchy.port, "www.example.com", "A", "+norec")
    assert "aa" not in reply.flags
    assert reply.records("AUTHORITY", "NS") == {
        ("example.com.", "ns1.example.com."),
        ("example.com.", "ns2.example.com."),
    }
    assert reply.records("ADDITIONAL", "A") == {
        ("ns1.example.com.", "127.0.0.8"),
        ("ns2.example.com.", "127.0.0.9"),
    }


def test_org_referral_is_glueless(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = ask_dig(dig, "127.0.0.6", hierarchy.port, "www.example.org", "A", "+norec")
    assert "aa" not in reply.flags
    assert reply.records("AUTHORITY", "NS") == {("example.org.", "ns1.exemplo.com.")}
    assert reply.records("ADDITIONAL", "A") == set()


def test_exemplo_pt_referral_to_di(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = ask_dig(
        dig, "127.0.0.11", hierarchy.port, "www.di.exemplo.pt", "A", "+norec"
    )
    assert "aa" not in reply.flags
    assert reply.records("AUTHORITY", "NS") == {
        ("di.exemplo.pt.", "ns1.di.exemplo.pt.")
    }
    assert reply.records("ADDITIONAL", "A") == {("ns1.di.exemplo.pt.", "127.0.0.12")}


def test_example_com_servers_agree(hierarchy: Hierarchy, dig: Dig) -> None:
    for address in ("127.0.0.8", "127.0.0.9"):
        reply = ask_dig(dig, address, hierarchy.port, "pool.example.com", "A", "+norec")
        assert "aa" in reply.flags, address
        assert reply.records("ANSWER", "A") == {
            ("pool.example.com.", "192.0.2.21"),
            ("pool.example.com.", "192.0.2.22"),
            ("pool.example.com.", "192.0.2.23"),
        }, address


def test_chaos_id_server_tells_replicas_apart(hierarchy: Hierarchy, dig: Dig) -> None:
    identities = {}
    for address in ("127.0.0.8", "127.0.0.9"):
        output = dig(f"@{address}", "-p", str(hierarchy.port), "CH", "TXT", "id.server", "+short")
        identities[address] = output.strip()
    assert identities == {"127.0.0.8": '"ns1.example.com"', "127.0.0.9": '"ns2.example.com"'}


# The resolver on 127.0.0.1, end to end through the whole hierarchy


def resolve(hierarchy: Hierarchy, dig: Dig, name: str, rtype: str) -> DigReply:
    return ask_dig(dig, RESOLVER, hierarchy.port, name, rtype)


def test_resolver_www_example_com(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = resolve(hierarchy, dig, "www.example.com", "A")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER", "A") == {("www.example.com.", "192.0.2.10")}
    assert "ra" in reply.flags
    # The resolver is not an authority for the data it passes on.
    assert "aa" not in reply.flags


def test_resolver_www_exemplo_com(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = resolve(hierarchy, dig, "www.exemplo.com", "A")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER", "A") == {("www.exemplo.com.", "198.51.100.10")}


def test_resolver_cname_across_zones(hierarchy: Hierarchy, dig: Dig) -> None:
    # example.org. is glueless and its CNAME points into example.com.
    reply = resolve(hierarchy, dig, "www.example.org", "A")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER", "CNAME") == {
        ("www.example.org.", "www.example.com.")
    }
    assert reply.records("ANSWER", "A") == {("www.example.com.", "192.0.2.10")}


def test_resolver_nxdomain_has_soa(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = resolve(hierarchy, dig, "nosuchname.example.com", "A")
    assert reply.status == "NXDOMAIN"
    assert reply.sections.get("ANSWER", []) == []
    owners = {owner for owner, _ in reply.records("AUTHORITY", "SOA")}
    assert owners == {"example.com."}


def test_resolver_four_levels_down(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = resolve(hierarchy, dig, "www.di.exemplo.pt", "A")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER", "A") == {("www.di.exemplo.pt.", "198.51.100.30")}


def test_resolver_mx(hierarchy: Hierarchy, dig: Dig) -> None:
    reply = resolve(hierarchy, dig, "example.com", "MX")
    assert reply.status == "NOERROR"
    assert reply.records("ANSWER", "MX") == {("example.com.", "10 mail.example.com.")}


# Process management: a dying child, a bad zone, stops by signal


def test_killed_server_is_reported(launch_hierarchy: Launch) -> None:
    running = launch_hierarchy(DEFAULT_TOPOLOGY)
    victim = running.pids["ns2.example.com"]
    os.kill(victim, signal.SIGKILL)

    report = f"ns2.example.com (PID {victim}) exited"
    wait_for_text(running, report, timeout=10)
    time.sleep(0.5)
    assert running.output().count(report) == 1
    assert running.process.poll() is None

    for name in ("ns1.example.com", "a.root-servers.net", "a.gtld-servers.net"):
        address = running.address_of(name)
        reply = ask(address, running.port, "example.com.", "SOA")
        assert reply.rcode() == dns.rcode.NOERROR, name

    stop_hierarchy(running)


def test_sigterm_stops_every_process(launch_hierarchy: Launch) -> None:
    running = launch_hierarchy(DEFAULT_TOPOLOGY)
    assert len(running.pids) == len(running.topology.servers) + 1
    stop_hierarchy(running)
    assert f"Stopped {len(running.pids)} processes." in running.output()


def test_sigkill_of_up_stops_children(launch_hierarchy: Launch) -> None:
    # The kernel sends SIGTERM to each child when `up` dies (PR_SET_PDEATHSIG).
    running = launch_hierarchy(DEFAULT_TOPOLOGY)
    running.process.kill()
    running.process.wait()
    deadline = time.monotonic() + 10
    alive = list(running.pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [name for name, pid in running.pids.items() if process_alive(pid)]
    assert alive == []


def test_bad_zone_line_fails_up(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(DEFAULT_TOPOLOGY.parent, zones)
    zone_path = zones / "example.org.zone"
    lines = zone_path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("www"))
    lines[number - 1] = "www             IN  A       not-an-address"
    zone_path.write_text("\n".join(lines) + "\n")

    topology_path = zones / "topology.toml"
    port = free_port(topology_addresses(load_topology(topology_path)))
    output_path = tmp_path / "up.out"
    process = start_up_process(topology_path, port, tmp_path / "run", output_path)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = output_path.read_text()

    assert process.returncode == 1, output
    assert f"{zone_path}:{number}:" in output
    assert "Press Ctrl-C" not in output
    assert processes_mentioning(str(zones)) == []
