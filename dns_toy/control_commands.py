"""The `dns-toy cache`, `stats` and `fault` commands.

Each finds its process in the run state of `dns-toy up` (or takes a
control socket path), sends one command over the control channel and
prints the reply. Exit status: 0 on success, 1 when the process cannot be
found or reached or the command failed, 2 for an invalid argument.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cacheview import format_cache, format_staleness, format_stats
from .control import DEFAULT_TIMEOUT, request
from .errors import DnsToyError
from .faults import parse_faults
from .runstate import ProcessEntry, RunState, default_run_dir, read_state

# `cache stale` waits for every source server, up to 1 s each, 32 at a time.
STALE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Target:
    """The process a command goes to and how to reach its control channel."""

    label: str  # e.g. "resolver (127.0.0.1)"
    control: Path
    # Server names by address, to print names in place of addresses.
    names: dict[str, str] = field(default_factory=dict)


def find_target(
    run_dir: Path | None, requested: str | None, control: Path | None, role: str
) -> Target:
    """Find the process named or addressed by `requested` in the run state.

    Without `requested`, the first process of `role` is taken. An explicit
    `control` socket path needs no run state. Raises DnsToyError when the
    process cannot be found or has no control channel.
    """
    directory = run_dir or default_run_dir()
    if control is not None:
        try:
            names = _server_names(read_state(directory))
        except DnsToyError:
            names = {}
        return Target(str(control), control, names)
    state = read_state(directory)
    entry = _select(state, requested, role)
    if not entry.control:
        raise DnsToyError(
            f"{entry.name} was started without a control channel; "
            "restart the hierarchy with `dns-toy up`"
        )
    label = f"{entry.name} ({entry.address})"
    return Target(label, Path(entry.control), _server_names(state))


def _select(state: RunState, requested: str | None, role: str) -> ProcessEntry:
    candidates = [entry for entry in state.processes if entry.role == role]
    if requested is None:
        if not candidates:
            raise DnsToyError(f"this hierarchy runs no {role}; pass --server")
        return candidates[0]
    # Named explicitly, any process may be meant: a server started with
    # --recursion has a cache too.
    candidates += [entry for entry in state.processes if entry.role != role]
    key = requested.lower().rstrip(".")
    for entry in candidates:
        if key in (entry.name.lower().rstrip("."), entry.address):
            return entry
    known = ", ".join(entry.name for entry in candidates)
    raise DnsToyError(
        f"no process named {requested!r} in this hierarchy; known: {known}"
    )


def _server_names(state: RunState) -> dict[str, str]:
    return {entry.address: entry.name for entry in state.processes}


def _name_arguments(name: str | None) -> dict[str, Any]:
    return {} if name is None else {"name": name}


def _request_resolver(
    server: str | None,
    run_dir: Path | None,
    control: Path | None,
    command: str,
    arguments: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[Target, Any]:
    """Send `command` to a resolver's control channel and return the
    resolver's Target with the command's result.

    Raises DnsToyError as `find_target` and `control.request` do.
    """
    target = find_target(run_dir, server, control, "resolver")
    return target, request(target.control, command, arguments, timeout)


def _print_entries_json(target: Target, entries: list[Any]) -> None:
    print(json.dumps({"server": target.label, "entries": entries}, indent=2))


def cache_show(
    name: str | None,
    as_json: bool,
    server: str | None,
    run_dir: Path | None,
    control: Path | None,
) -> int:
    """Print the cache of a resolver, as a table or as JSON."""
    try:
        target, result = _request_resolver(
            server, run_dir, control, "cache.show", _name_arguments(name)
        )
    except DnsToyError as exc:
        return _fail(exc)
    entries = result["entries"]
    if as_json:
        _print_entries_json(target, entries)
        return 0
    scope = "" if name is None else f" at or below {name}"
    print(f"cache of {target.label}: {len(entries)} entries{scope}")
    if entries:
        print("\n".join(format_cache(entries, target.names)))
    return 0


def cache_flush(
    name: str | None, server: str | None, run_dir: Path | None, control: Path | None
) -> int:
    """Remove the entries at or below `name` (default: all) from a cache."""
    try:
        target, result = _request_resolver(
            server, run_dir, control, "cache.flush", _name_arguments(name)
        )
    except DnsToyError as exc:
        return _fail(exc)
    scope = "" if name is None else f" at or below {name}"
    print(f"flushed {result['removed']} entries{scope} from {target.label}")
    return 0


def cache_stale(
    name: str | None,
    as_json: bool,
    server: str | None,
    run_dir: Path | None,
    control: Path | None,
) -> int:
    """Compare each cached entry with its authority now and print the verdicts."""
    try:
        target, result = _request_resolver(
            server,
            run_dir,
            control,
            "cache.stale",
            _name_arguments(name),
            STALE_TIMEOUT,
        )
    except DnsToyError as exc:
        return _fail(exc)
    entries = result["entries"]
    if as_json:
        _print_entries_json(target, entries)
        return 0
    print(f"cache of {target.label} compared with the authorities now:")
    print("\n".join(format_staleness(entries, target.names)))
    return 0


def stats(
    as_json: bool, server: str | None, run_dir: Path | None, control: Path | None
) -> int:
    """Print a resolver's counters."""
    try:
        target, result = _request_resolver(server, run_dir, control, "stats")
    except DnsToyError as exc:
        return _fail(exc)
    if as_json:
        print(json.dumps({"server": target.label, **result}, indent=2))
        return 0
    print(f"statistics of {target.label}:")
    print("\n".join(format_stats(result, target.names)))
    return 0


def fault(
    server: str, spec: list[str], run_dir: Path | None, control: Path | None
) -> int:
    """Show, set or clear (`clear`) the faults of a running name server."""
    text = ",".join(spec)
    try:
        parse_faults(text)  # reject a bad specification before sending it
    except DnsToyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        target = find_target(run_dir, server, control, "server")
        if spec:
            result = request(target.control, "faults.set", {"spec": text})
        else:
            result = request(target.control, "faults.show")
    except DnsToyError as exc:
        return _fail(exc)
    print(f"{target.label}: faults {result['faults']}")
    return 0


def _fail(exc: DnsToyError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1
