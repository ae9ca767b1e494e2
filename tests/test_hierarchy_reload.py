"""Editing a zone of a running hierarchy and reloading it with
`dns-toy reload`, and the run state that `up` records for that."""

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.query
from conftest import REPO, Hierarchy

RELOAD_DEADLINE = 1.0  # seconds within which the authority must change
EXAMPLE_ADDRESS = "127.0.0.8"


def copy_default_zones(tmp_path: Path) -> Path:
    folder = tmp_path / "zones"
    shutil.copytree(REPO / "zones", folder)
    return folder / "topology.toml"


def www_address(hierarchy: Hierarchy, server: str) -> str:
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.query.udp(query, server, port=hierarchy.port, timeout=2)
    return reply.answer[0][0].to_text()


def run_reload(hierarchy: Hierarchy, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dns_toy", "reload", *names, "--run-dir", str(hierarchy.run_dir)],
        capture_output=True, text=True, timeout=30, check=False,
    )


def edit_www(zone: Path, old: str, new: str) -> None:
    text = zone.read_text()
    text = text.replace("2026120401 ; serial", "2026120402 ; serial")
    zone.write_text(text.replace(old, new))


def wait_for(condition: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_state_file_lists_processes(tmp_path: Path, launch_hierarchy: Callable[[Path], Hierarchy]) -> None:
    hierarchy = launch_hierarchy(copy_default_zones(tmp_path))
    state = json.loads((hierarchy.run_dir / "state.json").read_text())
    assert state["up_pid"] == hierarchy.process.pid
    recorded = {entry["name"]: entry["pid"] for entry in state["processes"]}
    assert recorded == hierarchy.pids


def test_reload_changes_answer_at_authority(tmp_path: Path, launch_hierarchy: Callable[[Path], Hierarchy]) -> None:
    topology = copy_default_zones(tmp_path)
    hierarchy = launch_hierarchy(topology)
    zone = topology.parent / "example.com.zone"
    assert www_address(hierarchy, EXAMPLE_ADDRESS) == "192.0.2.10"

    edit_www(zone, "192.0.2.10", "192.0.2.110")
    result = run_reload(hierarchy, "ns1.example.com")
    assert result.returncode == 0, result.stderr
    assert "reload sent to ns1.example.com" in result.stdout
    changed = wait_for(lambda: www_address(hierarchy, EXAMPLE_ADDRESS) == "192.0.2.110", RELOAD_DEADLINE)
    assert changed
    # Only the server named was reloaded: its replica still has the old data.
    assert www_address(hierarchy, "127.0.0.9") == "192.0.2.10"


def test_broken_edit_keeps_old_answer(tmp_path: Path, launch_hierarchy: Callable[[Path], Hierarchy]) -> None:
    topology = copy_default_zones(tmp_path)
    hierarchy = launch_hierarchy(topology)
    zone = topology.parent / "example.com.zone"
    lines = zone.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("www") and " A " in line)
    edit_www(zone, "192.0.2.10", "192.0.2.300")

    result = run_reload(hierarchy)
    assert result.returncode == 0, result.stderr
    log = hierarchy.run_dir / "ns1.example.com.log"
    assert wait_for(lambda: f"{zone}:{number}: " in log.read_text(), 5.0), log.read_text()
    assert www_address(hierarchy, EXAMPLE_ADDRESS) == "192.0.2.10"


def test_reload_unknown_server_fails(tmp_path: Path, launch_hierarchy: Callable[[Path], Hierarchy]) -> None:
    hierarchy = launch_hierarchy(copy_default_zones(tmp_path))
    result = run_reload(hierarchy, "ns9.nowhere")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no server named 'ns9.nowhere'")


def test_reload_without_hierarchy_fails(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dns_toy", "reload", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 1
    assert "no running hierarchy" in result.stderr
    assert "Traceback" not in result.stderr


def test_reload_pid_of_other_program_refused() -> None:
    # SIGHUP would end most programs: only `dns-toy serve` may get it.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "dns_toy", "reload", "--pid", str(sleeper.pid)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert result.returncode == 1
        assert "is not a running `dns-toy serve` process" in result.stderr
        assert sleeper.poll() is None  # still running: no signal was sent
    finally:
        sleeper.kill()
        sleeper.wait()


def test_reload_pid_of_server_works(tmp_path: Path, launch_hierarchy: Callable[[Path], Hierarchy]) -> None:
    hierarchy = launch_hierarchy(copy_default_zones(tmp_path))
    pid = hierarchy.pids["ns1.example.com"]
    result = subprocess.run(
        [sys.executable, "-m", "dns_toy", "reload", "--pid", str(pid)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"(PID {pid})" in result.stdout
