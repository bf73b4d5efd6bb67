"""Reading sessions back: cut files, bad lines, and oscdump logs made by the real liblo tools."""
from __future__ import annotations

import json
import os
import math
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from e2e_helpers import free_udp_port
from installation.events import InputEvent, TickedEvent
from installation.session.errors import SessionError
from installation.session.oscdump import LineError, parse_line
from installation.session.reader import read_session, write_oscdump
from installation.session.recorder import Recorder
from installation.session.settings import SessionSettings

HEADER = {"seed": 11, "tick_hz": 60, "config": {"render": {"width": 640, "height": 360}}}


def make_events(seed: int, n: int) -> list[TickedEvent]:
    rng = np.random.default_rng(seed)
    out = []
    t = 0.25
    for i in range(n):
        t += float(rng.exponential(0.02))
        pid = f"id{int(rng.integers(0, 9))}"
        f = lambda: float(np.float32(rng.random()))  # noqa: E731
        ev = [InputEvent(f"/crowd/{pid}/emotion", "ff", (f() * 2 - 1, f()), "10.0.0.5:5000", t),
              InputEvent(f"/crowd/{pid}/touch", "fff", (f(), f(), f()), "10.0.0.6:5001", t),
              InputEvent(f"/sensor/{pid}/level", "f", (f(),), "10.0.0.7:5002", t),
              InputEvent("/blackout", "i", (int(rng.integers(0, 2)),), "127.0.0.1:9", t),
              InputEvent("/scene", "sf", ("dawn_2", 1.5), "127.0.0.1:9", t)][int(rng.integers(0, 5))]
        out.append(TickedEvent(int(t * 60) + 1, ev))
    return out


def recorded(tmp_path: Path, n: int = 200, seed: int = 1) -> tuple[Path, list[TickedEvent]]:
    events = make_events(seed, n)
    path = tmp_path / "s.jsonl"
    rec = Recorder(path, HEADER, SessionSettings())
    for te in events:
        rec.write(te.tick, te.event)
    rec.close(events[-1].tick + 10)
    return path, events


# ---- JSON Lines: cut and broken files ------------------------------------------------------

def test_a_file_cut_mid_line_replays_up_to_its_last_whole_line(tmp_path):
    path, events = recorded(tmp_path)
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    # Drop the end marker and half of the last event line, as a crash would.
    cut = b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2]
    path.write_bytes(cut)
    s = read_session(path)
    assert s.truncated and s.end_ticks is None
    assert s.events == events[:-1]
    assert s.ticks == events[-2].tick + 1


def test_a_file_cut_at_a_line_end_or_with_a_zero_tail(tmp_path):
    path, events = recorded(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    s = read_session(path)
    assert s.truncated and s.events == events
    path.write_bytes(b"".join(lines[:-1]) + b"\x00" * 4096)    # what a power cut can leave
    s = read_session(path)
    assert s.truncated and s.events == events
    # input stamped past the end marker's ticks is never applied: said, not passed over
    end = json.loads(lines[-1])
    path.write_bytes(b"".join(lines[:-1]) + json.dumps({**end, "ticks": events[-1].tick - 5}).encode() + b"\n")
    assert any(f"events up to tick {events[-1].tick} lie past its end marker's" in n for n in read_session(path).notes)
    # a whole file, end marker and all, with a power cut's zeros after it: not cut short
    path.write_bytes(b"".join(lines) + b"\x00" * 4096)
    s = read_session(path)
    assert not s.truncated and s.events == events and s.end_ticks == events[-1].tick + 10
    assert any("zero bytes after its end marker" in n for n in s.notes)
    # cut text after the end marker is no power cut's zeros: cut short, as before
    path.write_bytes(b"".join(lines) + b'{"tick": 999, "t": 1.0, "sr')
    assert read_session(path).truncated


@pytest.mark.parametrize("bad,why", [
    (b"{\"tick\": 5, \"t\": 0.1, \"src\"", "not valid JSON"),
    (b"not json at all", "not valid JSON"),
    (b"{\"tick\": -1, \"t\": 0.1, \"src\": \"a:1\", \"addr\": \"/x\", \"types\": \"\", \"args\": []}", "tick"),
    (b"{\"tick\": 1, \"t\": 0.1, \"src\": \"a:1\", \"addr\": \"x\", \"types\": \"\", \"args\": []}", "addr"),
    (b"{\"tick\": 1, \"t\": 0.1, \"src\": \"a:1\", \"addr\": \"/x\", \"types\": \"f\", \"args\": [{}]}", "args"),
    (b"[1, 2, 3]", "bad event"),
    (b"{\"tick\": 1, \"t\": 0.1, \"src\": \"a:1\", \"addr\": \"/x\", \"types\": \"ff\", \"args\": [\"x\", \"y\"]}",
     "argument 1 must be a number"),
    (b"{\"tick\": 1, \"t\": 0.1, \"src\": \"a:1\", \"addr\": \"/x\", \"types\": \"f\", \"args\": [0.1, 0.2]}",
     "names 1 argument, \"args\" holds 2"),
    (b"\xff\xfe\xfa", "UTF-8"),
])
def test_a_bad_line_in_the_middle_names_the_file_and_line(tmp_path, bad, why):
    path, _ = recorded(tmp_path, n=50)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[20] = bad + b"\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(SessionError) as e:
        read_session(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "line 21" in msg and why in msg


def test_a_bad_whole_last_line_is_an_error_not_a_truncation(tmp_path):
    path, _ = recorded(tmp_path, n=20)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + b"{oops}\n")
    with pytest.raises(SessionError, match=f"line {len(lines)}:"):
        read_session(path)


@pytest.mark.parametrize("header,why", [
    ({"format": "something-else", "version": 1, "seed": 1, "tick_hz": 60, "config": {}}, "not a session header"),
    ({"format": "living-mosaic-session", "version": 2, "seed": 1, "tick_hz": 60, "config": {}}, "newer"),
    ({"format": "living-mosaic-session", "version": 1, "seed": "x", "tick_hz": 60, "config": {}}, "seed"),
    ({"format": "living-mosaic-session", "version": 1, "seed": 1, "tick_hz": 0, "config": {}}, "tick_hz"),
    ({"format": "living-mosaic-session", "version": 1, "seed": 1, "tick_hz": 60, "config": []}, "config"),
])
def test_bad_headers(tmp_path, header, why):
    p = tmp_path / "h.jsonl"
    p.write_text(json.dumps(header) + "\n" + json.dumps({"end": True, "ticks": 0}) + "\n")
    with pytest.raises(SessionError, match=f"line 1: .*{why}"):
        read_session(p)


def test_unreadable_files(tmp_path):
    for content, why in ((b"", "empty"), (b"\n\n", "empty"), (b"hello world\n", "neither"),
                         (b'{"format": "living-mosaic-session", "ver', "cut short")):
        p = tmp_path / "x.jsonl"
        p.write_bytes(content)
        with pytest.raises(SessionError, match=why):
            read_session(p)
    with pytest.raises(SessionError, match="cannot open"):
        read_session(tmp_path / "nope.jsonl")


def test_lines_after_the_end_marker_are_an_error(tmp_path):
    path, events = recorded(tmp_path, n=5)
    with open(path, "a") as f:
        f.write(json.dumps({"tick": 999, "t": 9.0, "src": "a:1", "addr": "/pulse", "types": "f", "args": [1.0]}) + "\n")
    with pytest.raises(SessionError, match="after the end marker"):
        read_session(path)


def rotated(tmp_path: Path, n: int) -> tuple[Path, list[TickedEvent], Recorder]:
    """`n` events recorded into a chain of small parts."""
    path = tmp_path / "night.jsonl"
    events = make_events(3, n)
    rec = Recorder(path, HEADER, SessionSettings(rotate_mb=0.02))
    for te in events:
        rec.write(te.tick, te.event)
    rec.close(events[-1].tick + 1)
    return path, events, rec


def test_a_missing_rotated_part_replays_what_is_there(tmp_path):
    path, events, rec = rotated(tmp_path, 600)
    assert rec.rotations >= 2
    Path(rec.files[2]).unlink()
    s = read_session(path)
    assert s.truncated and "missing" in s.notes[-1]
    n0 = len(read_session(rec.files[0], follow=False).events)
    n1 = len(read_session(rec.files[1], follow=False).events)
    assert s.events == events[: n0 + n1]


def test_a_middle_part_cut_short_says_which_and_the_parts_after_it(tmp_path):
    """A chain whose second part lost its end marker (a crash, a bad copy) replays up to it;
    the parts after it on disk are not replayed, and the reader says so by name, where it said
    only that the session was cut short."""
    path, events, rec = rotated(tmp_path, 900)
    assert rec.rotations >= 3
    cut = Path(rec.files[1])
    lines = cut.read_bytes().splitlines(keepends=True)
    cut.write_bytes(b"".join(lines[:-2]))              # no end marker, one event less
    s = read_session(path)
    assert s.truncated and s.parts[-1] == str(cut)
    later = [Path(f).name for f in rec.files[2:]]
    note = s.notes[-1]
    assert note.startswith(f"{cut.name} ends without an end marker") and later[0] in note, note
    assert f"{len(later)} part" in note and "not replayed" in note
    n0 = len(read_session(rec.files[0], follow=False).events)
    assert s.events == events[: n0 + len(lines) - 3]


@pytest.mark.parametrize("how", ["cut", "replaced", "rewritten", "deleted"])
def test_a_file_that_changes_after_its_check_is_said_not_replayed_differently(tmp_path, how):
    """The events are read again from disk as they are used: a file cut, replaced, rewritten
    in place or deleted after the check (a retention pass of the running show) raises, where a
    replay went on silently with other input."""
    path, events = recorded(tmp_path, n=300)
    s = read_session(path)
    data = path.read_bytes()
    if how == "cut":
        path.write_bytes(data[: len(data) // 2])
    elif how == "replaced":
        (tmp_path / "other").mkdir()
        other, _ = recorded(tmp_path / "other", n=300, seed=2)
        os.replace(other, path)
    elif how == "rewritten":           # same file, same size: one event line fewer, padded
        lines = data.splitlines(keepends=True)
        body = b"".join(lines[:5] + lines[6:])
        path.write_bytes(body[:-1] + b" " * (len(data) - len(body)) + b"\n")
    else:
        path.unlink()
    with pytest.raises(SessionError, match="changed since it was checked" if how != "deleted" else "deleted or moved"):
        list(s.events)


# ---- oscdump text --------------------------------------------------------------------------

@pytest.mark.parametrize("line,addr,types,args", [
    ("eeb1f08f.3463e079 /crowd/a/emotion ff 0.500000 0.800000", "/crowd/a/emotion", "ff", (0.5, 0.8)),
    ("eeb1f08f.354fce74 /record/stop ", "/record/stop", "", ()),
    ("eeb1f08f.354fce74 /record/stop", "/record/stop", "", ()),
    ('eeb1f08f.34b838c0 /scene sf "hello world" 2.500000', "/scene", "sf", ("hello world", 2.5)),
    ('eeb1f08f.34b838c0 /x ss "a "quoted" b" ""', "/x", "ss", ('a "quoted" b', "")),
    ("eeb1f08f.35a0be50 /x sTFNIhdcm \"a\"b\" #T #F Nil Infinitum 5 3.250000 'c' MIDI [0x00 0x00 0x00 0x01]",
     "/x", "sTFNIhdcm", ('a"b', True, False, None, 5, 3.25, "c", (0, 0, 0, 1))),
    ("eeb1f08f.35a0be50 /x TFi 7", "/x", "TFi", (True, False, 7)),        # oscsendfile's form
    ("eeb1f0a5.a9c4fc1d /x hSd 12345678901 'sym 0.100000", "/x", "hSd", (12345678901, "sym", 0.1)),
    ("eeb1f0a5.a9c4fc1d /x fff nan -inf -0.000000", "/x", "fff", (math.nan, -math.inf, -0.0)),
    ("eeb1f0a5.a9c4fc1d /x b [3b 0 0x1 0xff]", "/x", "b", (b"\x00\x01\xff",)),
    ("eeb1f0a5.a9c4fc1d /x b [40 byte blob]", "/x", "b", (None,)),
    ("eeb1f0a5.a9c4fc1d /x m 000090ff", "/x", "m", ((0, 0, 0x90, 0xff),)),
    ("  3736432783.878823449 /crowd/b/motion f 0.250000", "/crowd/b/motion", "f", (0.25,)),
    ("127.0.0.1:5555 /crowd/b/motion f 0.25", "/crowd/b/motion", "f", (0.25,)),
])
def test_oscdump_line_forms(line, addr, types, args):
    d = parse_line(line)
    assert (d.addr, d.types) == (addr, types)
    assert len(d.args) == len(args)
    for a, b in zip(d.args, args):
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a)
        else:
            assert a == b and type(a) is type(b)


@pytest.mark.parametrize("line", ["eeb1f08f.3463e079 /x ff 0.5", "eeb1f08f.3463e079 /x i 1.5",
                                  "eeb1f08f.3463e079 /x f 1 2", "eeb1f08f.3463e079 /x r 0"])
def test_oscdump_lines_whose_args_do_not_match(line):
    with pytest.raises(LineError):
        parse_line(line)


def test_oscdump_file_timing_chatter_and_bad_lines(tmp_path):
    p = tmp_path / "dump.txt"
    p.write_text("\n".join([
        "eeb1f08f.80000000 /crowd/a/emotion ff 0.500000 0.800000",
        "liblo server error 9912 in path /x: invalid type tag",
        "eeb1f08f.00000000 /crowd/a/touch ff 0.100000 0.200000",       # earlier: t0 is the earliest
        "eeb1f090.40000000 /x r 1",                                      # unreadable type: skipped
        "eeb1f091.00000000 /crowd/a/leave ",
        "eeb1f091.00000000 /crowd/b/touch ff 0.1",                       # cut while oscdump wrote
    ]))
    s = read_session(p, oscdump_tick_hz=50)
    assert s.kind == "oscdump" and s.truncated and s.skipped_lines == 2 and "line 4" in s.notes[0]
    assert (s.seed, s.tick_hz, s.config, s.end_ticks) == (1, 50, {}, None)
    assert [(te.tick, te.event.addr, te.event.t) for te in s.events] == [
        (0, "/crowd/a/touch", 0.0), (25, "/crowd/a/emotion", 0.5), (100, "/crowd/a/leave", 2.0)]
    assert {te.event.src for te in s.events} == {"oscdump"}
    p.write_text("eeb1f08f.80000000 /crowd/a/emotion ff 0.5 0.8\nthis is not oscdump\n")
    with pytest.raises(SessionError, match=f"{p}: line 2:"):
        read_session(p)


def test_write_oscdump_then_read_gives_the_same_events(tmp_path):
    path, events = recorded(tmp_path, n=300)
    session = read_session(path)
    out = tmp_path / "s.oscdump"
    assert write_oscdump(session, out) == {"written": 300, "skipped": 0, "internal": 0}
    back = read_session(out)
    t0 = events[0].event.t
    assert len(back.events) == len(events)
    for a, b in zip(back.events, events):
        assert (a.event.addr, a.event.types, a.event.args) == (b.event.addr, b.event.types, b.event.args)
        assert abs(a.event.t - (b.event.t - t0)) < 1e-6
        assert a.tick == math.floor(a.event.t * 60 + 0.5)


class OscDump:
    """A real `oscdump -L PORT` writing to a file, ready once a probe message shows up."""

    def __init__(self, tmp_path: Path):
        self.port = free_udp_port()
        self.path = tmp_path / f"oscdump-{self.port}.txt"
        self._out = open(self.path, "w")
        self.proc = subprocess.Popen(["oscdump", "-L", str(self.port)], stdout=self._out,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "/probe" not in self.path.read_text():
            assert time.monotonic() < deadline, "oscdump did not start"
            subprocess.run(["oscsend", "localhost", str(self.port), "/probe", "i", "1"], check=True)
            time.sleep(0.05)

    def stop(self) -> Path:
        self.proc.send_signal(signal.SIGINT)       # oscdump flushes and exits on SIGINT
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        return self.path


def test_oscdump_log_from_a_real_oscdump_process(tmp_path, require):
    require(shutil.which("oscdump") is not None and shutil.which("oscsend") is not None,
            "liblo-tools (apt install liblo-tools) for oscdump and oscsend")
    dump = OscDump(tmp_path)
    sent = [("/crowd/a/emotion", "ff", ["0.5", "0.8"]),
            ("/crowd/a/touch", "fff", ["0.25", "0.75", "1"]),
            ("/crowd/bob_2/motion", "f", ["0.125"]),
            ("/scene", "sf", ["night sky", "2.5"]),
            ("/blackout", "i", ["1"]),
            ("/crowd/a/leave", "", []),
            ("/record/start", "s", ["vernissage"])]
    for addr, types, args in sent:
        subprocess.run(["oscsend", "localhost", str(dump.port), addr, types, *args] if types
                       else ["oscsend", "localhost", str(dump.port), addr], check=True)
        time.sleep(0.03)
    s = read_session(dump.stop())
    assert s.kind == "oscdump" and not s.truncated
    got = [te for te in s.events if te.event.addr != "/probe"]
    assert [(te.event.addr, te.event.types) for te in got] == [(a, t) for a, t, _ in sent]
    for te, (_, types, args) in zip(got, sent):
        for v, text, t in zip(te.event.args, args, types):
            if t == "f":
                assert abs(v - float(np.float32(text))) <= 5e-7     # oscdump prints %f
            else:
                assert v == (int(text) if t == "i" else text)
    times = [te.event.t for te in s.events]
    assert times == sorted(times) and times[0] == 0.0
    assert all(te.tick == math.floor(te.event.t * 60 + 0.5) for te in s.events)
    assert all(te.event.src == "oscdump" for te in s.events)
    # oscsend runs one process per message: the log spans their real spacing.
    assert got[-1].event.t - got[0].event.t >= 0.03 * (len(sent) - 1)


def test_write_oscdump_plays_through_real_oscsendfile(tmp_path, require):
    require(all(shutil.which(t) for t in ("oscdump", "oscsend", "oscsendfile")),
            "liblo-tools (apt install liblo-tools) for oscdump, oscsend and oscsendfile")
    path, events = recorded(tmp_path, n=40, seed=5)
    session = read_session(path)
    out = tmp_path / "play.txt"
    write_oscdump(session, out)
    dump = OscDump(tmp_path)
    subprocess.run(["oscsendfile", "localhost", str(dump.port), str(out), "4"], check=True, timeout=30)
    time.sleep(0.2)
    got = [te.event for te in read_session(dump.stop()).events if te.event.addr != "/probe"]
    assert [(e.addr, e.types) for e in got] == [(te.event.addr, te.event.types) for te in events]
    for e, te in zip(got, events):
        for a, b in zip(e.args, te.event.args):
            assert a == b if isinstance(b, (int, str)) else abs(a - b) <= 5e-7   # oscdump prints %f
    # oscsendfile keeps the spacing (at 4x speed; it may bundle equal timetags).
    span = got[-1].t - got[0].t
    want = (events[-1].event.t - events[0].event.t) / 4
    assert abs(span - want) < 0.05 + 0.1 * want


# ---- long sessions: read as they are used, never held -------------------------------------

def write_session(path: Path, ticks: list[int]) -> list[TickedEvent]:
    """A session file in the recorder's format, one event per entry of `ticks`, in that order."""
    from installation.session.format import end_line, event_line, header_line
    events = [TickedEvent(tick, InputEvent(f"/crowd/p{i % 30}/touch", "fff", (0.25, 0.5, 1.0),
                                           f"10.0.0.{i % 30}:5000", tick / 60 + i * 1e-6))
              for i, tick in enumerate(ticks)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(header_line({"format": "living-mosaic-session", "version": 1, "seed": 2, "tick_hz": 60,
                             "config": {}, "part": 0}))
        for te in events:
            f.write(event_line(te.tick, te.event))
        f.write(end_line(max(ticks) + 1))
    return events


def traced_peak(fn) -> int:
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_long_session_is_read_in_bounded_memory(tmp_path):
    """A day's session holds tens of millions of events: reading one and walking its events
    (analyze, --send, --write-oscdump) or feeding them to a replay tick by tick must not hold
    them. 50 000 events as a list of objects take ~22 MiB; walked, about 0.05 MiB; fed, ~1 MiB
    (the feed's read-ahead, the same for any length)."""
    from installation.session.feed import TickFeed
    n = 50_000
    path = tmp_path / "day.jsonl"
    write_session(path, [i // 10 for i in range(n)])
    seen = []

    def walk():
        s = read_session(path)
        seen.append(sum(1 for _ in s.events))

    def feed():
        s = read_session(path)
        with TickFeed(lambda: ((te.tick, te.event) for te in s.events)) as events_at:
            seen.append(sum(len(events_at(tick)) for tick in range(s.ticks)))

    listed = traced_peak(lambda: seen.append(len(list(read_session(path).events))))
    walked, fed = traced_peak(walk), traced_peak(feed)
    assert seen == [n, n, n]
    assert listed > 15 * 2**20, listed
    assert walked < 2 * 2**20 and walked * 8 < listed, (walked, listed)
    assert fed < 4 * 2**20 and fed * 4 < listed, (fed, listed)


def test_events_out_of_tick_order_are_walked_sorted(tmp_path):
    """A hand-edited file: walked in tick order (file order within a tick), from the disk."""
    ticks = [5, 3, 3, 9, 0, 5, 3, 9, 1]
    events = write_session(tmp_path / "edited.jsonl", ticks)
    s = read_session(tmp_path / "edited.jsonl")
    want = sorted(events, key=lambda te: te.tick)
    assert s.events == want and list(s.events) == want       # twice: each walk reads it again
    assert s.events[0] == want[0] and s.events[-1] == want[-1] and s.events[4] == want[4]
    assert len(s.events) == len(ticks) and "out of tick order" in s.notes[0]


def test_the_replay_feed_reads_ahead_starts_over_and_reports_errors(tmp_path):
    from installation.session.feed import TickFeed
    events = write_session(tmp_path / "s.jsonl", [0, 0, 2, 7, 7, 7, 30])
    s = read_session(tmp_path / "s.jsonl")
    want = {t: [te.event for te in events if te.tick == t] for t in range(31)}
    with TickFeed(lambda: ((te.tick, te.event) for te in s.events), chunk_events=2, chunks_ahead=1) as feed:
        assert [feed(t) for t in range(31)] == [want[t] for t in range(31)]
        assert feed(30) == want[30]                         # the same tick again
        assert [feed(t) for t in range(8)] == [want[t] for t in range(8)]   # a seek back

    def broken():
        yield 0, "ok"
        raise SessionError("s.jsonl: the file changed while it was being read")
    with TickFeed(broken) as feed:
        assert feed(0) == ["ok"]
        with pytest.raises(SessionError, match="changed"):
            feed(1)

    # a walk that takes long to hand its first events over (an out-of-order log's index pass)
    # gives way as soon as the replay ends, instead of holding the frame loop till it is done
    import threading
    import time
    release, stop = threading.Event(), threading.Event()

    def slow():
        release.wait(30)
        yield 0, "late"
    with TickFeed(slow, stopped=stop.is_set) as feed:
        threading.Timer(0.3, stop.set).start()
        t0 = time.monotonic()
        assert feed(0) == [] and time.monotonic() - t0 < 5
        release.set()
