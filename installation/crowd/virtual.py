"""A virtual crowd: N simulated phones with believable behaviour, from a seed.

Each phone drifts in emotion around a personal target (an Ornstein-Uhlenbeck walk), reports
it about once a second, reports motion a few times a second, touches the mosaic in bursts
(a finger sliding at 20 Hz for a few seconds) and now and then leaves (`/leave`) and comes
back later as a new visitor (a new id). Moods:
- calm: content and slow, few long touches;
- joyful: happy and lively, many touches, much motion;
- tense: unhappy and aroused, short jerky touches;
- surge: calm, until every 8-14 s most of the crowd jumps up together for a few seconds
  (arousal, motion and touches), which the installation sees as a surge;
- mixed: each visitor is calm, joyful or tense, and the crowd's share changes over time.

`VirtualCrowd.step()` advances one step (1/rate_hz s) and returns the messages sent in it;
everything is drawn from one `random.Random(seed)` in a fixed order, so the messages are a
pure function of (n, mood, seed, rate_hz, step index). The attract mode runs one inside the
installation at the tick rate; `run_crowd` sends one over UDP as N phones would.
"""
from __future__ import annotations

import math
import random
import socket
import threading
import time
from dataclasses import dataclass

from pythonosc.osc_message_builder import OscMessageBuilder

MOODS = ("calm", "joyful", "tense", "surge", "mixed")


@dataclass(frozen=True)
class Profile:
    valence: float          # mean personal target
    valence_sd: float       # spread of personal targets across visitors
    arousal: float
    arousal_sd: float
    energy: float           # typical motion
    touch_every_s: float    # mean pause between touch bursts
    burst_s: float          # mean length of a burst
    finger_speed: float     # how fast a finger slides (screen units/s)
    drift: float            # emotion noise (per sqrt(s))
    stay_s: float           # mean visit length


PROFILES = {
    "calm": Profile(0.35, 0.2, 0.15, 0.08, 0.06, 14.0, 4.0, 0.08, 0.05, 150.0),
    "joyful": Profile(0.7, 0.15, 0.65, 0.12, 0.45, 4.0, 2.5, 0.3, 0.12, 90.0),
    "tense": Profile(-0.55, 0.2, 0.75, 0.1, 0.3, 3.0, 0.8, 0.6, 0.2, 60.0),
}
# the surge crowd between surges
PROFILES["surge"] = Profile(0.2, 0.25, 0.2, 0.1, 0.1, 10.0, 2.0, 0.15, 0.06, 120.0)

EMOTION_EVERY_S = (0.6, 1.4)
MOTION_EVERY_S = 0.2
TOUCH_HZ = 20.0
ABSENT_S = 8.0              # mean time before an empty place is taken by a new visitor
SURGE_EVERY_S = (8.0, 14.0)
SURGE_LENGTH_S = (2.0, 3.5)


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


class _Phone:
    __slots__ = ("k", "gen", "present", "id", "profile", "v", "a", "tv", "ta", "energy", "te",
                 "next_emotion", "next_motion", "touching", "next_touch", "touch_end", "next_touch_msg",
                 "x", "y", "dx", "dy", "pressure", "leave_at", "join_at", "in_surge")

    def __init__(self, k: int):
        self.k = k
        self.gen = -1
        self.present = False
        self.id = ""
        self.in_surge = False


class VirtualCrowd:
    def __init__(self, n: int, mood: str = "mixed", seed: int = 0, rate_hz: float = 60.0,
                 prefix: str | None = None):
        if mood not in MOODS:
            raise ValueError(f"mood {mood!r}: one of {', '.join(MOODS)}")
        self.n = max(0, int(n))
        self.mood = mood
        self.rate_hz = float(rate_hz)
        self.dt = 1.0 / self.rate_hz
        self.prefix = f"vc{seed}-" if prefix is None else prefix
        self.rng = random.Random(seed)
        self.t = 0.0
        self.steps = 0
        self.phones = [_Phone(k) for k in range(self.n)]
        self.sent = 0
        self.joins = 0
        self.leaves = 0
        self._surge_start = self._next_surge()
        self._surge_end = -1.0
        self._mix_phase = self.rng.random() * 2.0 * math.pi
        for p in self.phones:
            # the crowd trickles in over the first half second, as a room fills
            p.join_at = self.rng.random() * 0.5

    # ---- drawing ----
    def _exp(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.rng.random())

    def _uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.rng.random()

    def _next_surge(self) -> float:
        return self.t + self._uniform(*SURGE_EVERY_S) if self.mood == "surge" else math.inf

    def _profile_for_new_visitor(self) -> Profile:
        if self.mood != "mixed":
            return PROFILES[self.mood]
        # the share of calm / joyful / tense visitors wanders over minutes
        ph = self._mix_phase + self.t * 2.0 * math.pi / 180.0
        w = (1.2 + math.sin(ph), 1.2 + math.sin(ph + 2.1), 1.2 + math.sin(ph + 4.2))
        r = self.rng.random() * sum(w)
        return PROFILES["calm"] if r < w[0] else PROFILES["joyful"] if r < w[0] + w[1] else PROFILES["tense"]

    def _join(self, p: _Phone) -> None:
        pr = self._profile_for_new_visitor()
        p.gen += 1
        p.present = True
        p.id = f"{self.prefix}{p.k}-{p.gen}"
        p.profile = pr
        p.tv = _clamp(self.rng.gauss(pr.valence, pr.valence_sd), -1.0, 1.0)
        p.ta = _clamp(self.rng.gauss(pr.arousal, pr.arousal_sd), 0.0, 1.0)
        p.v, p.a = p.tv, p.ta
        p.te = _clamp(self.rng.gauss(pr.energy, pr.energy * 0.3), 0.0, 1.0)
        p.energy = p.te
        p.next_emotion = self.t
        p.next_motion = self.t + self.rng.random() * MOTION_EVERY_S
        p.touching = False
        p.next_touch = self.t + self._exp(pr.touch_every_s)
        p.touch_end = 0.0
        p.next_touch_msg = 0.0
        p.x, p.y = self._uniform(0.1, 0.9), self._uniform(0.1, 0.9)
        p.dx = p.dy = 0.0
        p.pressure = 0.0
        p.leave_at = self.t + self._exp(pr.stay_s)
        self.joins += 1

    # ---- one step ----
    def step(self) -> list[tuple[int, str, tuple]]:
        """Advance 1/rate_hz s; the messages sent in it: (phone index, address, args)."""
        out: list[tuple[int, str, tuple]] = []
        t, dt, rng = self.t, self.dt, self.rng
        if self._surge_end < 0.0 and t >= self._surge_start:       # a surge begins
            self._surge_end = t + self._uniform(*SURGE_LENGTH_S)
            for p in self.phones:
                p.in_surge = rng.random() < 0.8   # most, not all, of the room joins in
        elif self._surge_end >= 0.0 and t >= self._surge_end:     # and ends
            self._surge_end = -1.0
            self._surge_start = self._next_surge()
            for p in self.phones:
                p.in_surge = False
        surging = self._surge_end >= 0.0
        for p in self.phones:
            if not p.present:
                if t >= p.join_at:
                    self._join(p)
                else:
                    continue
            pr = p.profile
            if t >= p.leave_at:
                out.append((p.k, f"/crowd/{p.id}/leave", ()))
                p.present = False
                p.join_at = t + self._exp(ABSENT_S)
                self.leaves += 1
                continue
            lifted = surging and p.in_surge
            ta = 0.95 if lifted else p.ta
            te = 0.9 if lifted else p.te
            # Ornstein-Uhlenbeck drift towards the personal target
            sq = math.sqrt(dt)
            p.v = _clamp(p.v + 0.5 * (p.tv - p.v) * dt + pr.drift * sq * rng.gauss(0.0, 1.0), -1.0, 1.0)
            p.a = _clamp(p.a + (2.5 if lifted else 0.5) * (ta - p.a) * dt
                         + pr.drift * sq * rng.gauss(0.0, 1.0), 0.0, 1.0)
            p.energy = _clamp(p.energy + 3.0 * (te - p.energy) * dt
                              + 0.5 * pr.energy * sq * rng.gauss(0.0, 1.0), 0.0, 1.0)
            if t >= p.next_emotion:
                out.append((p.k, f"/crowd/{p.id}/emotion", (round(p.v, 4), round(p.a, 4))))
                p.next_emotion = t + (0.3 if lifted else self._uniform(*EMOTION_EVERY_S))
            if t >= p.next_motion:
                out.append((p.k, f"/crowd/{p.id}/motion", (round(p.energy, 4),)))
                p.next_motion = t + MOTION_EVERY_S
            if not p.touching and (t >= p.next_touch or (lifted and rng.random() < 2.0 * dt)):
                p.touching = True
                p.touch_end = t + self._exp(pr.burst_s)
                p.pressure = self._uniform(0.5, 1.0)
                p.next_touch_msg = t
                ang = rng.random() * 2.0 * math.pi
                p.dx, p.dy = math.cos(ang) * pr.finger_speed, math.sin(ang) * pr.finger_speed
            if p.touching:
                if t >= p.touch_end:
                    p.touching = False
                    p.next_touch = t + self._exp(pr.touch_every_s)
                else:
                    # the finger wanders: its direction turns a little each step
                    turn = rng.gauss(0.0, 2.5 if pr.finger_speed > 0.4 else 1.0) * sq
                    c, s = math.cos(turn), math.sin(turn)
                    p.dx, p.dy = c * p.dx - s * p.dy, s * p.dx + c * p.dy
                    p.x += p.dx * dt
                    p.y += p.dy * dt
                    if not 0.02 <= p.x <= 0.98:
                        p.dx, p.x = -p.dx, _clamp(p.x, 0.02, 0.98)
                    if not 0.02 <= p.y <= 0.98:
                        p.dy, p.y = -p.dy, _clamp(p.y, 0.02, 0.98)
                    if t >= p.next_touch_msg:
                        out.append((p.k, f"/crowd/{p.id}/touch",
                                    (round(p.x, 4), round(p.y, 4), round(p.pressure, 3))))
                        p.next_touch_msg = t + 1.0 / TOUCH_HZ
        self.t = t + dt
        self.steps += 1
        self.sent += len(out)
        return out

    def present_ids(self) -> list[tuple[int, str]]:
        return [(p.k, p.id) for p in self.phones if p.present]


def encode(address: str, args: tuple) -> bytes:
    """One OSC message: numbers as float32 ('f'), strings as 's'."""
    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, str):
            b.add_arg(a, "s")
        else:
            b.add_arg(float(a), "f")
    return b.build().dgram


class UnknownHost(OSError):
    """`crowd --to` names a host that does not resolve (the message says which)."""


def run_crowd(host: str, port: int, participants: int = 10, duration: float | None = 30.0,
              mood: str = "mixed", seed: int = 0, rate_hz: float = 60.0,
              stop: threading.Event | None = None, counts: dict | None = None) -> int:
    """Be N phones sending real OSC over UDP to host:port for `duration` seconds (None: until
    `stop` is set); return the number of messages sent. Each phone has its own socket, hence
    its own source port, as real phones do; on the way out the phones still present say
    /leave. `counts`, if given, receives sent, errors, phones, steps, joins and leaves.

    Raises UnknownHost (an OSError) with a one-line message when host does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise UnknownHost(f"crowd --to {host}:{port}: cannot resolve '{host}': {exc.strerror}") from None
    family, _, _, _, target = infos[0]
    crowd = VirtualCrowd(participants, mood, seed, rate_hz)
    socks: list[socket.socket] = []
    tally = {"sent": 0, "errors": 0}
    empty_args: dict[str, bytes] = {}
    try:
        for _ in range(crowd.n):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            socks.append(s)

        def send(k: int, address: str, args: tuple) -> None:
            data = encode(address, args) if args else empty_args.setdefault(address, encode(address, ()))
            try:
                socks[k].sendto(data, target)
                tally["sent"] += 1
            except OSError:  # e.g. nobody listening yet (ICMP refused): phones carry on
                tally["errors"] += 1

        t0 = time.perf_counter()
        end = math.inf if duration is None else t0 + max(0.0, duration)
        step = 0
        try:
            while not (stop is not None and stop.is_set()):
                due = t0 + step * crowd.dt
                if due >= end:
                    break
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                for k, address, args in crowd.step():
                    send(k, address, args)
                step += 1
        except KeyboardInterrupt:  # Ctrl-C ends the crowd like the end of its duration
            pass
        for k, pid in crowd.present_ids():
            send(k, f"/crowd/{pid}/leave", ())
    finally:
        for s in socks:
            s.close()
    if counts is not None:
        counts.update(tally, phones=crowd.n, steps=crowd.steps, joins=crowd.joins, leaves=crowd.leaves)
    return tally["sent"]
