"""The `dns-toy` command line: parses options, calls the library, prints.

Each command imports its module when it runs, so `dns-toy --help` stays fast
and a server process loads only what it uses.
"""

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

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
    int, typer.Option("--port", "-p", help="UDP and TCP port to listen on.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log each resolution step (DEBUG).")
]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


class OrderChoice(str, Enum):
    fixed = "fixed"
    cyclic = "cyclic"
    random = "random"


@app.command()
def serve(
    zone_files: Annotated[list[Path], typer.Argument(help="Zone files to serve.")],
    address: Annotated[
        str, typer.Option("--address", "-a", help="IP address to listen on.")
    ] = "127.0.0.1",
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
    verbose: VerboseOption = False,
) -> None:
    """Serve zone files authoritatively over UDP and TCP (SIGHUP reloads)."""
    from .authority import RRsetOrder
    from .errors import DnsToyError
    from .faults import Faults
    from .nameserver import run_authority

    _configure_logging(verbose)
    paths = [str(p) for p in zone_files]
    order = RRsetOrder(rrset_order.value)
    try:
        faults = Faults(delay, jitter, drop, seed, servfail, refuse, truncate)
    except DnsToyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_authority(paths, address, port, name, order, watch, faults))


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
) -> None:
    """Start every server of a hierarchy and a resolver, until Ctrl-C."""
    from .hierarchy import run_up

    _configure_logging(False)
    directory = None if run_dir is None else str(run_dir)
    raise typer.Exit(run_up(str(topology), port, directory, fault or []))


@app.command()
def resolver(
    address: Annotated[
        str, typer.Option("--address", "-a", help="IP address to listen on.")
    ] = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    root_hints: Annotated[
        Path, typer.Option(help="Root hints in named.root format.")
    ] = DEFAULT_ROOT_HINTS,
    server_port: Annotated[
        int, typer.Option(help="Port on which every name server is queried.")
    ] = DEFAULT_PORT,
    verbose: VerboseOption = False,
) -> None:
    """Run the caching iterative resolver."""
    from .resolver_service import run_resolver

    _configure_logging(verbose)
    raise typer.Exit(run_resolver(address, port, str(root_hints), server_port))


@app.command()
def resolve(
    name: Annotated[str, typer.Argument(help="Domain name to resolve.")],
    qtype: Annotated[str, typer.Argument(help="Record type, such as A or MX.")] = "A",
    server: Annotated[
        str | None,
        typer.Option(help="Ask this resolver (ADDR[:PORT]) instead of resolving here."),
    ] = None,
    root_hints: Annotated[
        Path, typer.Option(help="Root hints for in-process resolution.")
    ] = DEFAULT_ROOT_HINTS,
    server_port: Annotated[
        int, typer.Option(help="Port on which every name server is queried.")
    ] = DEFAULT_PORT,
    trace: Annotated[
        bool, typer.Option("--trace", help="Print each query and what came back.")
    ] = False,
) -> None:
    """Resolve a name, in-process from the root hints or through a resolver."""
    from .resolve_command import run_resolve

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    raise typer.Exit(
        run_resolve(name, qtype, server, str(root_hints), server_port, trace)
    )


@app.command()
def reload(
    servers: Annotated[
        list[str] | None,
        typer.Argument(help="Servers to reload, by name or address (default: all)."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Run directory of the hierarchy (default: that of `up`)."),
    ] = None,
    pid: Annotated[
        int | None,
        typer.Option(help="Reload the one `dns-toy serve` process with this PID."),
    ] = None,
) -> None:
    """Make running servers re-read their zone files (sends SIGHUP)."""
    from .runstate import reload_command

    raise typer.Exit(reload_command(servers or [], run_dir, pid))
