"""Audience votes: one per participant per round, turnout, deterministic tie-break."""
from __future__ import annotations

import pytest

from installation.ops.settings import VoteSettings
from installation.ops.votes import VoteBox

SCENES = ("living-mosaic", "calm-sanctuary", "surge", "night")
HZ = 10


def box(**kw) -> VoteBox:
    s = VoteSettings(**{"round_s": 5.0, "min_turnout": 3, **kw})
    return VoteBox(s, HZ, SCENES)


def test_round_opens_with_the_first_vote_and_the_majority_wins_at_its_close():
    b = box()
    assert b.update(100) is None and not b.round_open
    assert b.vote("ann", "surge", 100) is None
    assert b.round_open and b.ticks_left(100) == 50
    b.vote("bob", "night", 110)
    b.vote("cy", "surge", 120)
    assert b.update(149) is None
    assert b.update(150) == "surge"
    assert b.last_result == {"surge": 2, "night": 1}
    assert not b.round_open and b.turnout == 0 and b.rounds == 1


def test_one_vote_per_participant_the_later_replaces_the_earlier():
    b = box()
    for scene in ("surge", "surge", "night", "surge"):
        b.vote("ann", scene, 0)
    b.vote("bob", "night", 1)
    b.vote("cy", "night", 2)
    assert b.turnout == 3 and b.tally() == {"surge": 1, "night": 2}
    assert b.update(50) == "night"


def test_minimum_turnout():
    b = box(min_turnout=3)
    b.vote("ann", "surge", 0)
    b.vote("bob", "surge", 0)
    b.vote("bob", "surge", 1)  # the same participant again is still one voter
    assert b.update(50) is None
    assert b.rounds_without_quorum == 1 and b.last_result == {"surge": 2}
    for who in ("ann", "bob", "cy"):
        b.vote(who, "night", 60)
    assert b.update(110) == "night"


def test_tie_goes_to_the_earliest_standing_vote():
    b = box(min_turnout=2)
    b.vote("ann", "night", 0)
    b.vote("bob", "surge", 1)
    assert b.update(50) == "night"
    # same tally, the other order
    b.vote("bob", "surge", 60)
    b.vote("ann", "night", 61)
    assert b.update(110) == "surge"
    # a replaced vote gives up its place: ann first voted surge, then moved to night
    b.vote("ann", "surge", 200)
    b.vote("bob", "night", 201)
    b.vote("ann", "night", 202)
    b.vote("cy", "surge", 203)
    assert b.tally() == {"night": 2, "surge": 1}
    b.vote("dee", "surge", 204)
    assert b.update(250) == "night"  # 2:2; night's earliest standing vote (bob, 201) precedes surge's (cy, 203)


def test_rejections_are_counted_with_reasons():
    b = box(max_voters=2)
    assert "does not exist" in b.vote("ann", "disco", 0)
    assert "letters, digits" in b.vote("ann", "../x", 0)
    assert b.vote("ann", "surge", 0) is None
    assert b.vote("bob", "surge", 0) is None
    assert "max_voters" in b.vote("cy", "surge", 0)
    assert b.vote("ann", "night", 0) is None  # a known voter may still change their mind
    assert b.rejected == 3 and b.accepted == 3
    off = box(enabled=False)
    assert "disabled" in off.vote("ann", "surge", 0) and off.turnout == 0


def test_a_vote_after_a_missed_close_starts_a_new_round():
    b = box(min_turnout=1)
    b.vote("ann", "surge", 0)
    b.vote("bob", "night", 80)  # update(50) was never called
    assert b.rounds == 1 and b.last_result == {"surge": 1}
    assert b.tally() == {"night": 1} and b.ticks_left(80) == 50


@pytest.mark.parametrize("seed", range(5))
def test_same_votes_same_winners(seed):
    import random
    rng = random.Random(seed)
    votes = [(f"p{rng.randrange(12)}", rng.choice(SCENES), t) for t in range(0, 400, 3)]

    def run():
        b, out = box(min_turnout=2), []
        for who, scene, t in votes:
            w = b.update(t)
            if w:
                out.append((t, w))
            b.vote(who, scene, t)
        return out

    first = run()
    assert first and first == run()
