"""The control channel: the socket's protection, the protocol, and the
`dns-toy cache`, `stats` and `fault` commands against real processes."""

import asyncio
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import pytest
from conftest import (
    REPO,
    Hierarchy,
    free_port,
    start_hierarchy,
    stop_hierarchy,
    stop_process,
)

from dns_toy.control import (
    ControlError,
    ControlServer,
    control_socket_path,
    request,
)

NOBODY = 65534
START_TIMEOUT = 15.0  # seconds for a process to open its control socket
STOP_TIMEOUT = 10.0
RESOLVER = "127.0.0.1"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dns_toy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


# The protocol, against a server in this process.


async def serve_while(
    path: Path, work: Any, commands: dict[str, Any] | None = None
) -> Any:
    """Start a ControlServer at `path`, run blocking `work()` in a thread, stop."""
    server = ControlServer(path, commands or {})
    await server.start()
    try:
        return await asyncio.to_thread(work)
    finally:
        await server.close()


async def echo(arguments: dict[str, Any]) -> dict[str, Any]:
    return {"echo": arguments}


def test_request_returns_command_result(tmp_path: Path) -> None:
    path = tmp_path / "control" / "x.sock"
    result = asyncio.run(
        serve_while(path, lambda: request(path, "echo", {"a": 1}), {"echo": echo})
    )
    assert result == {"echo": {"a": 1}}


def test_socket_and_directory_modes(tmp_path: Path) -> None:
    path = tmp_path / "control" / "x.sock"

    def modes() -> tuple[int, int, bool]:
        info = path.stat()
        return (
            stat.S_IMODE(info.st_mode),
            stat.S_IMODE(path.parent.stat().st_mode),
            stat.S_ISSOCK(info.st_mode),
        )

    socket_mode, directory_mode, is_socket = asyncio.run(serve_while(path, modes))
    assert is_socket
    assert socket_mode == 0o600
    assert directory_mode == 0o700
    assert not path.exists(), "the socket file must go when the server closes"


def test_unknown_command_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    with pytest.raises(ControlError, match="unknown command 'nope'; known: echo, ping"):
        asyncio.run(serve_while(path, lambda: request(path, "nope"), {"echo": echo}))


def test_invalid_request_gets_error_reply(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"

    def send_garbage() -> list[dict[str, Any]]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b'not json\n[1, 2]\n{"command": "ping"}\n')
            stream = sock.makefile("rb")
            return [json.loads(stream.readline()) for _ in range(3)]

    replies = asyncio.run(serve_while(path, send_garbage))
    assert replies[0] == {
        "ok": False,
        "error": "invalid request: not a JSON object on one line",
    }
    assert replies[1]["ok"] is False
    assert 'expected {"command"' in replies[1]["error"]
    assert replies[2]["ok"] is True
    assert replies[2]["result"]["pid"] == os.getpid()


def test_oversized_request_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"

    def send_huge() -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b"{" + b" " * 100_000 + b"}\n")
            return json.loads(sock.makefile("rb").readline())

    reply = asyncio.run(serve_while(path, send_huge))
    assert reply == {"ok": False, "error": "request longer than 65536 bytes"}


def test_world_writable_directory_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(ControlError, match=r"writable by other users \(mode 0777\)"):
        asyncio.run(serve_while(folder / "x.sock", lambda: None))
    assert not (folder / "x.sock").exists()


def test_stale_socket_file_replaced(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(path))
    leftover.close()  # bound but never listening: what a killed process leaves
    assert (
        asyncio.run(serve_while(path, lambda: request(path, "ping")))["pid"]
        == os.getpid()
    )


def test_live_socket_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    first = socket.socket(socket.AF_UNIX)
    first.bind(str(path))
    first.listen()
    try:
        with pytest.raises(ControlError, match="another process is listening on"):
            asyncio.run(serve_while(path, lambda: None))
    finally:
        first.close()


def test_long_socket_path_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = deep / "resolver.sock"
    assert len(str(path)) > 108
    result = asyncio.run(
        serve_while(path, lambda: request(path, "echo", {"b": 2}), {"echo": echo})
    )
    assert result == {"echo": {"b": 2}}


def test_request_without_server_explains(tmp_path: Path) -> None:
    with pytest.raises(
        ControlError,
        match="no control socket at .*is the process running with --control",
    ):
        request(tmp_path / "missing.sock", "ping")


# Another user, against a real `dns-toy resolver` process.


class ResolverProcess:
    """A `dns-toy resolver --control PATH` child on a free loopback port."""

    def __init__(self, control: Path, log: Path) -> None:
        self.control = control
        self.log = log
        port = free_port([RESOLVER])
        command = [
            sys.executable,
            "-m",
            "dns_toy",
            "resolver",
            "--address",
            RESOLVER,
            "--port",
            str(port),
            "--root-hints",
            str(REPO / "zones" / "root.hints"),
            "--server-port",
            str(port),
            "--control",
            str(control),
        ]
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO
            )

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"resolver exited early:\n{self.log.read_text()}")
            try:
                request(self.control, "ping", timeout=1)
                return
            except ControlError:
                time.sleep(0.05)
        raise AssertionError(
            f"no control socket after {START_TIMEOUT} s:\n{self.log.read_text()}"
        )

    def stop(self) -> None:
        stop_process(self.process, STOP_TIMEOUT)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder under /tmp that another user may traverse (mode 0711)."""
    folder = Path(tempfile.mkdtemp(prefix="dns-toy-peer-", dir="/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def resolver_process(open_folder: Path) -> Iterator[ResolverProcess]:
    running = ResolverProcess(
        open_folder / "control" / "resolver.sock", open_folder / "resolver.log"
    )
    try:
        running.wait_until_listening()
        yield running
    finally:
        running.stop()


def connect_as(uid: int, path: Path) -> str:
    """Fork a child that drops to `uid` and sends `ping` to `path` with the
    real client; return the result or the error the child got."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on
        outcome = "the child failed before connecting"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            outcome = json.dumps(request(path, "ping", timeout=5))
        except ControlError as exc:
            outcome = f"ControlError: {exc}"
        except Exception as exc:  # noqa: BLE001 - the parent reports it and fails
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, outcome.encode())
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching to another uid needs root"
)


@needs_root
def test_other_user_rejected_by_peer_uid(resolver_process: ResolverProcess) -> None:
    # Loosen both modes, as a mistaken chmod would: only SO_PEERCRED is left.
    resolver_process.control.parent.chmod(0o711)
    resolver_process.control.chmod(0o666)
    outcome = connect_as(NOBODY, resolver_process.control)
    assert (
        outcome
        == f"ControlError: permission denied: uid {NOBODY} may not use this control channel"
    )
    assert (
        f"rejected a control connection from uid {NOBODY}"
        in resolver_process.log.read_text()
    )
    # The owner still gets through.
    assert (
        request(resolver_process.control, "ping")["pid"] == resolver_process.process.pid
    )


@needs_root
def test_other_user_blocked_by_socket_mode(resolver_process: ResolverProcess) -> None:
    resolver_process.control.parent.chmod(0o711)  # the socket itself stays 0600
    expected = f"ControlError: permission denied for {resolver_process.control}; only its owner may use it"
    assert connect_as(NOBODY, resolver_process.control) == expected
    assert "rejected a control connection" not in resolver_process.log.read_text()


@needs_root
def test_other_user_blocked_by_directory_mode(
    resolver_process: ResolverProcess,
) -> None:
    assert stat.S_IMODE(resolver_process.control.parent.stat().st_mode) == 0o700
    expected = f"ControlError: permission denied for {resolver_process.control}; only its owner may use it"
    assert connect_as(NOBODY, resolver_process.control) == expected


def test_resolver_refuses_shared_directory(open_folder: Path) -> None:
    shared = open_folder / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o1777)  # like /tmp: world-writable, sticky
    running = ResolverProcess(shared / "resolver.sock", open_folder / "resolver.log")
    try:
        status = running.process.wait(timeout=START_TIMEOUT)
    finally:
        running.stop()
    output = running.log.read_text()
    assert status == 1, output
    assert (
        f"error: control directory {shared} is writable by other users (mode 1777)"
        in output
    )
    assert "Traceback" not in output


def test_standalone_resolver_cache_show(resolver_process: ResolverProcess) -> None:
    result = run_cli("cache", "show", "--control", str(resolver_process.control))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cache of {resolver_process.control}: 0 entries\n"


# The commands, against a hierarchy started by `dns-toy up`.


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """A hierarchy on a copy of zones/, whose zone files the tests may edit."""
    base = tmp_path_factory.mktemp("control")
    shutil.copytree(REPO / "zones", base / "zones")
    hierarchy = start_hierarchy(base / "zones" / "topology.toml", base)
    try:
        yield hierarchy
    finally:
        stop_hierarchy(hierarchy)


def ask(
    hierarchy: Hierarchy, name: str, rdtype: str = "A", server: str = RESOLVER
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, server, port=hierarchy.port, timeout=3)


def cli(hierarchy: Hierarchy, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--run-dir", str(hierarchy.run_dir))


def show_json(hierarchy: Hierarchy, *args: str) -> list[dict[str, Any]]:
    result = cli(hierarchy, "cache", "show", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["entries"]


def find_entry(
    entries: list[dict[str, Any]], name: str, rtype: str | None
) -> dict[str, Any]:
    matches = [e for e in entries if e["name"] == name and e["type"] == rtype]
    assert len(matches) == 1, (
        f"{name} {rtype} in {[(e['name'], e['type']) for e in entries]}"
    )
    return matches[0]


def test_state_records_control_sockets(running: Hierarchy) -> None:
    state = json.loads((running.run_dir / "state.json").read_text())
    assert state["topology"] == str(running.topology.path.resolve())
    for entry in state["processes"]:
        path = Path(entry["control"])
        assert path == control_socket_path(running.run_dir, entry["name"])
        assert stat.S_ISSOCK(path.stat().st_mode), entry["name"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, entry["name"]
        assert request(path, "ping")["pid"] == entry["pid"]
    assert stat.S_IMODE((running.run_dir / "control").stat().st_mode) == 0o700


def test_cache_show_json_fields(running: Hierarchy) -> None:
    ask(running, "www.example.com")
    ask(running, "nosuch.example.com")
    entries = show_json(running)
    www = find_entry(entries, "www.example.com.", "A")
    assert www["records"] == ["192.0.2.10"]
    assert www["original_ttl"] == 3600
    assert 3500 <= www["remaining_ttl"] <= 3600
    assert 0 <= www["age"] < 100
    assert www["credibility"] == "answer"
    assert www["source"] in ("127.0.0.8", "127.0.0.9")
    assert www["negative"] is None
    delegation = find_entry(entries, "example.com.", "NS")
    assert delegation["credibility"] == "authority"
    assert delegation["source"] in ("127.0.0.4", "127.0.0.5")
    glue = find_entry(entries, "ns1.example.com.", "A")
    assert glue["credibility"] == "glue"
    missing = find_entry(entries, "nosuch.example.com.", None)
    assert missing["negative"] == "NXDOMAIN"
    assert missing["original_ttl"] == 60
    assert missing["soa"].startswith("example.com.")


def test_cache_show_table(running: Hierarchy) -> None:
    ask(running, "www.example.com")
    result = cli(running, "cache", "show", "example.com")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cache of resolver (127.0.0.1): ")
    assert lines[0].endswith(" entries at or below example.com")
    assert lines[1].split() == [
        "NAME",
        "TYPE",
        "TTL",
        "LEFT",
        "AGE",
        "CREDIBILITY",
        "SOURCE",
        "DATA",
    ]
    www = next(line.split() for line in lines if line.startswith("www.example.com. "))
    assert www[1:3] == ["A", "3600"]
    assert www[5] == "answer"
    assert www[6] in ("ns1.example.com", "ns2.example.com")
    assert www[-1] == "192.0.2.10"
    assert not any(line.startswith("com. ") for line in lines), (
        "com. is above example.com"
    )


def test_cache_flush_name(running: Hierarchy) -> None:
    ask(running, "www.example.org")
    ask(running, "www.example.com")
    assert any(e["name"] == "www.example.org." for e in show_json(running))
    result = cli(running, "cache", "flush", "example.org")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "flushed 2 entries at or below example.org from resolver"
    )
    entries = show_json(running)
    assert not [e for e in entries if e["name"].endswith("example.org.")]
    assert any(e["name"] == "www.example.com." for e in entries)


def test_cache_flush_all(running: Hierarchy) -> None:
    ask(running, "www.example.com")
    result = cli(running, "cache", "flush")
    assert result.returncode == 0, result.stderr
    assert show_json(running) == []


def edit_www(zone: Path, old: str, new: str, serial: str) -> None:
    text = zone.read_text()
    zone.write_text(
        text.replace("2026120401 ; serial", f"{serial} ; serial").replace(old, new)
    )


def wait_for_answer(hierarchy: Hierarchy, server: str, expected: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if (
            ask(hierarchy, "www.example.com", server=server).answer[0][0].to_text()
            == expected
        ):
            return
        time.sleep(0.02)
    raise AssertionError(f"{server} did not serve {expected}")


def test_cache_stale_marks_changed_rrset(running: Hierarchy) -> None:
    ask(running, "www.example.com")
    ask(running, "nosuch.example.com")
    zone = running.topology.path.parent / "example.com.zone"
    original = zone.read_text()
    try:
        edit_www(zone, "192.0.2.10", "192.0.2.110", "2026120402")
        assert (
            cli(running, "reload", "ns1.example.com", "ns2.example.com").returncode == 0
        )
        for server in ("127.0.0.8", "127.0.0.9"):
            wait_for_answer(running, server, "192.0.2.110")
        result = cli(running, "cache", "stale", "--json")
        assert result.returncode == 0, result.stderr
        reports = json.loads(result.stdout)["entries"]
        table = cli(running, "cache", "stale")
    finally:
        zone.write_text(original)
        cli(running, "reload", "ns1.example.com", "ns2.example.com")

    www = find_entry(reports, "www.example.com.", "A")
    assert www["status"] == "STALE"
    assert www["cached"] == ["192.0.2.10"]
    assert www["authority"] == ["192.0.2.110"]
    assert 0 < www["remaining_ttl"] <= 3600
    assert find_entry(reports, "nosuch.example.com.", None)["status"] == "FRESH"
    assert find_entry(reports, "example.com.", "NS")["status"] == "FRESH"
    assert find_entry(reports, "ns1.example.com.", "A")["status"] == "FRESH", (
        "glue is checked with its referral"
    )
    assert {r["status"] for r in reports if r["name"] != "www.example.com."} == {
        "FRESH"
    }

    row = next(
        line.split()
        for line in table.stdout.splitlines()
        if line.startswith("www.example.com. ")
    )
    assert row[1] == "A"
    assert row[3] == "STALE"
    assert row[-2:] == ["192.0.2.10", "192.0.2.110"]
    assert (
        table.stdout.splitlines()[-1]
        == f"{len(reports)} entries: {len(reports) - 1} fresh, 1 stale, 0 unknown"
    )


def stats(hierarchy: Hierarchy) -> dict[str, Any]:
    result = cli(hierarchy, "stats", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_stats_count_hits_and_misses(running: Hierarchy) -> None:
    cli(running, "cache", "flush")
    before = stats(running)
    ask(running, "mail.example.com")  # a miss: the walk goes to the servers
    ask(running, "mail.example.com")  # a hit
    after = stats(running)
    assert after["queries"] - before["queries"] == 2
    assert after["cache_misses"] - before["cache_misses"] == 1
    assert after["cache_hits"] - before["cache_hits"] == 1
    assert after["upstream_queries"] > before["upstream_queries"]
    root = (
        after["servers"]["127.0.0.2"]
        if "127.0.0.2" in after["servers"]
        else after["servers"]["127.0.0.3"]
    )
    assert root["queries"] >= 1
    assert root["mean_rtt_ms"] > 0
    assert root["srtt_ms"] > 0, "the iterative resolver keeps an SRTT per address"
    assert after["timeouts"] == sum(
        server["timeouts"] for server in after["servers"].values()
    )


def test_stats_table(running: Hierarchy) -> None:
    ask(running, "www.example.com")
    result = cli(running, "stats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "statistics of resolver (127.0.0.1):"
    assert lines[2].startswith("queries ")
    assert lines[3].startswith("cache hits ")
    assert lines[4].startswith("cache misses ")
    header = next(line for line in lines if line.startswith("SERVER"))
    assert header.split()[:4] == ["SERVER", "QUERIES", "TIMEOUTS", "ERRORS"]


def elapsed_query(hierarchy: Hierarchy, server: str) -> float:
    started = time.monotonic()
    ask(hierarchy, "www.example.com", server=server)
    return time.monotonic() - started


def test_fault_delay_set_and_cleared(running: Hierarchy) -> None:
    try:
        result = cli(running, "fault", "ns2.example.com", "delay=300")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "ns2.example.com (127.0.0.9): faults delay=300\n"
        assert elapsed_query(running, "127.0.0.9") >= 0.3
        current = cli(running, "fault", "127.0.0.9")
        assert current.stdout == "ns2.example.com (127.0.0.9): faults delay=300\n"
    finally:
        cleared = cli(running, "fault", "ns2.example.com", "clear")
    assert cleared.stdout == "ns2.example.com (127.0.0.9): faults none\n"
    assert elapsed_query(running, "127.0.0.9") < 0.3


def test_fault_drop_all_queries(running: Hierarchy) -> None:
    try:
        assert cli(running, "fault", "ns2.example.com", "drop=1").returncode == 0
        with pytest.raises(dns.exception.Timeout):
            query = dns.message.make_query("www.example.com", "A")
            dns.query.udp(query, "127.0.0.9", port=running.port, timeout=0.5)
    finally:
        cli(running, "fault", "ns2.example.com", "clear")
    assert ask(running, "www.example.com", server="127.0.0.9").answer


def test_fault_invalid_spec_exits_2(running: Hierarchy) -> None:
    result = cli(running, "fault", "ns2.example.com", "delay=soon")
    assert result.returncode == 2
    assert result.stderr == "error: invalid value in fault 'delay=soon'\n"


def test_fault_unknown_server_exits_1(running: Hierarchy) -> None:
    result = cli(running, "fault", "ns9.nowhere", "delay=1")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: no process named 'ns9.nowhere' in this hierarchy; known: a.root-servers.net"
    )


def test_cache_show_needs_running_hierarchy(tmp_path: Path) -> None:
    result = run_cli("cache", "show", "--run-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no running hierarchy" in result.stderr
    assert "Traceback" not in result.stderr
