"""Faults a server can be told to inject, to make resolver policies visible.

A fault specification is a comma-separated list, the same on the command
line, in a topology file and over the control channel:

    delay=200,jitter=50,drop=0.3,seed=7,servfail,refuse,truncate

`delay` and `jitter` are milliseconds (each query waits delay plus a
uniform random amount in [-jitter, +jitter]); `drop` is the fraction of
queries left unanswered; `seed` makes the random choices reproducible.
"""

import random
from dataclasses import dataclass, field

from .errors import DnsToyError

FLAG_FAULTS = ("servfail", "refuse", "truncate")


class FaultSpecError(DnsToyError):
    """A fault specification that cannot be read."""


@dataclass(frozen=True)
class Decision:
    """What to do with one query."""

    drop: bool = False
    delay: float = 0.0  # seconds
    servfail: bool = False
    refuse: bool = False
    truncate: bool = False


@dataclass
class Faults:
    """The faults one server injects; all off by default."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    drop: float = 0.0
    seed: int | None = None
    servfail: bool = False
    refuse: bool = False
    truncate: bool = False
    _random: random.Random = field(
        default_factory=random.Random, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._check()
        self._random = random.Random(self.seed)

    def _check(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise FaultSpecError("delay and jitter must be 0 or more milliseconds")
        if not 0.0 <= self.drop <= 1.0:
            raise FaultSpecError(
                f"drop must be a fraction from 0 to 1, not {self.drop}"
            )

    @property
    def active(self) -> bool:
        flags = self.servfail or self.refuse or self.truncate
        return flags or self.delay_ms > 0 or self.jitter_ms > 0 or self.drop > 0

    def decide(self) -> Decision:
        """Draw the fate of one query."""
        if not self.active:
            return Decision()
        if self.drop > 0 and self._random.random() < self.drop:
            return Decision(drop=True)
        delay = self.delay_ms
        if self.jitter_ms > 0:
            delay += self._random.uniform(-self.jitter_ms, self.jitter_ms)
        return Decision(
            delay=max(0.0, delay) / 1000,
            servfail=self.servfail,
            refuse=self.refuse,
            truncate=self.truncate,
        )

    def describe(self) -> str:
        """Return the specification text; `none` when no fault is set."""
        parts = []
        for key, value in (
            ("delay", self.delay_ms),
            ("jitter", self.jitter_ms),
            ("drop", self.drop),
        ):
            if value:
                parts.append(f"{key}={value:g}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        parts.extend(name for name in FLAG_FAULTS if getattr(self, name))
        return ",".join(parts) or "none"

    def to_arguments(self) -> list[str]:
        """Return the `dns-toy serve` options that set these faults."""
        arguments = []
        if self.delay_ms:
            arguments += ["--delay", f"{self.delay_ms:g}"]
        if self.jitter_ms:
            arguments += ["--jitter", f"{self.jitter_ms:g}"]
        if self.drop:
            arguments += ["--drop", f"{self.drop:g}"]
        if self.seed is not None:
            arguments += ["--seed", str(self.seed)]
        arguments += [f"--{name}" for name in FLAG_FAULTS if getattr(self, name)]
        return arguments


def parse_faults(spec: str) -> Faults:
    """Read a fault specification such as `delay=200,drop=0.3,servfail`."""
    values: dict[str, float | int | bool] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item or item in ("none", "clear"):
            continue
        key, _, text = item.partition("=")
        values.update(_parse_item(key.strip(), text.strip(), item))
    return Faults(**values)  # type: ignore[arg-type]


def _parse_item(key: str, text: str, item: str) -> dict[str, float | int | bool]:
    numeric = {"delay": "delay_ms", "jitter": "jitter_ms", "drop": "drop"}
    if key in FLAG_FAULTS and not text:
        return {key: True}
    try:
        if key in numeric and text:
            return {numeric[key]: float(text)}
        if key == "seed" and text:
            return {"seed": int(text)}
    except ValueError:
        raise FaultSpecError(f"invalid value in fault {item!r}") from None
    known = "delay=MS, jitter=MS, drop=FRACTION, seed=N, servfail, refuse, truncate"
    raise FaultSpecError(f"unknown fault {item!r}; use {known}")
