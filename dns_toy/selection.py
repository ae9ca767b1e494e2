"""Server selection: which address of a zone's name servers to ask next.

This is pure code over an injected clock and random source, so tests
drive it exactly. `ServerSelection.order` puts a zone's candidates in the
order of one of three policies:

- nearest (the default) puts the lowest smoothed round-trip time (SRTT)
  first. Each reply updates SRTT = 0.7 * SRTT + 0.3 * RTT, the weights of
  BIND 9's address database. An address never measured counts as 0 ms, so
  every server is tried once before the measured ones are compared (BIND
  gives new servers a random SRTT of 1-32 microseconds to the same end).
  Each ordering also multiplies the SRTT of every candidate but the first
  by 0.98, as BIND ages the servers it did not try. Slower servers are so
  probed again now and then: one twice as slow as the best after about 35
  orderings.
- round-robin moves the start of a zone's list one place per ordering.
- random shuffles the list for each ordering.

Under every policy a timeout or transport error penalises the address.
Its SRTT grows by 200 ms (BIND's timeout penalty), doubling with each
failure in a row, up to 10 s, and 3 failures in a row hold the address
down for 30 s. Any reply clears the count. An address that gave a lame
reply for a zone is skipped for that zone for 60 s. Skipped candidates
come back apart from the ordered ones, so the caller can trace them.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from dnslib import DNSLabel

from .names import NameKey, name_key

Clock = Callable[[], float]

# The weight of the old SRTT in each update.
SRTT_KEEP = 0.7
# The factor applied to the SRTT of each candidate that was not put first.
SRTT_DECAY = 0.98
FIRST_PENALTY = 0.2  # seconds
MAX_SRTT = 10.0  # seconds
HOLD_DOWN_AFTER = 3  # failures in a row
HOLD_DOWN_TIME = 30.0  # seconds
LAME_TIME = 60.0  # seconds


class SelectionPolicy(str, Enum):
    """The order in which the servers of a zone are asked."""

    NEAREST = "nearest"
    ROUND_ROBIN = "round-robin"
    RANDOM = "random"


@dataclass(frozen=True)
class Candidate:
    """One address of one name server of a zone."""

    server: DNSLabel
    address: str


@dataclass(frozen=True)
class Skip:
    """A candidate left out of an ordering, why, and until when."""

    candidate: Candidate
    reason: str
    until: float


@dataclass(frozen=True)
class Penalty:
    """The state of an address after a timeout or transport error."""

    address: str
    srtt: float  # seconds, after the penalty
    failures: int  # in a row
    held_until: float | None  # set when this failure started a hold-down


@dataclass
class _AddressState:
    srtt: float = 0.0
    measured: bool = False
    failures: int = 0
    held_until: float = float("-inf")


class ServerSelection:
    """Per-address SRTT, failures and hold-downs, and per-zone lameness."""

    def __init__(
        self,
        policy: SelectionPolicy,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._addresses: dict[str, _AddressState] = {}
        self._lame: dict[tuple[str, NameKey], tuple[float, str]] = {}
        self._next_start: dict[NameKey, int] = {}

    def order(
        self, zone: DNSLabel, candidates: Sequence[Candidate]
    ) -> tuple[list[Candidate], list[Skip]]:
        """Return the candidates to ask, in order, and the ones skipped."""
        now = self._clock()
        usable: list[Candidate] = []
        skipped: list[Skip] = []
        for candidate in candidates:
            skip = self._skip(zone, candidate, now)
            if skip is None:
                usable.append(candidate)
            else:
                skipped.append(skip)
        return self._arrange(zone, usable), skipped

    def record_reply(self, address: str, rtt: float) -> float:
        """Fold one round-trip time (seconds) into the SRTT; return it."""
        state = self._state(address)
        if state.measured:
            state.srtt = SRTT_KEEP * state.srtt + (1 - SRTT_KEEP) * rtt
        else:
            state.srtt = rtt
            state.measured = True
        state.failures = 0
        return state.srtt

    def record_failure(self, address: str) -> Penalty:
        """Penalise an address after a timeout or transport error."""
        state = self._state(address)
        state.failures += 1
        penalty = FIRST_PENALTY * 2 ** (state.failures - 1)
        state.srtt = min(state.srtt + penalty, MAX_SRTT)
        held_until = None
        if state.failures >= HOLD_DOWN_AFTER:
            held_until = self._clock() + HOLD_DOWN_TIME
            state.held_until = held_until
        return Penalty(address, state.srtt, state.failures, held_until)

    def mark_lame(self, address: str, zone: DNSLabel, reason: str) -> float:
        """Skip `address` for `zone` for LAME_TIME seconds; return until when."""
        until = self._clock() + LAME_TIME
        self._lame[(address, name_key(zone))] = (until, reason)
        return until

    def srtt(self, address: str) -> float | None:
        """Return the SRTT of an address in seconds, or None if never used."""
        state = self._addresses.get(address)
        return None if state is None else state.srtt

    def _state(self, address: str) -> _AddressState:
        return self._addresses.setdefault(address, _AddressState())

    def _skip(self, zone: DNSLabel, candidate: Candidate, now: float) -> Skip | None:
        state = self._addresses.get(candidate.address)
        if state is not None and state.held_until > now:
            reason = f"held down after {state.failures} failures in a row"
            return Skip(candidate, reason, state.held_until)
        lame = self._lame.get((candidate.address, name_key(zone)))
        if lame is not None and lame[0] > now:
            return Skip(candidate, f"lame ({lame[1]})", lame[0])
        return None

    def _arrange(self, zone: DNSLabel, usable: list[Candidate]) -> list[Candidate]:
        if self.policy is SelectionPolicy.RANDOM:
            self._rng.shuffle(usable)
            return usable
        if self.policy is SelectionPolicy.ROUND_ROBIN:
            return self._rotate(zone, usable)
        return self._nearest(usable)

    def _rotate(self, zone: DNSLabel, usable: list[Candidate]) -> list[Candidate]:
        if not usable:
            return usable
        key = name_key(zone)
        start = self._next_start.get(key, 0) % len(usable)
        self._next_start[key] = start + 1
        return usable[start:] + usable[:start]

    def _nearest(self, usable: list[Candidate]) -> list[Candidate]:
        # sorted() is stable: equal SRTTs keep the delegation's order.
        ordered = sorted(usable, key=lambda c: self._state(c.address).srtt)
        others = {c.address for c in ordered[1:]} - {c.address for c in ordered[:1]}
        for address in others:
            self._state(address).srtt *= SRTT_DECAY
        return ordered
