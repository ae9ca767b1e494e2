"""`dns-toy demo staleness`: change a record and watch caches serve the old one.

Theory of operation. The experiment runs in whole-second steps against a
lab: the running hierarchy (`demolabs.LiveLab`, real time) or an
in-memory copy of it (`demolabs.SimLab`, a simulated clock). At step 0
the first resolver resolves the name and caches its A RRset. With
several resolvers, each of the others does so a third of the TTL after
the one before. Then the record is changed at the authority: the zone
file is edited, its serial raised and every server of the zone reloaded.
From then on, each step asks the authority and every resolver that has
cached the name, and prints one row. A resolver is STALE while its answer
differs from the authority's, and has converged at the first step it
returns the new data. The run ends when every resolver has converged.

On the simulated clock every step happens at its exact second. In real
time a row is sampled a quarter of a second into its step, after the
step's actions, so that data cached at the start of step s has expired
by the row of step s + TTL. The TTLs a resolver returns are rounded
down, so live rows show one second less than simulated ones.

With `lower_ttl`, the TTL is lowered (same data) once every resolver has
cached the record, and the data is changed one second after the old TTL
has run out. The resolvers then hold the record for the low TTL only, so
they serve stale data for at most that long: the operator's trick before
a planned change.
"""

import asyncio
import ipaddress
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dnslib import QTYPE, DNSError, DNSLabel

from .errors import DnsToyError
from .zoneedit import RRsetEdit, next_serial

Output = Callable[[str], None]

NOT_QUERIED = "-"


class DemoError(DnsToyError):
    """The experiment cannot run or cannot go on."""


@dataclass(frozen=True)
class Observation:
    """One answer for the name: sorted A data and its TTL, or the problem."""

    values: tuple[str, ...]
    ttl: int | None
    problem: str = ""  # e.g. "no reply" or "SERVFAIL"

    def text(self) -> str:
        return ", ".join(self.values) or self.problem or "(no data)"


class Lab(Protocol):
    """The setting of an experiment: the servers to query and a clock to wait on."""

    authority_label: str
    resolver_labels: tuple[str, ...]
    # Seconds into each step at which the row is sampled, after the
    # step's actions.
    sample_offset: float

    def begin(self) -> None: ...

    async def wait(self, step: float) -> None: ...

    async def ask_authority(self) -> Observation: ...

    async def ask_resolver(self, index: int) -> Observation: ...

    async def publish(self, edit: RRsetEdit, serial: int) -> None: ...

    def zone_serial(self) -> int: ...


@dataclass(frozen=True)
class Plan:
    """When each resolver first caches the record and when the zone changes."""

    ttl: int
    prime_steps: tuple[int, ...]  # one per resolver
    change_step: int
    lower_step: int | None = None
    low_ttl: int | None = None

    @property
    def last_step(self) -> int:
        # No cache can hold the old data longer than the TTL it got, so
        # two steps beyond that mean something is wrong.
        return self.change_step + self.ttl + 2


def make_plan(ttl: int, resolvers: int, lower_ttl: bool, low_ttl: int | None) -> Plan:
    """Plan the experiment for a record of `ttl` seconds."""
    if resolvers < 1:
        raise DemoError("at least one resolver is needed")
    stagger = max(1, ttl // 3)
    primes = tuple(index * stagger for index in range(resolvers))
    if not lower_ttl:
        return Plan(ttl, primes, change_step=primes[-1])
    low = low_ttl if low_ttl is not None else max(1, ttl // 6)
    if not 0 < low < ttl:
        raise DemoError(f"--low-ttl {low} must be between 1 and the TTL ({ttl - 1})")
    change = primes[-1] + ttl + 1
    return Plan(ttl, primes, change, lower_step=primes[-1], low_ttl=low)


@dataclass(frozen=True)
class Row:
    """The answers of the authority and of each resolver at one step."""

    step: int
    authority: Observation
    resolvers: tuple[Observation | None, ...]  # None: not queried yet
    events: tuple[str, ...] = ()

    def state(self, index: int) -> str:
        answer = self.resolvers[index]
        if answer is None:
            return NOT_QUERIED
        return "FRESH" if answer.values == self.authority.values else "STALE"


@dataclass(frozen=True)
class ExperimentResult:
    """The rows of one run and when each resolver returned the new data."""

    plan: Plan
    rows: tuple[Row, ...]
    converged: tuple[int | None, ...]  # step, or None if it never did

    @property
    def stale_seconds(self) -> tuple[int | None, ...]:
        change = self.plan.change_step
        return tuple(None if step is None else step - change for step in self.converged)

    @property
    def disagreement_steps(self) -> tuple[int, ...]:
        """Return the steps at which asked resolvers returned different data."""
        steps = []
        for row in self.rows:
            answers = {answer.values for answer in row.resolvers if answer is not None}
            if len(answers) > 1:
                steps.append(row.step)
        return tuple(steps)


def changed_values(values: Sequence[str]) -> tuple[str, ...]:
    """Return new IPv4 addresses for the record: 100 added to the last octet."""
    changed = []
    for value in values:
        address = ipaddress.IPv4Address(value)
        last = (int(address) % 256 + 100) % 256
        changed.append(
            str(ipaddress.IPv4Address(int(address) - int(address) % 256 + last))
        )
    return tuple(sorted(changed))


class _Experiment:
    """One run of the plan against a lab, printing as it goes."""

    def __init__(
        self, lab: Lab, plan: Plan, name: DNSLabel, old: Observation, out: Output
    ) -> None:
        self.lab = lab
        self.plan = plan
        self.name = name
        self.old = old
        self.new_values = changed_values(old.values)
        self.out = out
        self.serial = lab.zone_serial()
        self.primed = [False] * len(plan.prime_steps)
        self.converged: list[int | None] = [None] * len(plan.prime_steps)
        self.table = _RowFormat(lab.resolver_labels, old.values, self.new_values)

    async def run(self) -> ExperimentResult:
        self.out(self.table.header())
        rows = []
        self.lab.begin()
        for step in range(self.plan.last_step + 1):
            await self.lab.wait(step)
            events = await self._act(step)
            await self.lab.wait(step + self.lab.sample_offset)
            row = await self._sample(step, events)
            rows.append(row)
            self.out(self.table.format(row))
            if all(step is not None for step in self.converged):
                break
        return ExperimentResult(self.plan, tuple(rows), tuple(self.converged))

    async def _act(self, step: int) -> list[str]:
        events = []
        for index, prime in enumerate(self.plan.prime_steps):
            if prime == step:
                answer = await self.lab.ask_resolver(index)
                self.primed[index] = True
                label = self.lab.resolver_labels[index]
                events.append(f"{label} caches {answer.text()}")
        if step == self.plan.lower_step:
            assert self.plan.low_ttl is not None
            await self._publish(self.old.values, self.plan.low_ttl, 1)
            events.append(f"TTL lowered to {self.plan.low_ttl} s")
        if step == self.plan.change_step:
            ttl = self.plan.low_ttl or self.plan.ttl
            serials = 2 if self.plan.lower_step is not None else 1
            await self._publish(self.new_values, ttl, serials)
            events.append(f"record changed to {', '.join(self.new_values)}")
        return events

    async def _publish(self, values: tuple[str, ...], ttl: int, serials: int) -> None:
        edit = RRsetEdit(self.name, QTYPE.A, values, ttl)
        await self.lab.publish(edit, next_serial(self.serial, serials))

    async def _sample(self, step: int, events: list[str]) -> Row:
        authority = await self.lab.ask_authority()
        answers: list[Observation | None] = []
        for index, primed in enumerate(self.primed):
            answers.append(await self.lab.ask_resolver(index) if primed else None)
        if step >= self.plan.change_step:
            self._note_convergence(step, answers, events)
        return Row(step, authority, tuple(answers), tuple(events))

    def _note_convergence(
        self, step: int, answers: list[Observation | None], events: list[str]
    ) -> None:
        for index, answer in enumerate(answers):
            fresh = answer is not None and answer.values == self.new_values
            if fresh and self.converged[index] is None:
                self.converged[index] = step
                if step > self.plan.change_step:
                    events.append(f"{self.lab.resolver_labels[index]} converged")


class _RowFormat:
    """Fixed-width columns, so rows can be printed as they come."""

    def __init__(
        self, labels: Sequence[str], old: Sequence[str], new: Sequence[str]
    ) -> None:
        self.labels = labels
        self.width = max(len(", ".join(old)), len(", ".join(new)), len("AUTHORITY"))

    def header(self) -> str:
        cells = [f"{'T':>4}", "AUTHORITY".ljust(self.width)]
        for label in self.labels:
            width = max(self.width, len(label))
            cells += [label.ljust(width), f"{'TTL':>5}", "STATE"]
        return "  ".join([*cells, "EVENTS"])

    def format(self, row: Row) -> str:
        cells = [f"{row.step:>4}", row.authority.text().ljust(self.width)]
        for index, label in enumerate(self.labels):
            width = max(self.width, len(label))
            answer = row.resolvers[index]
            value = NOT_QUERIED if answer is None else answer.text()
            ttl = (
                NOT_QUERIED if answer is None or answer.ttl is None else str(answer.ttl)
            )
            cells += [value.ljust(width), f"{ttl:>5}", row.state(index).ljust(5)]
        return "  ".join([*cells, "; ".join(row.events)]).rstrip()


def summarize(result: ExperimentResult, labels: Sequence[str]) -> list[str]:
    """Return the closing lines: how long each resolver served stale data."""
    plan = result.plan
    lines = []
    for label, stale, step in zip(labels, result.stale_seconds, result.converged):
        if step is None:
            last = result.rows[-1].step
            lines.append(f"{label} still served stale data at t={last}.")
        elif stale == 0:
            lines.append(f"{label} never served stale data.")
        else:
            lines.append(
                f"{label} served stale data for {stale} s "
                f"(t={plan.change_step} to t={step})."
            )
    steps = result.disagreement_steps
    if steps:
        lines.append(
            f"The resolvers gave clients different answers for {len(steps)} s "
            f"(t={steps[0]} to t={steps[-1] + 1})."
        )
    if plan.low_ttl is not None:
        lines.append(
            f"The TTL was lowered from {plan.ttl} s to {plan.low_ttl} s at "
            f"t={plan.lower_step} and the record changed at t={plan.change_step}, "
            "once the old TTL had run out."
        )
    return lines


async def run_experiment(
    lab: Lab, name: DNSLabel, plan_for: Callable[[int], Plan], out: Output
) -> ExperimentResult:
    """Run the staleness experiment in `lab` and print its rows and summary.

    `plan_for` receives the record's TTL at the authority.
    """
    old = await lab.ask_authority()
    if not old.values or old.ttl is None:
        raise DemoError(
            f"{lab.authority_label} has no A record for {name}: {old.text()}"
        )
    plan = plan_for(old.ttl)
    out(f"{name} A is {old.text()} with TTL {old.ttl} s at {lab.authority_label}.")
    result = await _Experiment(lab, plan, name, old, out).run()
    for line in summarize(result, lab.resolver_labels):
        out(line)
    return result


def run_staleness_demo(
    name: str,
    *,
    fake_clock: bool,
    resolvers: int,
    lower_ttl: bool,
    low_ttl: int | None,
    run_dir: Path | None,
    topology: Path,
) -> int:
    """Run the experiment from the command line; return the exit status."""
    from .demolabs import LiveLab, SimLab

    def plan_for(ttl: int) -> Plan:
        return make_plan(ttl, resolvers, lower_ttl, low_ttl)

    try:
        label = DNSLabel(name)
        if fake_clock:
            sim = SimLab.create(topology, label, resolvers)
            result = asyncio.run(run_experiment(sim, label, plan_for, _print))
        else:
            with LiveLab.create(run_dir, label, resolvers, _print) as live:
                result = asyncio.run(run_experiment(live, label, plan_for, _print))
    except (DNSError, UnicodeError) as exc:
        print(f"error: invalid domain name {name!r}: {exc}", file=sys.stderr)
        return 2
    except DnsToyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if all(step is not None for step in result.converged) else 1


def _print(line: str) -> None:
    print(line, flush=True)
