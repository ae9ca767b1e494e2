"""The command-line options of the resolver's policies.

`dns-toy resolver` and `dns-toy resolve` take the same options, declared
once here as typer annotations. `with_policy_options` adds them to a
command, and `build_options` turns their values into a
`resolver_options.ResolverOptions`. This module imports only typer and the
standard library, so that `dns-toy --help` stays fast.
"""

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .resolver_options import ResolverOptions

POLICY_PANEL = "Resolver policies"


class SelectionChoice(str, Enum):
    nearest = "nearest"
    round_robin = "round-robin"
    random = "random"


TimeoutOption = Annotated[
    int,
    typer.Option(
        "--timeout",
        min=1,
        help="Milliseconds to wait for a name server's reply on the first try. "
        "Each retry waits twice as long as the one before, up to 8000 ms.",
        rich_help_panel=POLICY_PANEL,
    ),
]
RetriesOption = Annotated[
    int,
    typer.Option(
        "--retries",
        min=0,
        max=10,
        help="Retries per server address after a timeout. 0 is best-effort "
        "delivery: one datagram, and a lost query or reply is lost. 1 or more "
        "is at-least-once delivery: the query is sent again until a reply "
        "comes, so a server may see it more than once.",
        rich_help_panel=POLICY_PANEL,
    ),
]
SelectionOption = Annotated[
    SelectionChoice,
    typer.Option(
        "--selection",
        help="Order of a zone's servers. nearest: lowest smoothed RTT first, "
        "slower servers probed now and then. round-robin: the start moves one "
        "server per query. random: shuffled per query. All skip servers that "
        "failed 3 times in a row (30 s) or were lame for the zone (60 s).",
        rich_help_panel=POLICY_PANEL,
    ),
]
CaseRandomisationOption = Annotated[
    bool,
    typer.Option(
        "--case-randomisation",
        help="Randomise the case of query names sent to name servers and drop "
        "replies that do not echo it exactly (DNS 0x20). Servers that change "
        "the case then look unreachable.",
        rich_help_panel=POLICY_PANEL,
    ),
]
QnameMinimisationOption = Annotated[
    bool,
    typer.Option(
        "--qname-minimisation",
        help="Send each zone's servers only the labels they need, as type A "
        "queries (RFC 9156, relaxed: NXDOMAIN or an error for a shortened "
        "name falls back to the full name).",
        rich_help_panel=POLICY_PANEL,
    ),
]
ServeStaleOption = Annotated[
    bool,
    typer.Option(
        "--serve-stale",
        help="When every authority fails, answer expired data up to one day "
        "old with TTL 30 s, and ask the authorities again at most every 30 s "
        "(RFC 8767).",
        rich_help_panel=POLICY_PANEL,
    ),
]
MaxTtlOption = Annotated[
    int,
    typer.Option(
        "--max-ttl",
        min=0,
        help="Cap, in seconds, on the TTL of cached data.",
        rich_help_panel=POLICY_PANEL,
    ),
]
MinTtlOption = Annotated[
    int,
    typer.Option(
        "--min-ttl",
        min=0,
        help="Minimum, in seconds, for the TTL of cached data. Records with "
        "TTL 0 are still not cached.",
        rich_help_panel=POLICY_PANEL,
    ),
]
CacheSizeOption = Annotated[
    int,
    typer.Option(
        "--cache-size",
        min=1,
        help="Maximum number of cache entries (RRsets and negative answers). "
        "The least recently used entry goes first.",
        rich_help_panel=POLICY_PANEL,
    ),
]

# Defaults as literals, so that importing this module stays cheap. A test
# checks them against ResolverOptions.
DEFAULT_TIMEOUT_MS = 1000
DEFAULT_RETRIES = 1
DEFAULT_MAX_TTL = 86_400
DEFAULT_MIN_TTL = 0
DEFAULT_CACHE_SIZE = 10_000


def build_options(
    timeout_ms: int,
    retries: int,
    selection: SelectionChoice,
    case_randomisation: bool,
    qname_minimisation: bool,
    serve_stale: bool,
    max_ttl: int,
    min_ttl: int,
    cache_size: int,
) -> "ResolverOptions":
    """Return the ResolverOptions of the command-line values.

    Raises typer.BadParameter when the values do not fit together.
    """
    from .resolver_options import ResolverOptions
    from .selection import SelectionPolicy

    try:
        return ResolverOptions(
            timeout=timeout_ms / 1000,
            retries=retries,
            selection=SelectionPolicy(selection.value),
            case_randomisation=case_randomisation,
            qname_minimisation=qname_minimisation,
            serve_stale=serve_stale,
            max_ttl=max_ttl,
            min_ttl=min_ttl,
            cache_size=cache_size,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# The policy parameters in the order of build_options, with their defaults.
_POLICY_PARAMETERS = [
    inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=value
    )
    for name, kind, value in (
        ("timeout", TimeoutOption, DEFAULT_TIMEOUT_MS),
        ("retries", RetriesOption, DEFAULT_RETRIES),
        ("selection", SelectionOption, SelectionChoice.nearest),
        ("case_randomisation", CaseRandomisationOption, False),
        ("qname_minimisation", QnameMinimisationOption, False),
        ("serve_stale", ServeStaleOption, False),
        ("max_ttl", MaxTtlOption, DEFAULT_MAX_TTL),
        ("min_ttl", MinTtlOption, DEFAULT_MIN_TTL),
        ("cache_size", CacheSizeOption, DEFAULT_CACHE_SIZE),
    )
]


def with_policy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the policy options in place of its `options`.

    The returned function declares the command's own parameters, less
    `options`, followed by the policy options, so typer lists them last.
    It builds the ResolverOptions first and passes them as `options`.
    """
    signature = inspect.signature(command)
    own = [
        parameter
        for parameter in signature.parameters.values()
        if parameter.name != "options"
    ]

    @functools.wraps(command)
    def wrapper(**arguments: Any) -> Any:
        values = [arguments.pop(parameter.name) for parameter in _POLICY_PARAMETERS]
        return command(**arguments, options=build_options(*values))

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *_POLICY_PARAMETERS]
    )
    annotations = dict(command.__annotations__)
    annotations.pop("options", None)
    for parameter in _POLICY_PARAMETERS:
        annotations[parameter.name] = parameter.annotation
    wrapper.__annotations__ = annotations
    return wrapper
