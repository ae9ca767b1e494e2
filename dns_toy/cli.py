"""The `dns-toy` command line: parses options, calls the library, prints.

Each command imports its module when it runs, so `dns-toy --help` stays fast
and a server process loads only what it uses.
"""

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import resolver_flags as policy

if TYPE_CHECKING:
    from .resolver_options import ResolverOptions

app = typer.Typer(
    help="A small DNS hierarchy (root, TLD, authoritative, resolver) on loopback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_PORT = 1053
ZONES_DIR = Path(__file__).resolve().parent.parent / "zones"
DEFAULT_TOPOLOGY = ZONES_DIR / "topology.toml"
DEFAULT_ROOT_HINTS = ZONES_DIR / "root.hints"

PortOption = Annotated[
    int,
    typer.Option(
        "--port", "-p", min=0, max=65535, help="UDP and TCP port to listen on."
    ),
]
AddressOption = Annotated[
    str, typer.Option("--address", "-a", help="IP address to listen on.")
]
ServerPortOption = Annotated[
    int,
    typer.Option(min=1, max=65535, help="Port on which every name server is queried."),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log each resolution step (DEBUG).")
]
RunDirOption = Annotated[
    Path | None,
    typer.Option(help="Run directory of the hierarchy (default: that of `up`)."),
]
ControlOption = Annotated[
    Path | None,
    typer.Option(
        help="Serve the control channel (dns-toy cache, stats, fault) on this "
        "Unix socket; its directory must not be writable by other users."
    ),
]


def _running_root_hints() -> Path:
    """Return the root hints of the hierarchy `up` runs from the default
    run directory, or the default hierarchy's hints when none runs."""
    from .errors import DnsToyError
    from .runstate import default_run_dir, read_state

    directory = default_run_dir()
    try:
        read_state(directory)
    except DnsToyError:
        return DEFAULT_ROOT_HINTS
    hints = directory / "root.hints"
    return hints if hints.is_file() else DEFAULT_ROOT_HINTS


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


class ModeChoice(str, Enum):
    iterative = "iterative"
    recursive = "recursive"
    forward = "forward"


class HierarchyModeChoice(str, Enum):
    iterative = "iterative"
    recursive = "recursive"


class TraceFormatChoice(str, Enum):
    text = "text"
    mermaid = "mermaid"


ForwarderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--forwarder",
        help="Upstream resolver ADDR[:PORT] for --mode forward; PORT defaults "
        "to --server-port (repeatable).",
    ),
]
ModeOption = Annotated[
    ModeChoice,
    typer.Option(
        help="iterative: walk down from the root; recursive: one RD=1 query "
        "to a root server that recurses; forward: RD=1 to --forwarder."
    ),
]


class OrderChoice(str, Enum):
    fixed = "fixed"
    cyclic = "cyclic"
    random = "random"


@app.command()
def serve(
    zone_files: Annotated[list[Path], typer.Argument(help="Zone files to serve.")],
    address: AddressOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    name: Annotated[
        str | None,
        typer.Option(help="Server name, returned for CH TXT id.server queries."),
    ] = None,
    rrset_order: Annotated[
        OrderChoice,
        typer.Option(help="Order of the records of an RRset in answers."),
    ] = OrderChoice.cyclic,
    watch: Annotated[
        bool, typer.Option("--watch", help="Reload a zone file when it changes.")
    ] = False,
    delay: Annotated[
        float, typer.Option(help="Fault: delay every reply by this many ms.")
    ] = 0.0,
    jitter: Annotated[
        float, typer.Option(help="Fault: add a random -N..+N ms to the delay.")
    ] = 0.0,
    drop: Annotated[
        float,
        typer.Option(help="Fault: leave this fraction (0-1) of queries unanswered."),
    ] = 0.0,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for the random choices of --drop and --jitter."),
    ] = None,
    servfail: Annotated[
        bool, typer.Option("--servfail", help="Fault: answer every query SERVFAIL.")
    ] = False,
    refuse: Annotated[
        bool, typer.Option("--refuse", help="Fault: answer every query REFUSED.")
    ] = False,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Fault: set TC=1 on every UDP reply.")
    ] = False,
    recursion: Annotated[
        bool,
        typer.Option(
            "--recursion",
            help="Resolve RD=1 queries outside the zones or below their cuts "
            "by asking the next server down (RA=1).",
        ),
    ] = False,
    root_hints: Annotated[
        Path,
        typer.Option(help="Root hints for --recursion, in named.root format."),
    ] = DEFAULT_ROOT_HINTS,
    control: ControlOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Serve zone files authoritatively over UDP and TCP (SIGHUP reloads)."""
    from .authority import RRsetOrder
    from .errors import DnsToyError
    from .faults import Faults
    from .nameserver import run_authority
    from .recursion import Recursor

    _configure_logging(verbose)
    paths = [str(p) for p in zone_files]
    order = RRsetOrder(rrset_order.value)
    try:
        faults = Faults(delay, jitter, drop, seed, servfail, refuse, truncate)
        recursor = None
        if recursion:
            # The other servers are asked on this server's own port.
            recursor = Recursor.from_hints_file(root_hints, name or address, port)
    except DnsToyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    control_path = None if control is None else str(control)
    raise typer.Exit(
        run_authority(
            paths, address, port, name, order, watch, faults, control_path, recursor
        )
    )


@app.command("check-zone")
def check_zone(
    zone_file: Annotated[Path, typer.Argument(help="Zone file to check.")],
    origin: Annotated[
        str | None,
        typer.Option(help="Zone origin, when the file has no $ORIGIN."),
    ] = None,
) -> None:
    """Check a zone file as a server loads it; exit 1 on errors."""
    from .zonecheck import check_zone_file

    # Findings are printed by the command itself, not logged a second time.
    logging.basicConfig(level=logging.ERROR)
    raise typer.Exit(check_zone_file(str(zone_file), origin))


@app.command()
def up(
    topology: Annotated[
        Path, typer.Option(help="Topology file: which server serves which zones.")
    ] = DEFAULT_TOPOLOGY,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            min=1,
            max=65535,
            help="Port for every server and the resolver "
            "(default: the topology's port, else 1053).",
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Directory for logs and run state (default: one per user)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject faults at one server: SERVER:SPEC, e.g. "
            "ns1.example.com:delay=200,drop=0.3 (repeatable)."
        ),
    ] = None,
    extra_resolver: Annotated[
        list[str] | None,
        typer.Option(
            help="Start another resolver on this IPv4 address, e.g. 127.0.0.13; "
            "named resolver2, resolver3, ... (repeatable)."
        ),
    ] = None,
    mode: Annotated[
        HierarchyModeChoice,
        typer.Option(
            help="recursive: every server runs with --recursion and the "
            "resolver sends one RD=1 query to a root server."
        ),
    ] = HierarchyModeChoice.iterative,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Let every child log at DEBUG.")
    ] = False,
) -> None:
    """Start every server of a hierarchy and a resolver, until Ctrl-C."""
    from .hierarchy import run_up

    _configure_logging(False)
    directory = None if run_dir is None else str(run_dir)
    raise typer.Exit(
        run_up(
            str(topology),
            port,
            directory,
            fault or [],
            extra_resolver or [],
            mode.value,
            verbose,
        )
    )


@app.command()
@policy.with_policy_options
def resolver(
    address: AddressOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    root_hints: Annotated[
        Path, typer.Option(help="Root hints in named.root format.")
    ] = DEFAULT_ROOT_HINTS,
    server_port: ServerPortOption = DEFAULT_PORT,
    control: ControlOption = None,
    mode: ModeOption = ModeChoice.iterative,
    forwarder: ForwarderOption = None,
    verbose: VerboseOption = False,
    *,
    options: "ResolverOptions",
) -> None:
    """Run the caching resolver: iterative, recursive or forwarding."""
    from .resolver_service import run_resolver

    _configure_logging(verbose)
    control_path = None if control is None else str(control)
    raise typer.Exit(
        run_resolver(
            address,
            port,
            str(root_hints),
            server_port,
            control_path,
            mode=mode.value,
            forwarders=forwarder or [],
            options=options,
        )
    )


@app.command()
@policy.with_policy_options
def resolve(
    name: Annotated[str, typer.Argument(help="Domain name to resolve.")],
    qtype: Annotated[str, typer.Argument(help="Record type, such as A or MX.")] = "A",
    server: Annotated[
        str | None,
        typer.Option(help="Ask this resolver (ADDR[:PORT]) instead of resolving here."),
    ] = None,
    root_hints: Annotated[
        Path | None,
        typer.Option(
            help="Root hints for in-process resolution (default: those of the "
            "hierarchy `dns-toy up` runs, else zones/root.hints)."
        ),
    ] = None,
    server_port: ServerPortOption = DEFAULT_PORT,
    trace: Annotated[
        bool, typer.Option("--trace", help="Print each query and what came back.")
    ] = False,
    mode: ModeOption = ModeChoice.iterative,
    forwarder: ForwarderOption = None,
    trace_format: Annotated[
        TraceFormatChoice,
        typer.Option(
            help="text: one line per hop and a summary; mermaid: a Mermaid "
            "sequenceDiagram instead of the trace and the reply."
        ),
    ] = TraceFormatChoice.text,
    repeat: Annotated[
        int,
        typer.Option(
            min=1,
            max=10,
            help="Resolve the name this many times with one cache, to compare "
            "a cold cache with a warm one.",
        ),
    ] = 1,
    *,
    options: "ResolverOptions",
) -> None:
    """Resolve a name, in-process from the root hints or through a resolver.

    The resolver policies apply to in-process resolution only.
    """
    from .resolve_command import run_resolve

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    raise typer.Exit(
        run_resolve(
            name,
            qtype,
            server,
            str(root_hints or _running_root_hints()),
            server_port,
            trace,
            mode=mode.value,
            forwarders=forwarder or [],
            trace_format=trace_format.value,
            repeat=repeat,
            options=options,
        )
    )


@app.command()
def reload(
    servers: Annotated[
        list[str] | None,
        typer.Argument(help="Servers to reload, by name or address (default: all)."),
    ] = None,
    run_dir: RunDirOption = None,
    pid: Annotated[
        int | None,
        typer.Option(help="Reload the one `dns-toy serve` process with this PID."),
    ] = None,
) -> None:
    """Make running servers re-read their zone files (sends SIGHUP)."""
    from .runstate import reload_command

    raise typer.Exit(reload_command(servers or [], run_dir, pid))


cache_app = typer.Typer(
    help="Look into a running resolver's cache over its control channel.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Process of the hierarchy, by name or address (default: the resolver).",
    ),
]
ControlPathOption = Annotated[
    Path | None,
    typer.Option(
        "--control", help="Control socket of the process, in place of the run state."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CacheNameArgument = Annotated[
    str | None,
    typer.Argument(help="Only entries at or below this name (default: all)."),
]


@cache_app.command("show")
def cache_show(
    name: CacheNameArgument = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    run_dir: RunDirOption = None,
    control: ControlPathOption = None,
) -> None:
    """List every cache entry: TTLs, age, credibility and source server."""
    from .control_commands import cache_show as show

    raise typer.Exit(show(name, as_json, server, run_dir, control))


@cache_app.command("flush")
def cache_flush(
    name: CacheNameArgument = None,
    server: ServerOption = None,
    run_dir: RunDirOption = None,
    control: ControlPathOption = None,
) -> None:
    """Remove the entries at or below NAME, or every entry."""
    from .control_commands import cache_flush as flush

    raise typer.Exit(flush(name, server, run_dir, control))


@cache_app.command("stale")
def cache_stale(
    name: CacheNameArgument = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    run_dir: RunDirOption = None,
    control: ControlPathOption = None,
) -> None:
    """Ask each entry's source server now and mark the entry FRESH or STALE."""
    from .control_commands import cache_stale as stale

    raise typer.Exit(stale(name, as_json, server, run_dir, control))


@app.command()
def stats(
    as_json: JsonOption = False,
    server: ServerOption = None,
    run_dir: RunDirOption = None,
    control: ControlPathOption = None,
) -> None:
    """Print a resolver's counters: queries, cache hits, upstream queries."""
    from .control_commands import stats as print_stats

    raise typer.Exit(print_stats(as_json, server, run_dir, control))


@app.command()
def fault(
    server: Annotated[
        str, typer.Argument(help="Server of the hierarchy, by name or address.")
    ],
    spec: Annotated[
        list[str] | None,
        typer.Argument(
            help="Faults such as delay=200 jitter=50 drop=0.3 seed=7 servfail "
            "refuse truncate, or `clear`; none shows the current faults."
        ),
    ] = None,
    run_dir: RunDirOption = None,
    control: ControlPathOption = None,
) -> None:
    """Change the faults a running server injects, at once."""
    from .control_commands import fault as set_fault

    raise typer.Exit(set_fault(server, spec or [], run_dir, control))


demo_app = typer.Typer(
    help="Experiments to run against a hierarchy.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")


class ClockChoice(str, Enum):
    real = "real"
    fake = "fake"


@demo_app.command("staleness")
def demo_staleness(
    name: Annotated[
        str, typer.Argument(help="Name whose A record is changed at its authority.")
    ] = "ttl30.example.com",
    clock: Annotated[
        ClockChoice,
        typer.Option(
            help="real: the running hierarchy; fake: an in-memory copy on a "
            "simulated clock, in well under a second."
        ),
    ] = ClockChoice.real,
    resolvers: Annotated[
        int,
        typer.Option(
            min=1, help="Resolvers to watch; each caches the record a while later."
        ),
    ] = 1,
    lower_ttl: Annotated[
        bool,
        typer.Option(
            "--lower-ttl",
            help="Lower the TTL first and change the record once the old TTL "
            "has run out.",
        ),
    ] = False,
    low_ttl: Annotated[
        int | None,
        typer.Option(
            min=1, help="TTL in seconds for --lower-ttl (default: a sixth of the TTL)."
        ),
    ] = None,
    run_dir: RunDirOption = None,
    topology: Annotated[
        Path, typer.Option(help="Topology of the in-memory hierarchy (--clock fake).")
    ] = DEFAULT_TOPOLOGY,
) -> None:
    """Change a record at its authority and watch resolvers serve it stale."""
    from .demo import run_staleness_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    raise typer.Exit(
        run_staleness_demo(
            name,
            fake_clock=clock is ClockChoice.fake,
            resolvers=resolvers,
            lower_ttl=lower_ttl,
            low_ttl=low_ttl,
            run_dir=run_dir,
            topology=topology,
        )
    )
