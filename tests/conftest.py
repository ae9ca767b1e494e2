"""Shared fixtures: a running `dns-toy up` hierarchy, free ports and dig."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dns_toy.runstate import process_alive
from dns_toy.topology import Topology, load_topology

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = REPO / "zones" / "topology.toml"
READY_LINE = "Press Ctrl-C to stop."
START_TIMEOUT = 30.0  # seconds for `up` to print READY_LINE
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL for `up`


def free_port(
    addresses: list[str], port_range: tuple[int, int] = (20000, 40000)
) -> int:
    """Return a port in `port_range` (both ends included) that is free for
    UDP and TCP on `addresses`."""
    low, high = port_range
    for _ in range(200):
        port = random.randint(low, high)
        if all(port_is_free(address, port) for address in addresses):
            return port
    raise RuntimeError(f"no free port in {low}-{high} on {', '.join(addresses)}")


def port_is_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def stop_processes(
    processes: Sequence["subprocess.Popen[Any]"], timeout: float
) -> None:
    """Stop each process by its PID: SIGTERM to every one that runs, then
    SIGKILL to one that has not exited `timeout` seconds into its wait."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_process(process: "subprocess.Popen[Any]", timeout: float) -> int:
    """Stop `process` as `stop_processes` does; return its exit status."""
    stop_processes([process], timeout)
    return process.returncode


def topology_addresses(topology: Topology) -> list[str]:
    addresses = [server.address for server in topology.servers]
    if topology.resolver_address is not None:
        addresses.append(topology.resolver_address)
    return addresses


@dataclass
class Hierarchy:
    """One `dns-toy up` process, its output file and its children's PIDs."""

    port: int
    run_dir: Path
    topology: Topology
    process: "subprocess.Popen[bytes]"
    output_path: Path
    pids: dict[str, int] = field(default_factory=dict)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def address_of(self, name: str) -> str:
        for server in self.topology.servers:
            if server.name == name:
                return server.address
        raise KeyError(name)


def start_up_process(
    topology_path: Path, port: int, run_dir: Path, output_path: Path
) -> "subprocess.Popen[bytes]":
    """Run `python -m dns_toy up` with its stdout and stderr in `output_path`."""
    command = [sys.executable, "-m", "dns_toy", "up", "--topology", str(topology_path)]
    command += ["--port", str(port), "--run-dir", str(run_dir)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with output_path.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def start_hierarchy(topology_path: Path, base: Path) -> Hierarchy:
    """Start `up` on a free port and wait for its table.

    Fails the test with the output and the child logs when `up` exits or
    does not print READY_LINE within START_TIMEOUT.
    """
    topology = load_topology(topology_path)
    port = free_port(topology_addresses(topology))
    run_dir = base / "run"
    output_path = base / "up.out"
    process = start_up_process(topology_path, port, run_dir, output_path)
    hierarchy = Hierarchy(port, run_dir, topology, process, output_path)
    deadline = time.monotonic() + START_TIMEOUT
    while READY_LINE not in hierarchy.output():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_hierarchy(hierarchy, check=False)
            pytest.fail(
                f"`dns-toy up` did not print {READY_LINE!r}:\n{hierarchy.output()}"
                f"{_child_logs(run_dir)}"
            )
        time.sleep(0.1)
    hierarchy.pids = parse_pid_table(hierarchy.output())
    return hierarchy


def parse_pid_table(output: str) -> dict[str, int]:
    """Return {name: PID} from the table that `up` prints, PID last on each row."""
    pids: dict[str, int] = {}
    in_table = False
    for line in output.splitlines():
        fields = line.split()
        if fields[:2] == ["NAME", "ADDRESS"]:
            in_table = True
        elif in_table and not fields:
            break
        elif in_table:
            pids[fields[0]] = int(fields[-1])
    return pids


def _child_logs(run_dir: Path) -> str:
    text = ""
    for log in sorted(run_dir.glob("*.log")):
        text += f"\n--- {log.name}\n{log.read_text(errors='replace')}"
    return text


def stop_hierarchy(hierarchy: Hierarchy, check: bool = True) -> None:
    """Stop `up` by PID with SIGTERM (SIGKILL after STOP_TIMEOUT).

    With `check`, assert that it exited 0 and that no child is alive.
    """
    process = hierarchy.process
    stop_process(process, STOP_TIMEOUT)
    if not check:
        return
    output = hierarchy.output()
    assert process.returncode == 0, f"`up` exited {process.returncode}:\n{output}"
    alive = [name for name, pid in hierarchy.pids.items() if process_alive(pid)]
    assert alive == [], f"still running after `up` stopped: {alive}"


@pytest.fixture(scope="session")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """The default hierarchy, started once for the test session."""
    running = start_hierarchy(DEFAULT_TOPOLOGY, tmp_path_factory.mktemp("hierarchy"))
    try:
        yield running
    finally:
        stop_hierarchy(running)


@pytest.fixture
def launch_hierarchy(
    tmp_path: Path,
) -> Iterator[Callable[[Path], Hierarchy]]:
    """Start extra hierarchies for one test, each stopped at the test's end."""
    started: list[Hierarchy] = []

    def launch(topology_path: Path) -> Hierarchy:
        base = tmp_path / f"hierarchy{len(started)}"
        base.mkdir()
        running = start_hierarchy(topology_path, base)
        started.append(running)
        return running

    yield launch
    for running in started:
        stop_hierarchy(running, check=running.process.poll() is None)


@pytest.fixture(scope="session")
def dig() -> Callable[..., str]:
    """Return a function that runs dig with +time=2 +tries=1 and returns stdout."""
    path = shutil.which("dig")
    if path is None:
        pytest.skip("dig is not installed (Debian package bind9-dnsutils)")

    def run(*args: str) -> str:
        completed = subprocess.run(
            [path, "+time=2", "+tries=1", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=15,
        )
        return completed.stdout

    return run
