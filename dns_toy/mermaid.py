"""A resolution's trace as a Mermaid sequence diagram.

The participants are the client, the resolver and each server in the
order they first appear. Each hop is a query arrow and a dashed reply
arrow (a cross for no reply), and the hops a recursing server made for a query sit between that
query and its reply, so the chain root -> TLD -> authoritative server
reads top to bottom. Cache hits, starts and failures are notes over the
resolver. Paste the output into any Markdown viewer that renders Mermaid.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE

from .hops import shown_events
from .iterator import Resolution
from .policy_trace import PolicyEvent
from .trace import HopEvent, QueryEvent, TraceEvent, describe_event

CLIENT = "client"
MAX_LISTED_RECORDS = 3  # answer data shown on the final arrow


@dataclass(frozen=True)
class Run:
    """One resolution to draw, and how long it took."""

    resolution: Resolution
    elapsed_ms: float


@dataclass
class _Diagram:
    resolver: str
    lines: list[str] = field(default_factory=list)
    # Participant key -> (id, label), in the order of first appearance.
    participants: dict[str, tuple[str, str]] = field(default_factory=dict)

    def participant(self, name: str, address: str = "") -> str:
        key = _key(name)
        if key == _key(self.resolver):
            return "resolver"
        if key not in self.participants:
            label = f"{name} ({address})" if address and address != name else name
            self.participants[key] = (f"s{len(self.participants) + 1}", label)
        return self.participants[key][0]

    def arrow(self, source: str, kind: str, target: str, label: str) -> None:
        self.lines.append(f"    {source}{kind}{target}: {_clean(label)}")

    def note(self, text: str) -> None:
        self.lines.append(f"    Note over resolver: {_clean(text)}")


def sequence_diagram(runs: Sequence[Run], resolver: str = "resolver") -> str:
    """Draw `runs` one after the other as one Mermaid sequenceDiagram.

    `resolver` is the name the resolver's own hops carry as their asker.
    """
    diagram = _Diagram(resolver)
    for number, run in enumerate(runs, start=1):
        if len(runs) > 1:
            diagram.lines.append(
                f"    Note over {CLIENT},resolver: run {number} of {len(runs)}"
            )
        _draw_run(diagram, run)
    header = [
        "sequenceDiagram",
        f"    participant {CLIENT}",
        "    participant resolver",
    ]
    for ident, label in diagram.participants.values():
        header.append(f"    participant {ident} as {_clean(label)}")
    return "\n".join(header + diagram.lines) + "\n"


def _draw_run(diagram: _Diagram, run: Run) -> None:
    resolution = run.resolution
    question = f"{resolution.qname} {QTYPE.get(resolution.qtype, resolution.qtype)}"
    diagram.arrow(CLIENT, "->>", "resolver", f"{question} RD=1")
    events = shown_events(resolution.trace)
    index = 0
    while index < len(events):
        index = _draw_event(diagram, events, index)
    rcode = RCODE.get(resolution.rcode, resolution.rcode)
    data = [str(rr.rdata) for rr in resolution.answer if rr.rtype == resolution.qtype]
    listed = ", ".join(data[:MAX_LISTED_RECORDS])
    if len(data) > MAX_LISTED_RECORDS:
        listed += ", ..."
    label = f"{rcode} RA=1" + (f", {listed}" if listed else "")
    diagram.arrow("resolver", "-->>", CLIENT, f"{label}, {run.elapsed_ms:.1f} ms")


def _draw_event(diagram: _Diagram, events: Sequence[TraceEvent], index: int) -> int:
    """Draw the event at `index` and the hops nested in it; return the index
    of the next event to draw."""
    event = events[index]
    if isinstance(event, HopEvent):
        return _draw_hop(diagram, events, index)
    if isinstance(event, QueryEvent):
        server = diagram.participant(event.server, event.address)
        diagram.arrow("resolver", "->>", server, f"{event.qname} {event.qtype}")
        diagram.arrow(server, "-->>", "resolver", event.detail)
    elif not isinstance(event, PolicyEvent):
        # A cache hit, the start of a walk, a nested lookup, a failure or a
        # policy step such as a retry. The policies in force are no step.
        diagram.note(describe_event(event))
    return index + 1


def _draw_hop(diagram: _Diagram, events: Sequence[TraceEvent], index: int) -> int:
    hop = events[index]
    assert isinstance(hop, HopEvent)
    asker = diagram.participant(hop.asker)
    server = diagram.participant(hop.server, hop.address)
    diagram.arrow(asker, "->>", server, f"{hop.qname} {hop.qtype} RD={int(hop.rd)}")
    following = index + 1
    while following < len(events):
        child = events[following]
        nested = (
            isinstance(child, HopEvent)
            and child.depth == hop.depth + 1
            and _key(child.asker) == _key(hop.server)
        )
        if not nested:
            break
        following = _draw_hop(diagram, events, following)
    if not hop.received:
        diagram.arrow(server, "--x", asker, f"{hop.rcode} after {hop.rtt_ms:.1f} ms")
        return following
    diagram.arrow(server, "-->>", asker, _reply_label(hop))
    return following


def _reply_label(hop: HopEvent) -> str:
    label = f"{hop.rcode} AA={int(hop.aa)} RA={int(hop.ra)}"
    if hop.detail:
        label += f", {hop.detail}"
    if hop.cached_by:
        label += f", from the cache of {hop.cached_by}"
    # The size leaves the hop trail out, as the text summary does.
    return f"{label}, {hop.rtt_ms:.1f} ms, {hop.received - hop.trail_bytes} bytes"


def _key(name: str) -> str:
    return name.lower().rstrip(".")


def _clean(text: str) -> str:
    # Mermaid ends a statement at ";" and reads "#...;" as an entity code,
    # so "#" is written as its own entity code.
    text = text.replace(";", ",").replace("\n", " ")
    return text.replace("#", "#35;")
