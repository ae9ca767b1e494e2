"""`dns-toy demo staleness`: exact times on the simulated clock, the zone
edits it makes, and real runs against a hierarchy on a copy of zones/."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    READY_LINE,
    REPO,
    Hierarchy,
    free_port,
    parse_pid_table,
    stop_hierarchy,
    topology_addresses,
)
from dnslib import QTYPE, DNSLabel
from typer.testing import CliRunner

from dns_toy.cli import app
from dns_toy.demo import DemoError, ExperimentResult, make_plan, run_experiment
from dns_toy.demolabs import SimLab
from dns_toy.topology import load_topology
from dns_toy.zoneedit import RRsetEdit, ZoneEditError, edit_rrset
from dns_toy.zonefile import parse_zone_text

TOPOLOGY = REPO / "zones" / "topology.toml"
EXAMPLE_ZONE = REPO / "zones" / "example.com.zone"
NAME = DNSLabel("ttl30.example.com.")
OLD = "192.0.2.32"
NEW = "192.0.2.132"
SHORT_TTL = 4  # seconds, for the runs in real time


def simulate(resolvers: int = 1, lower_ttl: bool = False, low_ttl: int | None = None) -> tuple[ExperimentResult, list[str]]:
    lines: list[str] = []
    lab = SimLab.create(TOPOLOGY, NAME, resolvers)
    result = asyncio.run(
        run_experiment(lab, NAME, lambda ttl: make_plan(ttl, resolvers, lower_ttl, low_ttl), lines.append)
    )
    return result, lines


# The simulated clock: exact times.


def test_fake_clock_converges_at_ttl() -> None:
    result, _ = simulate()
    assert result.plan.change_step == 0
    assert result.converged == (30,)
    assert result.stale_seconds == (30,)
    assert [row.step for row in result.rows] == list(range(31))
    for row in result.rows[:30]:
        answer = row.resolvers[0]
        assert answer is not None
        assert row.authority.values == (NEW,)
        assert answer.values == (OLD,), row.step
        assert answer.ttl == 30 - row.step
        assert row.state(0) == "STALE"
    last = result.rows[30]
    assert last.resolvers[0] is not None
    assert last.resolvers[0].values == (NEW,)
    assert last.resolvers[0].ttl == 30
    assert last.state(0) == "FRESH"


def test_fake_clock_table_and_summary() -> None:
    _, lines = simulate()
    assert lines[0] == "ttl30.example.com. A is 192.0.2.32 with TTL 30 s at ns1.example.com (127.0.0.8, simulated)."
    assert lines[1].split() == ["T", "AUTHORITY", "resolver", "TTL", "STATE", "EVENTS"]
    assert lines[2].split() == ["0", NEW, OLD, "30", "STALE", "resolver", "caches", f"{OLD};", "record", "changed", "to", NEW]
    assert lines[31].split() == ["29", NEW, OLD, "1", "STALE"]
    assert lines[32].split() == ["30", NEW, NEW, "30", "FRESH", "resolver", "converged"]
    assert lines[33] == "resolver served stale data for 30 s (t=0 to t=30)."
    assert len(lines) == 34


def test_fake_clock_two_resolvers_disagree() -> None:
    result, lines = simulate(resolvers=2)
    assert result.plan.prime_steps == (0, 10)
    assert result.plan.change_step == 10
    assert result.converged == (30, 40)
    assert result.stale_seconds == (20, 30)
    assert result.disagreement_steps == tuple(range(30, 40))
    assert all(row.resolvers[1] is None for row in result.rows[:10])
    assert result.rows[9].state(0) == "FRESH"
    assert result.rows[10].state(0) == "STALE"
    assert result.rows[10].state(1) == "STALE"
    assert result.rows[10].resolvers[1] is not None
    assert result.rows[10].resolvers[1].ttl == 30
    assert result.rows[35].state(0) == "FRESH"
    assert result.rows[35].state(1) == "STALE"
    assert lines[-3:] == [
        "resolver served stale data for 20 s (t=10 to t=30).",
        "resolver2 served stale data for 30 s (t=10 to t=40).",
        "The resolvers gave clients different answers for 10 s (t=30 to t=40).",
    ]


def test_fake_clock_lower_ttl_first() -> None:
    result, lines = simulate(lower_ttl=True)
    plan = result.plan
    assert (plan.lower_step, plan.low_ttl, plan.change_step) == (0, 5, 31)
    assert result.converged == (35,)
    assert result.stale_seconds == (4,)
    assert result.rows[0].authority.ttl == 5
    refetched = result.rows[30].resolvers[0]
    assert refetched is not None
    assert (refetched.values, refetched.ttl) == ((OLD,), 5)
    assert result.rows[30].state(0) == "FRESH"
    assert [row.state(0) for row in result.rows[31:35]] == ["STALE"] * 4
    assert result.rows[35].state(0) == "FRESH"
    assert lines[-2] == "resolver served stale data for 4 s (t=31 to t=35)."


def test_fake_clock_low_ttl_option() -> None:
    result, _ = simulate(lower_ttl=True, low_ttl=2)
    assert result.plan.change_step == 31
    assert result.converged == (32,)
    assert result.stale_seconds == (1,)


def test_plan_rejects_low_ttl_above_ttl() -> None:
    with pytest.raises(DemoError, match="--low-ttl 30 must be between 1 and the TTL"):
        make_plan(30, 1, True, 30)


def test_fake_clock_leaves_files_alone() -> None:
    before = EXAMPLE_ZONE.read_text()
    simulate(lower_ttl=True)
    assert EXAMPLE_ZONE.read_text() == before


def test_fake_clock_command_line() -> None:
    started = time.monotonic()
    result = CliRunner().invoke(app, ["demo", "staleness", "--clock", "fake", "--resolvers", "2"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "resolver2 served stale data for 30 s (t=10 to t=40)." in result.output
    # The simulated clock does not wait: 40 s of TTLs take well under a second.
    assert elapsed < 1.0


def test_demo_rejects_unknown_name() -> None:
    # The root zone contains every name, so its server is the authority asked.
    result = CliRunner().invoke(app, ["demo", "staleness", "www.nowhere.test", "--clock", "fake"])
    assert result.exit_code == 1
    assert result.output == (
        "error: a.root-servers.net (127.0.0.2, simulated) has no A record for www.nowhere.test.: NXDOMAIN\n"
    )


def test_demo_rejects_name_without_address() -> None:
    result = CliRunner().invoke(app, ["demo", "staleness", "example.com", "--clock", "fake"])
    assert result.exit_code == 1
    assert "has no A record for example.com.: NODATA" in result.output


# The zone edits.


def test_edit_rrset_keeps_other_lines() -> None:
    text = EXAMPLE_ZONE.read_text()
    edit = RRsetEdit(NAME, QTYPE.A, (NEW,), 5)
    edited = edit_rrset(text, str(EXAMPLE_ZONE), edit, 2026120402)
    old_lines = text.splitlines()
    new_lines = edited.splitlines()
    assert len(new_lines) == len(old_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert changed == [
        ("            2026120401 ; serial", "            2026120402 ; serial"),
        ("ttl30       30  IN  A       192.0.2.32", f"ttl30.example.com. 5 IN A {NEW}"),
    ]


def test_edit_rrset_of_several_records() -> None:
    text = EXAMPLE_ZONE.read_text()
    edit = RRsetEdit(DNSLabel("pool.example.com."), QTYPE.A, ("192.0.2.50", "192.0.2.51"), 60)
    zone = parse_zone_text(edit_rrset(text, str(EXAMPLE_ZONE), edit, 7), path=str(EXAMPLE_ZONE))
    rrset = zone.rrsets_at(DNSLabel("pool.example.com."))[QTYPE.A]
    assert sorted(str(rd) for rd in rrset.rdatas) == ["192.0.2.50", "192.0.2.51"]
    assert rrset.ttl == 60
    assert zone.serial == 7


def test_edit_rrset_missing_record(tmp_path: Path) -> None:
    text = EXAMPLE_ZONE.read_text()
    edit = RRsetEdit(DNSLabel("nosuch.example.com."), QTYPE.A, (NEW,), 5)
    with pytest.raises(ZoneEditError, match="no A record for nosuch.example.com."):
        edit_rrset(text, str(EXAMPLE_ZONE), edit, 2)


def test_edit_rrset_serial_on_one_line(tmp_path: Path) -> None:
    zone_file = tmp_path / "one.zone"
    zone_file.write_text(
        "$ORIGIN one.test.\n@ 60 IN SOA ns hostmaster 41 7200 3600 1209600 60 ; all on one line\n"
        "@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nwww 60 IN A 192.0.2.2\n"
    )
    edit = RRsetEdit(DNSLabel("www.one.test."), QTYPE.A, ("192.0.2.3",), 60)
    edited = edit_rrset(zone_file.read_text(), str(zone_file), edit, 42)
    assert "hostmaster 42 7200" in edited
    assert parse_zone_text(edited, path=str(zone_file)).serial == 42


# Real runs, against a hierarchy on a copy of zones/ with a short TTL.


def copy_zones_with_short_ttl(base: Path) -> Path:
    folder = base / "zones"
    shutil.copytree(REPO / "zones", folder)
    zone = folder / "example.com.zone"
    text = zone.read_text()
    assert "ttl30       30  IN  A" in text
    zone.write_text(text.replace("ttl30       30  IN  A", f"ttl30       {SHORT_TTL}   IN  A"))
    return folder / "topology.toml"


def start_up(topology_path: Path, base: Path, *options: str) -> Hierarchy:
    """Start `dns-toy up` with extra options and wait for its table."""
    topology = load_topology(topology_path)
    port = free_port([*topology_addresses(topology), "127.0.0.13"])
    run_dir = base / "run"
    output_path = base / "up.out"
    command = [sys.executable, "-m", "dns_toy", "up", "--topology", str(topology_path),
               "--port", str(port), "--run-dir", str(run_dir), *options]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with output_path.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT)
    hierarchy = Hierarchy(port, run_dir, topology, process, output_path)
    deadline = time.monotonic() + 30
    while READY_LINE not in hierarchy.output():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_hierarchy(hierarchy, check=False)
            pytest.fail(f"`dns-toy up` did not start:\n{hierarchy.output()}")
        time.sleep(0.1)
    hierarchy.pids = parse_pid_table(hierarchy.output())
    return hierarchy


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Hierarchy]:
    """A hierarchy with two resolvers, on zones whose ttl30 A has a 4 s TTL."""
    hierarchy = start_up(copy_zones_with_short_ttl(tmp_path), tmp_path, "--extra-resolver", "127.0.0.13")
    try:
        yield hierarchy
    finally:
        stop_hierarchy(hierarchy)


ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(.*)$")


def timeline(output: str) -> list[list[str]]:
    """Return the fields of every row of the timeline table."""
    rows = []
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            rows.append(line.split())
    return rows


def run_demo(hierarchy: Hierarchy, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dns_toy", "demo", "staleness", "--run-dir", str(hierarchy.run_dir), *options],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )


def zone_of(hierarchy: Hierarchy) -> Path:
    return hierarchy.topology.path.parent / "example.com.zone"


def test_live_demo_stale_then_converged(live: Hierarchy) -> None:
    original = zone_of(live).read_text()
    result = run_demo(live)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = timeline(result.stdout)
    states = [row[4] for row in rows]
    assert "STALE" in states
    converged = next(int(row[0]) for row in rows if row[4] == "FRESH")
    # Cached at t=0 for 4 s: the new data comes back within a second of t=4.
    assert SHORT_TTL <= converged <= SHORT_TTL + 1, result.stdout
    assert all(row[4] == "STALE" for row in rows if int(row[0]) < converged)
    assert all(row[2] == OLD for row in rows if int(row[0]) < converged)
    assert rows[-1][1:3] == [NEW, NEW]
    assert f"resolver served stale data for {converged} s (t=0 to t={converged})." in result.stdout
    assert zone_of(live).read_text() == original
    assert f"Restored {zone_of(live)} (serial 2026120401)." in result.stdout
    assert not list(live.run_dir.glob("demo-backup-*"))


def test_live_demo_two_resolvers(live: Hierarchy) -> None:
    result = run_demo(live, "--resolvers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    header = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("T "))
    assert header.split()[2:9] == ["resolver", "TTL", "STATE", "resolver2", "TTL", "STATE", "EVENTS"]
    rows = timeline(result.stdout)
    # resolver2 caches one step later (a third of the 4 s TTL, at least 1 s).
    assert rows[0][5:8] == ["-", "-", "-"]
    first = next(int(row[0]) for row in rows if row[4] == "FRESH" and int(row[0]) >= 1)
    second = next(int(row[0]) for row in rows if row[7] == "FRESH" and int(row[0]) >= 1)
    assert SHORT_TTL <= first <= SHORT_TTL + 1, result.stdout
    assert SHORT_TTL + 1 <= second <= SHORT_TTL + 2, result.stdout
    assert second > first
    assert "The resolvers gave clients different answers" in result.stdout


def test_live_demo_restores_zone_on_sigterm(live: Hierarchy) -> None:
    original = zone_of(live).read_text()
    command = [sys.executable, "-m", "dns_toy", "demo", "staleness", "--run-dir", str(live.run_dir)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if ROW.match(line):
                break  # the first row: the zone file has been changed
        assert zone_of(live).read_text() != original
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert f"Restored {zone_of(live)} (serial 2026120401)." in stdout
    assert zone_of(live).read_text() == original
    assert not list(live.run_dir.glob("demo-backup-*"))


def test_live_demo_needs_second_resolver(tmp_path: Path) -> None:
    hierarchy = start_up(copy_zones_with_short_ttl(tmp_path), tmp_path)
    try:
        result = run_demo(hierarchy, "--resolvers", "2")
        zone = zone_of(hierarchy).read_text()
    finally:
        stop_hierarchy(hierarchy)
    assert result.returncode == 1
    assert "this hierarchy runs 1 resolver(s), not 2; start more with `dns-toy up --extra-resolver 127.0.0.13`" in result.stderr
    assert f"ttl30       {SHORT_TTL}   IN  A" in zone
