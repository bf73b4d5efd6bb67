"""Audience votes: `/crowd/{id}/vote name` picks the next scene.

Rules (deterministic from the ticked events, so a replay elects the same scenes):
- A round opens with its first accepted vote and closes `round_s` later (in ticks).
- One vote per participant per round: a later vote from the same participant REPLACES
  their earlier one (people change their minds; the last word counts once).
- At the close, if at least `min_turnout` participants voted, the scene with the most
  votes wins. A tie goes to the tied scene whose earliest standing vote came first (the
  order the frame loop applied the votes: tick, then arrival within the tick); a
  replaced vote gives up its place in that order.
- Unknown scenes, bad names, votes while disabled and newcomers beyond `max_voters`
  are rejected with a one-line reason and counted, never raised.
"""
from __future__ import annotations

import logging
from typing import Iterable

from ..config.names import scene_name_problem
from .logs import RateLimitedLog
from .settings import VoteSettings

log = logging.getLogger(__name__)


class VoteBox:
    def __init__(self, settings: VoteSettings, tick_hz: int, scenes: Iterable[str] | None = None):
        self.settings = settings
        self.round_ticks = max(1, round(settings.round_s * tick_hz))
        self.scenes = None if scenes is None else frozenset(scenes)
        self._ballots: dict[str, tuple[str, int]] = {}  # participant -> (scene, order)
        self._order = 0
        self._closes_at: int | None = None
        self._limited = RateLimitedLog(log)
        self.accepted = 0
        self.rejected = 0
        self.rounds = 0
        self.rounds_without_quorum = 0
        self.last_reason = ""
        self.last_result: dict[str, int] = {}

    @property
    def round_open(self) -> bool:
        return self._closes_at is not None

    def ticks_left(self, tick: int) -> int:
        return 0 if self._closes_at is None else max(0, self._closes_at - tick)

    @property
    def turnout(self) -> int:
        return len(self._ballots)

    def tally(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for scene, _ in self._ballots.values():
            counts[scene] = counts.get(scene, 0) + 1
        return counts

    def _reject(self, why: str) -> str:
        self.rejected += 1
        self.last_reason = why
        self._limited.warning("vote", "vote rejected: %s", why)
        return why

    def vote(self, participant_id: str, scene: str, tick: int) -> str | None:
        """Count a vote; None when accepted, else the one-line reason it was not."""
        if not self.settings.enabled:
            return self._reject("votes are disabled ([votes] enabled = false)")
        problem = scene_name_problem(scene)
        if problem:
            return self._reject(f"scene {scene!r}: {problem}")
        if self.scenes is not None and scene not in self.scenes:
            return self._reject(f"scene '{scene}' does not exist; known scenes: {', '.join(sorted(self.scenes))}")
        if self._closes_at is not None and tick >= self._closes_at:
            # The frame loop normally calls update() first; close the round it forgot.
            self.update(tick)
        if participant_id not in self._ballots and len(self._ballots) >= self.settings.max_voters:
            return self._reject(f"round already has {self.settings.max_voters} voters ([votes] max_voters)")
        if self._closes_at is None:
            self._closes_at = tick + self.round_ticks
        self._order += 1
        self._ballots[participant_id] = (scene, self._order)
        self.accepted += 1
        return None

    def update(self, tick: int) -> str | None:
        """At a round's close: the winning scene (quorum reached) or None; otherwise None."""
        if self._closes_at is None or tick < self._closes_at:
            return None
        ballots, self._ballots = self._ballots, {}
        self._closes_at = None
        self.rounds += 1
        counts: dict[str, int] = {}
        first: dict[str, int] = {}
        for scene, order in ballots.values():
            counts[scene] = counts.get(scene, 0) + 1
            first[scene] = min(first.get(scene, order), order)
        self.last_result = dict(counts)
        if len(ballots) < self.settings.min_turnout:
            self.rounds_without_quorum += 1
            log.info("vote round closed: %d voters, below the turnout of %d; no change (%s)",
                     len(ballots), self.settings.min_turnout, _fmt(counts))
            return None
        winner = min(counts, key=lambda s: (-counts[s], first[s]))
        log.info("vote round closed: '%s' wins with %d of %d votes (%s)",
                 winner, counts[winner], len(ballots), _fmt(counts))
        return winner


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "no votes"
