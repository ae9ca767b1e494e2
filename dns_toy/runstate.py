"""The run directory of a hierarchy: logs, root hints and `state.json`.

`dns-toy up` records there which process serves what, so that other
commands (`dns-toy reload`) can find the servers of a running hierarchy.
"""

import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import DnsToyError

STATE_FILE = "state.json"


@dataclass(frozen=True)
class ProcessEntry:
    """One child process of `dns-toy up`."""

    name: str
    address: str
    port: int
    pid: int
    role: str  # "server" or "resolver"
    zones: list[str] = field(default_factory=list)
    control: str = ""  # path of its control socket; empty when it has none


@dataclass(frozen=True)
class RunState:
    """What a running `dns-toy up` has started."""

    up_pid: int
    processes: list[ProcessEntry]
    topology: str = ""  # path of the topology file the hierarchy runs


def default_run_dir() -> Path:
    """Return the run directory used when none is given, one per user."""
    return Path(tempfile.gettempdir()) / f"dns-toy-{os.getuid()}"


def write_state(directory: Path, state: RunState) -> None:
    path = directory / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # readers never see a half-written file


def remove_state(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)


def read_state(directory: Path) -> RunState:
    """Read the state of a running hierarchy, or raise DnsToyError."""
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        processes = [ProcessEntry(**entry) for entry in data["processes"]]
        topology = str(data.get("topology", ""))
        state = RunState(int(data["up_pid"]), processes, topology)
    except FileNotFoundError:
        raise DnsToyError(
            f"no running hierarchy: {path} not found; start one with "
            "`dns-toy up` or pass its --run-dir"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DnsToyError(f"invalid run state in {path}: {exc}") from None
    if not process_alive(state.up_pid):
        raise DnsToyError(f"the hierarchy recorded in {path} is no longer running")
    return state


def process_alive(pid: int) -> bool:
    """Return True while `pid` runs, counting a zombie as gone: in a
    container, no init process may be there to reap an orphan."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def select_servers(state: RunState, wanted: list[str]) -> list[ProcessEntry]:
    """Return the servers named in `wanted` (by name or address), or all."""
    servers = [entry for entry in state.processes if entry.role == "server"]
    if not wanted:
        return servers
    chosen = []
    for item in wanted:
        key = item.lower().rstrip(".")
        matches = [e for e in servers if key in (e.name.lower().rstrip("."), e.address)]
        if not matches:
            known = ", ".join(e.name for e in servers)
            raise DnsToyError(
                f"no server named {item!r} in this hierarchy; known: {known}"
            )
        chosen.extend(matches)
    return chosen


def reload_command(wanted: list[str], run_dir: Path | None, pid: int | None) -> int:
    """Send SIGHUP to servers of a running hierarchy, or to one PID."""
    if pid is not None:
        targets = [ProcessEntry("dns-toy serve", "-", 0, pid, "server")]
    else:
        try:
            state = read_state(run_dir or default_run_dir())
            targets = select_servers(state, wanted)
        except DnsToyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    status = 0
    for entry in targets:
        if not is_name_server_process(entry.pid):
            # SIGHUP ends most other programs, and a PID may have been reused.
            print(
                f"error: PID {entry.pid} is not a running `dns-toy serve` "
                "process; nothing sent",
                file=sys.stderr,
            )
            status = 1
            continue
        try:
            os.kill(entry.pid, signal.SIGHUP)
        except ProcessLookupError:
            print(
                f"error: {entry.name} (PID {entry.pid}) is not running", file=sys.stderr
            )
            status = 1
            continue
        except PermissionError:
            print(f"error: not allowed to signal PID {entry.pid}", file=sys.stderr)
            status = 1
            continue
        print(f"reload sent to {entry.name} (PID {entry.pid})")
    return status


def is_name_server_process(pid: int) -> bool:
    """Return whether `pid` runs `dns-toy serve` (read from /proc)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [argument.decode(errors="replace") for argument in arguments]
    runs_package = any(w == "dns_toy" or w.endswith("dns-toy") for w in words)
    return runs_package and "serve" in words and process_alive(pid)
