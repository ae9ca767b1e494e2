"""Server selection as pure code: SRTT, probes, penalties, hold-downs,
lameness and the three policies, on a fake clock."""

import random

import pytest
from dnslib import DNSLabel
from fakenet import FakeClock

from dns_toy.selection import (
    FIRST_PENALTY,
    HOLD_DOWN_TIME,
    LAME_TIME,
    MAX_SRTT,
    Candidate,
    SelectionPolicy,
    ServerSelection,
)

ZONE = DNSLabel("example.com")
OTHER_ZONE = DNSLabel("example.net")
NS1 = Candidate(DNSLabel("ns1.example.com"), "192.0.2.1")
NS2 = Candidate(DNSLabel("ns2.example.com"), "192.0.2.2")
NS3 = Candidate(DNSLabel("ns3.example.com"), "192.0.2.3")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def nearest(clock: FakeClock) -> ServerSelection:
    return ServerSelection(SelectionPolicy.NEAREST, clock)


def first(selection: ServerSelection, candidates: list[Candidate]) -> Candidate:
    ordered, _ = selection.order(ZONE, candidates)
    return ordered[0]


def test_srtt_first_sample_then_smoothed(clock: FakeClock) -> None:
    selection = nearest(clock)
    assert selection.srtt(NS1.address) is None
    assert selection.record_reply(NS1.address, 0.100) == pytest.approx(0.100)
    # SRTT = 0.7 * 100 ms + 0.3 * 200 ms.
    assert selection.record_reply(NS1.address, 0.200) == pytest.approx(0.130)


def test_nearest_prefers_lowest_srtt(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_reply(NS1.address, 0.050)
    selection.record_reply(NS2.address, 0.010)
    selection.record_reply(NS3.address, 0.030)
    ordered, skipped = selection.order(ZONE, [NS1, NS2, NS3])
    assert ordered == [NS2, NS3, NS1]
    assert skipped == []


def test_nearest_tries_unmeasured_first(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_reply(NS1.address, 0.002)
    assert first(selection, [NS1, NS2]) == NS2


def test_nearest_ties_keep_given_order(clock: FakeClock) -> None:
    selection = nearest(clock)
    ordered, _ = selection.order(ZONE, [NS2, NS1, NS3])
    assert ordered == [NS2, NS1, NS3]


def test_nearest_probes_slower_server(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_reply(NS1.address, 0.010)
    selection.record_reply(NS2.address, 0.020)
    # 20 ms * 0.98**35 is below 10 ms, 20 ms * 0.98**34 is not.
    firsts = [first(selection, [NS1, NS2]) for _ in range(36)]
    assert firsts[:35] == [NS1] * 35
    assert firsts[35] == NS2


def test_penalty_doubles_per_failure(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_reply(NS1.address, 0.010)
    penalties = [selection.record_failure(NS1.address) for _ in range(3)]
    assert [p.failures for p in penalties] == [1, 2, 3]
    expected = [
        0.010 + FIRST_PENALTY,
        0.010 + 3 * FIRST_PENALTY,
        0.010 + 7 * FIRST_PENALTY,
    ]
    assert [p.srtt for p in penalties] == pytest.approx(expected)
    assert [p.held_until is None for p in penalties] == [True, True, False]


def test_penalty_capped(clock: FakeClock) -> None:
    selection = nearest(clock)
    for _ in range(12):
        penalty = selection.record_failure(NS1.address)
    assert penalty.srtt == MAX_SRTT


def test_penalised_server_ordered_last(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_reply(NS1.address, 0.010)
    selection.record_reply(NS2.address, 0.050)
    selection.record_failure(NS1.address)
    assert first(selection, [NS1, NS2]) == NS2


def test_hold_down_after_three_failures(clock: FakeClock) -> None:
    selection = nearest(clock)
    for _ in range(3):
        penalty = selection.record_failure(NS1.address)
    assert penalty.held_until == clock() + HOLD_DOWN_TIME
    ordered, skipped = selection.order(ZONE, [NS1, NS2])
    assert ordered == [NS2]
    assert [s.candidate for s in skipped] == [NS1]
    assert skipped[0].reason == "held down after 3 failures in a row"
    assert skipped[0].until == clock() + HOLD_DOWN_TIME

    clock.advance(HOLD_DOWN_TIME - 0.1)
    assert selection.order(ZONE, [NS1])[0] == []
    clock.advance(0.1)
    assert selection.order(ZONE, [NS1])[0] == [NS1]


def test_hold_down_applies_to_every_zone(clock: FakeClock) -> None:
    selection = nearest(clock)
    for _ in range(3):
        selection.record_failure(NS1.address)
    ordered, skipped = selection.order(OTHER_ZONE, [NS1])
    assert ordered == []
    assert len(skipped) == 1


def test_reply_clears_failure_count(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.record_failure(NS1.address)
    selection.record_failure(NS1.address)
    selection.record_reply(NS1.address, 0.010)
    penalty = selection.record_failure(NS1.address)
    assert penalty.failures == 1
    assert penalty.held_until is None


def test_failure_after_hold_down_holds_again(clock: FakeClock) -> None:
    selection = nearest(clock)
    for _ in range(3):
        selection.record_failure(NS1.address)
    clock.advance(HOLD_DOWN_TIME)
    penalty = selection.record_failure(NS1.address)
    assert penalty.held_until == clock() + HOLD_DOWN_TIME


def test_lame_skipped_for_that_zone_only(clock: FakeClock) -> None:
    selection = nearest(clock)
    until = selection.mark_lame(NS1.address, ZONE, "rcode REFUSED")
    assert until == clock() + LAME_TIME
    ordered, skipped = selection.order(ZONE, [NS1, NS2])
    assert ordered == [NS2]
    assert skipped[0].reason == "lame (rcode REFUSED)"
    assert selection.order(OTHER_ZONE, [NS1])[0] == [NS1]

    clock.advance(LAME_TIME - 1)
    assert selection.order(ZONE, [NS1])[0] == []
    clock.advance(1)
    assert selection.order(ZONE, [NS1])[0] == [NS1]


def test_every_candidate_skipped(clock: FakeClock) -> None:
    selection = nearest(clock)
    selection.mark_lame(NS1.address, ZONE, "rcode SERVFAIL")
    selection.mark_lame(NS2.address, ZONE, "rcode SERVFAIL")
    ordered, skipped = selection.order(ZONE, [NS1, NS2])
    assert ordered == []
    assert len(skipped) == 2


def test_round_robin_rotates_per_zone(clock: FakeClock) -> None:
    selection = ServerSelection(SelectionPolicy.ROUND_ROBIN, clock)
    candidates = [NS1, NS2, NS3]
    orders = [selection.order(ZONE, candidates)[0] for _ in range(4)]
    assert orders == [
        [NS1, NS2, NS3],
        [NS2, NS3, NS1],
        [NS3, NS1, NS2],
        [NS1, NS2, NS3],
    ]
    # Another zone has its own position.
    assert selection.order(OTHER_ZONE, candidates)[0] == [NS1, NS2, NS3]


def test_round_robin_ignores_srtt(clock: FakeClock) -> None:
    selection = ServerSelection(SelectionPolicy.ROUND_ROBIN, clock)
    selection.record_reply(NS1.address, 5.0)
    assert selection.order(ZONE, [NS1, NS2])[0] == [NS1, NS2]


def test_random_follows_rng(clock: FakeClock) -> None:
    selection = ServerSelection(SelectionPolicy.RANDOM, clock, random.Random(3))
    expected = [NS1, NS2, NS3]
    random.Random(3).shuffle(expected)
    assert selection.order(ZONE, [NS1, NS2, NS3])[0] == expected


def test_random_puts_each_server_first(clock: FakeClock) -> None:
    selection = ServerSelection(SelectionPolicy.RANDOM, clock, random.Random(1))
    firsts = {first(selection, [NS1, NS2, NS3]) for _ in range(60)}
    assert firsts == {NS1, NS2, NS3}


def test_random_still_skips_lame(clock: FakeClock) -> None:
    selection = ServerSelection(SelectionPolicy.RANDOM, clock, random.Random(1))
    selection.mark_lame(NS2.address, ZONE, "rcode REFUSED")
    for _ in range(20):
        assert NS2 not in selection.order(ZONE, [NS1, NS2, NS3])[0]
