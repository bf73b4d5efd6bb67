"""The commands that run the pipeline: `run`, `replay`, `analyze`.

Each builds the parts a run needs, hands a Stage to `loop.run_loop`, and on the way out —
normal end, Esc, SIGINT, SIGTERM or SIGHUP — closes the recording and writes the summary.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .config import Config, ConfigError, to_dict
from .config.model import scenes_to_dict
from .events import INTERNAL_SOURCES, InputEvent
from .loop import LoopStats, run_loop
from .outputs import distinct, file_to_write, folder_to_fill
from .safety.quiet_hours import QUIET_ADDR
from .parallel import kernel_threads
from .stop import StopFlag

log = logging.getLogger("installation")


class UserError(Exception):
    """A problem the user can fix, told in one line (exit 2)."""


def open_display(cfg: Config, headless: bool, render_size, live: bool = True):
    """The window, or None (headless). `live`: the installation itself, where [window]
    require_display applies; a replay of a kiosk's session at a desk falls back regardless."""
    if headless:
        return None
    from .render.display import Display, DisplayError, DisplayUnavailable
    try:
        return Display(cfg.window, render_size)
    except DisplayUnavailable as exc:
        if live and cfg.window.require_display:
            raise UserError(f"no display ({exc}) and [window] require_display is set: start it where a screen "
                            f"is up (under systemd the unit restarts it until then)") from None
        print(f"no display ({exc}): running headless", file=sys.stderr)
        return None
    except DisplayError as exc:
        raise UserError(str(exc)) from None


def open_audio(cfg: Config, headless: bool, no_audio: bool, first=None):
    """The audio driver, with `first` (the pipeline's parameters before its first tick: the
    volume, quiet hours) published before the first block is rendered."""
    if no_audio or not cfg.audio.enabled:
        return None
    if headless:
        from .audio.offline import OfflineAudio
        audio = OfflineAudio(cfg.audio)
    else:
        from .audio.output import AudioOutput
        audio = AudioOutput(cfg.audio)
    if first is not None:
        audio.publish(first)
    # the callback is native code (audio/native_callback.py): it never waits for the GIL
    return audio.start()


def audio_stats(audio) -> dict:
    if audio is None:
        return {"audio_backend": "none", "audio_underflows": 0, "audio_callbacks": 0}
    return dict(audio.stats())


def hud_lines(pipeline, stats: LoopStats, extra: dict) -> list[str]:
    mood = pipeline.control.mood
    ms = stats.mean_last_ms(120)
    lines = [f"{stats.fps_recent:5.1f} fps   frame {ms:5.2f} ms   ticks {pipeline.tick}   dropped {stats.dropped_ticks}",
             f"particles {pipeline.swarm.n}   participants {mood.count}"
             + ("   (attract mode)" if pipeline.control.attract_active else ""),
             f"mood  valence {mood.valence:+.2f}  arousal {mood.arousal:.2f}  agreement {mood.agreement:.2f}  energy {mood.energy:.2f}"]
    for k, v in extra.items():
        lines.append(f"{k} {v}")
    return lines


def settle_heap() -> None:
    """Before the first frame: everything built so far (modules, numba dispatchers, the
    config, the pipeline) lives for the whole run. Frozen, a full collection during the show
    walks only what the frames allocate since, not the hundreds of thousands of start-up
    objects: a frame-long pause becomes a fraction of a millisecond."""
    gc.collect()
    gc.freeze()


class RunStage:
    """Live input (or replayed input) → pipeline → frame → window/export; audio per tick."""

    def __init__(self, pipeline, *, source, display=None, audio=None, recorder=None,
                 stop: StopFlag, audio_sink=None, hud=False, extra_status=None, frame_worker=None):
        self.p = pipeline
        self.source = source              # callable(tick) -> list[InputEvent]
        self.display = display
        self.audio = audio
        self.recorder = recorder          # callable(tick, event) or None
        self.stop = stop
        self.frame_worker = frame_worker  # FrameWorker (exports): frames drawn a tick behind
        self.audio_sink = audio_sink      # callable(samples) or None
        self.hud = hud
        self.stats: LoopStats | None = None
        self.extra_status = extra_status or (lambda: {})
        self.paused = False
        self.step_once = False
        # replay only: space pauses, "." steps. A live show never pauses on a key: a visitor at
        # a kiosk keyboard would freeze the swarm and drop every phone's input unseen
        self.transport = False
        self.seek = None                  # replay only: callable(seconds) jumping in the session
        self.last_tick: int | None = None  # replay only: the session's length in ticks
        # an offline driver renders each tick's share of samples (exact integers: no drift)
        self.offline = audio is not None and hasattr(audio, "render_to_tick")
        self._audio_cfg = pipeline.config.audio

    def tick(self) -> None:
        if self.paused and not self.step_once:
            return
        if self.last_tick is not None and self.p.tick >= self.last_tick:
            return      # a replay's end: catch-up ticks past it would leave its state_hash
        self.step_once = False
        tick = self.p.tick
        events = self.source(tick)
        if self.recorder is not None:
            for ev in events:
                self.recorder(tick, ev)
        self.p.advance(events)
        if self.audio is not None:
            if self.p.config.audio is not self._audio_cfg:   # a scene crossfade moved the music
                self._audio_cfg = self.p.config.audio
                self.audio.apply_settings(self._audio_cfg)
            self.audio.publish(self.p.audio)
            if self.offline:
                block = self.audio.render_to_tick(tick, self.p.tick_hz)
                if self.audio_sink is not None:
                    self.audio_sink(block)

    def frame(self) -> None:
        if self.frame_worker is not None:
            self.frame_worker.submit()      # it draws the frame and hands it to the encoder
            return
        frame = self.p.render()
        if self.display is not None:
            lines = hud_lines(self.p, self.stats, self.extra_status()) if self.hud and self.stats else None
            self.display.present(frame, lines)

    def keep_going(self) -> bool:
        if self.display is not None:
            act = self.display.poll()
            if act.quit:
                self.stop.set("quit key")
            if act.toggle_hud:
                self.hud = not self.hud
            if act.pause and self.transport:
                self.paused = not self.paused
            if act.step and self.transport:
                self.step_once = True
            if act.seek_s and self.seek is not None:
                self.seek(act.seek_s)
        return not self.stop.event.is_set()


def _header(cfg: Config) -> dict:
    return {"format": "living-mosaic-session", "version": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": cfg.sim.seed, "tick_hz": cfg.sim.tick_hz, "config": to_dict(cfg),
            "scenes": scenes_to_dict(cfg)}


def _summary(pipeline, stats: LoopStats, audio_final: dict | None, listener, extra: dict) -> dict:
    s = {
        "frames": stats.frames, "ticks": pipeline.tick, "wall_s": round(stats.wall_s, 4),
        "fps_mean": round(stats.fps_mean, 3),
        "frame_ms_p50": round(stats.percentile(50), 4), "frame_ms_p99": round(stats.percentile(99), 4),
        "dropped_ticks": stats.dropped_ticks,
        "particles": pipeline.swarm.n,
        "participants_peak": pipeline.control.participants_peak,
        "osc_received": listener.received if listener else 0,
        **osc_rejections(listener, pipeline),
        "events_applied": pipeline.events_applied,
        "flash_limited_frames": pipeline.guard.limited_frames,
        "state_hash": pipeline.state_hash(), "frame_hash": pipeline.frame_hash(),
        "scene": pipeline.mixer.current_name,
    }
    s.update(audio_final or audio_stats(None))
    s.update(extra)
    return s


def osc_rejections(listener, pipeline) -> dict:
    """`osc_rejected` and its kinds: what the listener refused (malformed, wrong types, floods,
    ...) and what got through it but was refused after: messages of newcomers beyond
    `crowd.max_participants` ("participant-cap") or a sender's `crowd.max_per_sender`
    ("sender-cap"), of sensors beyond it ("sensor-cap"), and
    operator commands naming an unknown scene or parameter ("operator-refused"). A replay
    has no listener: its events were accepted once already."""
    if listener is None:
        return {"osc_rejected": 0, "osc_rejected_by_kind": {}}
    kinds = dict(listener.rejected_by_kind)
    control = pipeline.control
    refusals = (("participant-cap", control.refused), ("sender-cap", control.refused_sender),
                ("sensor-cap", control.sensors_refused), ("operator-refused", pipeline.operator_rejected))
    for kind, n in refusals:
        if n:
            kinds[kind] = kinds.get(kind, 0) + n
    return {"osc_rejected": listener.rejected + sum(n for _, n in refusals), "osc_rejected_by_kind": kinds}


def run_command(args, cfg: Config) -> int:
    from .ops.logs import setup_logging
    setup_logging(cfg.log)
    distinct({"--config": getattr(args, "config", None)},
             {"--record": getattr(args, "record", None), "--summary": args.summary})
    if args.summary:
        file_to_write("--summary", args.summary)
    from .ops.preflight import preflight
    for w in preflight(cfg, strict=False):
        log.warning(w)
    from .pipeline import Pipeline
    # installed by the CLI before the imports and the config (a second and more), so a stop
    # in that time ends the run as any other: summary written, recording closed
    stop = getattr(args, "stop", None) or StopFlag()
    stop.install_signals()
    t_start = time.perf_counter()
    pipeline = Pipeline(cfg)
    pipeline.warm_up()
    # quiet hours from the wall clock, as recorded /quiet events (QuietClock); in force before
    # the sound starts, so a start at night is quiet from the first sample
    from .safety.quiet_hours import QuietClock, QuietHours
    quiet_clock = QuietClock(QuietHours.from_settings(cfg.safety)) if cfg.safety.quiet_hours else None
    if quiet_clock is not None:
        pipeline.set_quiet(quiet_clock.poll(datetime.now(), time.monotonic()))
    render_size = (pipeline.renderer.width, pipeline.renderer.height)
    display = open_display(cfg, args.headless, render_size)
    headless = display is None
    # no display is no reason to go silent: only --headless means "no devices at all"
    audio = open_audio(cfg, args.headless, args.no_audio, first=pipeline.audio)
    parts = _LiveParts(cfg, args, pipeline, audio, quiet_clock)
    stop.starting = False       # from here a stop's clean end writes the recording and summary
    try:
        parts.open()
    except BaseException:
        parts.close()
        if audio is not None:
            audio.close()
        if display is not None:
            display.close()
        raise

    stage = RunStage(pipeline, source=parts.source, display=display, audio=audio,
                     recorder=parts.record, stop=stop, hud=cfg.window.hud, extra_status=parts.hud_status)
    settle_heap()

    def on_frame(stats):
        stage.stats = stats
        parts.beat(stats)
        if stats.frames == 1:
            log.info("first frame %.2f s after start (%d particles, %s, audio %s, OSC port %s, %s)",
                     time.perf_counter() - t_start, pipeline.swarm.n,
                     "headless" if headless else f"window on display {cfg.window.display}",
                     audio_stats(audio)["audio_backend"], parts.listener.port if parts.listener else "off",
                     kernel_threads())
            parts.notifier.ready("running")

    stats = LoopStats()
    audio_final = None
    try:
        stats = run_loop(stage, tick_s=1.0 / cfg.sim.tick_hz, max_catchup=cfg.window.max_catchup_ticks,
                         frames=args.frames, duration_s=args.duration, on_frame=on_frame)
    finally:
        parts.notifier.stopping()
        parts.close()
        if audio is not None:
            audio_final = audio_stats(audio)   # what it played on, before closing forgets it
            audio.close()
        if display is not None:
            display.close()
    if stop.reason:
        log.info("stopped by %s", stop.reason)
    summary = _summary(pipeline, stats, audio_final, parts.listener, parts.summary_extra())
    log.info("%d frames, %d ticks in %.1f s (%.1f fps, p99 %.2f ms), state %s",
             summary["frames"], summary["ticks"], summary["wall_s"], summary["fps_mean"],
             summary["frame_ms_p99"], summary["state_hash"][:16])
    if args.summary:
        from .summary import write_summary
        write_summary(args.summary, summary)
    return 0


class _LiveParts:
    """What only a live run has: the OSC listener, recordings, the schedule, status, watchdog."""

    def __init__(self, cfg: Config, args, pipeline, audio, quiet_clock=None):
        from .ops.schedule import Schedule
        from .ops.sdnotify import SdNotifier
        self.cfg, self.args, self.pipeline, self.audio = cfg, args, pipeline, audio
        self.quiet_clock = quiet_clock
        self.listener = None
        self.recorder = None
        self.sessions = None
        self.status = None
        self.watchdog = None
        self.notifier = SdNotifier()
        self.schedule = Schedule(cfg.schedule, cfg.sim.tick_hz, pipeline.mixer.scenes())
        self.injected: list[InputEvent] = []
        self._scheduled = False         # the schedule has been asked once (at the first frame)
        self._t0 = time.monotonic()
        self._last_status = 0.0
        self._osc_last = (0.0, 0)
        self.osc_rate = 0.0

    def open(self) -> None:
        cfg, args = self.cfg, self.args
        if cfg.osc.enabled:
            from .osc.listener import OscListener
            self.listener = OscListener(cfg.osc, cfg.base_dir)
            try:
                self.listener.start()
            except OSError as exc:
                self.listener = None
                raise UserError(str(exc)) from None
        if args.record:
            from .session.errors import SessionError
            from .session.format import free_path
            from .session.recorder import Recorder
            try:
                path = free_path(file_to_write("--record", args.record))
                if path != Path(args.record):
                    # a restarted service must neither lose last night's show nor stay dark
                    log.warning("--record %s: a recording is already there; recording to %s instead "
                                "(nothing is overwritten)", args.record, path)
                # a disk that cannot take the recording (full, an I/O error) never stops the
                # show: the recorder logs it once, records nothing and tries again now and then;
                # a path the user can fix (a folder, no permission) is still a usage error
                self.recorder = Recorder(path, _header(cfg), cfg.session, pause_at_start=True)
            except (OSError, SessionError) as exc:
                raise UserError(f"--record {args.record}: {exc}") from None
            log.info("recording to %s (--record)", path)     # as /record/start says it
        from .session.recorder import SessionManager
        self.sessions = SessionManager(cfg.session.folder, lambda: _header(cfg), cfg.session)
        self.pipeline.record_handler = self._record_request
        if cfg.status.targets:
            from .ops.status import StatusSender
            self.status = StatusSender(cfg.status.targets, cfg.status.interval_s).start()
        from .ops.watchdog import Watchdog
        self.watchdog = Watchdog(cfg.watchdog.stall_s, self._flush_on_stall, flush_s=cfg.watchdog.flush_s,
                                 notifier=self.notifier).start()

    # --- per tick: the one input door ---------------------------------------------------------
    def source(self, tick: int) -> list[InputEvent]:
        events = self.listener.drain() if self.listener is not None else []
        if self.quiet_clock is not None and tick % self.cfg.sim.tick_hz == 0:
            now = time.monotonic()
            self.quiet_clock.poll(datetime.now(), now)
            amount = self.quiet_clock.event_value()
            if amount is not None:      # an event, so the recording holds it: a replay needs no clock
                events = events + [InputEvent(QUIET_ADDR, "f", (amount,), "clock", now - self._t0)]
        if self.injected:
            events = events + self.injected
            self.injected = []
        return events

    def record(self, tick: int, event: InputEvent) -> None:
        if self.recorder is not None:
            self.recorder.write(tick, event)
        # a recording paused by a write error still sees every tick: it counts what it drops,
        # and says on resuming how much was lost
        if self.sessions is not None and self.sessions.recorder is not None:
            self.sessions.write(tick, event)

    def _record_request(self, ev: InputEvent, tick: int) -> None:
        if ev.addr == "/record/start":
            path = self.sessions.start(str(ev.args[0]) if ev.args else None, tick)
            if path is not None:
                # started mid-run: its first events put a replay where the run is now (the
                # header holds the start-up config, which later switches are built on): the
                # scene and /param changes, the operator's light and sound levels
                c, t = self.pipeline.control, ev.t
                state = self.pipeline.mixer.state_events(tick) + [
                    ("/master/brightness", "f", (float(c.brightness),)),
                    ("/master/volume", "f", (float(c.volume),)),
                    ("/blackout", "i", (1 if c.blackout else 0,)),
                    (QUIET_ADDR, "f", (float(self.pipeline.quiet_amount),))]
                for addr, types, args in state:
                    self.sessions.write(tick, InputEvent(addr, types, args, "state", t))
                log.info("recording to %s (operator)", path)
        elif ev.addr == "/record/stop":
            path = self.sessions.stop(tick)
            if path is not None:
                log.info("recording %s closed (operator)", path)

    # --- per frame -----------------------------------------------------------------------------
    def beat(self, stats: LoopStats) -> None:
        if self.watchdog is not None:
            self.watchdog.beat()
        now = time.monotonic()
        if now - self._last_status < 1.0:
            return
        self._last_status = now
        if self.schedule.active:
            scene = self.schedule.update(self.pipeline.tick, datetime.now())
            if scene and scene != self.pipeline.mixer.current_name:
                # as an event, so the recording holds it and a replay switches at the same tick;
                # the slot in force at start-up is the show's start: no fade from the config's
                fade = float(self.cfg.schedule.crossfade_s) if self._scheduled else 0.0
                self.injected.append(InputEvent("/scene", "sf", (scene, fade), "schedule", now - self._t0))
            self._scheduled = True
        if self.listener is not None:
            t_prev, n_prev = self._osc_last
            self.osc_rate = (self.listener.received - n_prev) / max(now - t_prev, 1e-6) if t_prev else 0.0
            self._osc_last = (now, self.listener.received)
        if self.status is not None:
            mood = self.pipeline.control.mood
            a = audio_stats(self.audio)
            self.status.publish({
                "fps": stats.fps_recent, "participants": mood.count, "valence": mood.valence,
                "arousal": mood.arousal, "agreement": mood.agreement, "energy": mood.energy,
                "scene": self.pipeline.mixer.current_name,
                "osc_received": self.listener.received if self.listener else 0,
                "osc_rejected": osc_rejections(self.listener, self.pipeline)["osc_rejected"],
                "audio_underflows": a.get("audio_underflows", 0),
                "flash_limited_frames": self.pipeline.guard.limited_frames})

    def hud_status(self) -> dict:
        a = audio_stats(self.audio)
        return {"scene": self.pipeline.mixer.current_name + (" (crossfading)" if self.pipeline.mixer.crossfading else ""),
                "osc": f"{self.osc_rate:.0f} msg/s, rejected {osc_rejections(self.listener, self.pipeline)['osc_rejected']}",
                "audio": f"{a['audio_backend']}, underflows {a['audio_underflows']}",
                "flash guard": f"limited {self.pipeline.guard.limited_frames} frames",
                "recording": self._recording_status()}

    def _recording_status(self) -> str:
        """What the HUD says of the recordings: "yes" only while one is being written."""
        if (self.recorder is not None and self.recorder.active) or (self.sessions and self.sessions.active):
            return "yes"
        paused = [r for r in (self.recorder, self.sessions.recorder if self.sessions else None)
                  if r is not None and r.failed]
        return f"no (paused by a write error, {paused[0].errors} so far)" if paused else "no"

    def summary_extra(self) -> dict:
        out = {}
        if self.recorder is not None:
            out["recording"] = self.recorder.stats()
        if self.listener is not None:
            out["osc_port"] = self.listener.port
        out["operator_rejected"] = self.pipeline.operator_rejected
        return out

    def _flush_on_stall(self) -> None:
        if self.recorder is not None:
            self.recorder.close(self.pipeline.tick)
        if self.sessions is not None and self.sessions.recorder is not None:     # paused ones too
            self.sessions.stop(self.pipeline.tick)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.recorder is not None:
            self.recorder.close(self.pipeline.tick)
            log.info("recording %s closed (--record)", self.recorder.path)
        if self.sessions is not None and self.sessions.recorder is not None:     # paused ones too
            self.sessions.stop(self.pipeline.tick)
        if self.status is not None:
            self.status.close()


# --- replay ------------------------------------------------------------------------------------

def _replay_config(session, args) -> Config:
    from .config.loader import check_tree, merge, overrides_from_sets
    from .config.model import from_tree, load_config, recorded_scenes, scene_library
    base = load_config(env={}, sets=None)
    if session.config:
        tree = dict(session.config)
        if "max_per_sender" not in (tree.get("crowd") or {}):
            # recorded before one sender was limited: every participant it heard was accepted
            tree = merge(tree, {"crowd": {"max_per_sender": 0}})
        where = f"{session.path} (recorded config)"
        # what the recording ran with is replayed even where a check added since refuses it;
        # what --set changes now is checked as any new config is
        recorded_problems: list[tuple[str, str]] = []
        relaxed: list[tuple[str, str]] = []
        try:
            sets = overrides_from_sets(args.sets)
            check_tree(Config, sets, "--set", [])      # keys, types, ranges; combinations below
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        try:
            from_tree(tree, where, base.base_dir, recorded_problems)
            tree = merge(tree, sets)
            cfg = from_tree(tree, where, base.base_dir, relaxed)
        except ConfigError as exc:
            raise UserError(f"{exc} — the session was recorded with a config this version does not accept") from None
        new = [(at, problem) for at, problem in relaxed if problem not in {p for _, p in recorded_problems}]
        if new:
            raise UserError(f"--set makes {new[0][0]}: {new[0][1]}")
        try:
            # the scenes the recording could switch to, as they were then: a session recorded
            # with a venue's own scenes replays exactly at the desk (older sessions carry none,
            # and switch to the scenes of the recorded folder, built over the recorded config)
            recorded = session.header.get("scenes")
            scenes = (recorded_scenes(recorded, f"{session.path} (recorded scenes)", to_dict(cfg), relaxed)
                      if recorded is not None else
                      scene_library(base.base_dir, cfg.scene.folder, layers=(to_dict(cfg), {}), relaxed=relaxed))
        except ConfigError as exc:
            raise UserError(f"{exc} — the session was recorded with a config this version does not accept") from None
        window = cfg.window.key_problem()        # said once, with the keys the desk gets
        seen = {window}
        for at, problem in relaxed:
            if problem not in seen:             # a scene checked over the config repeats its problems
                seen.add(problem)
                log.warning("%s: %s — replayed as recorded: this version refuses it in a new config", at, problem)
        return dataclasses.replace(cfg, scenes=scenes, window=_desk_keys(cfg.window), recorded=True)
    # an oscdump log carries no config: the current one, at the log's tick rate; and no sender
    # (every message is "oscdump"), so no per-sender limit, or a crowd past it would be refused
    sets = [f"sim.tick_hz={session.tick_hz}", f"sim.seed={session.seed}", "crowd.max_per_sender=0", *args.sets]
    return load_config(env={}, sets=sets)


def _desk_keys(window):
    """The recorded window with key names this version reads: a session recorded headless
    with a name the window cannot read (refused since) replays at the desk on the defaults."""
    from .render.settings import WindowSettings
    problem = window.key_problem()
    if problem is None:
        return window
    default = WindowSettings()
    log.warning("window.%s — the replay's window uses hud_key %r and quit_keys %s", problem,
                default.hud_key, list(default.quit_keys))
    return dataclasses.replace(window, hud_key=default.hud_key, quit_keys=default.quit_keys)


def _replay_input(session, cfg: Config):
    """How to walk the session's input, (tick, event) in order, from its start each time.
    Recorded sessions hold accepted events; an oscdump log's raw messages go through the same
    validator live input does, and those it refuses are left out."""
    validator = None
    if session.kind == "oscdump":       # its alias files read once: every walk maps the same way
        from .osc.validate import Validator
        validator = Validator(cfg.osc, cfg.base_dir, operator_ok=lambda src: True)

    def walk():
        for te in session.events:
            ev = te.event
            if validator is not None:
                ev = validator.check(ev.addr, list(ev.args), ev.src, ev.t)
                if not isinstance(ev, InputEvent):
                    continue
            yield te.tick, ev
    return walk


def _input_counts(session, walk) -> tuple[int, int]:
    """(events replayed, messages the validator refused): an oscdump log's take a walk."""
    if session.kind != "oscdump":
        return len(session.events), 0
    accepted = sum(1 for _ in walk())
    return accepted, len(session.events) - accepted


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")     # containers that hold H.264 + AAC as players expect


def replay_command(args) -> int:
    from .session.errors import ExportError, SessionError
    from .session.reader import read_session
    for only in ("write_oscdump", "send"):
        others = [f"--{f.replace('_', '-')}" for f in ("export", "wav", "summary") if getattr(args, f, None)]
        if getattr(args, only, None) and others:
            raise UserError(f"--{only.replace('_', '-')} does only that (it converts or sends the session, "
                            f"nothing is replayed): drop {', '.join(others)}, or run them as a second command")
    distinct({"SESSION": args.session}, {f"--{f.replace('_', '-')}": getattr(args, f, None)
                                         for f in ("summary", "export", "wav", "write_oscdump")})
    for flag in ("summary", "export", "wav", "write_oscdump"):
        if getattr(args, flag, None):
            file_to_write("--" + flag.replace("_", "-"), getattr(args, flag))
    if args.export and Path(args.export).suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--export {args.export}: the video is H.264 with AAC sound, for an "
                        f"{'/'.join(VIDEO_SUFFIXES)} file; name it .mp4")
    try:
        session = read_session(args.session)
    except SessionError as exc:
        raise UserError(str(exc)) from None
    for note in getattr(session, "notes", []):
        log.warning("%s", note)
    if session.truncated:       # named by the part that is cut: a rotated chain's may be a middle one
        log.warning("%s: the session ends without an end marker (cut short?): replaying its %d whole ticks",
                    session.parts[-1] if session.parts else args.session, session.ticks)
    if args.write_oscdump:
        from .session.oscdump import write_oscdump
        counts = write_oscdump(session, args.write_oscdump)
        own = (f", left out {counts['internal']} at an address no listener takes (the installation's own "
               f"quiet hours)") if counts["internal"] else ""
        print(f"wrote {counts['written']} messages to {args.write_oscdump}{own} (oscdump text holds the OSC messages "
              f"and their timing only, not the config, seed or exact ticks: replay the session itself for an exact replay)")
        return 0
    if args.send:
        from .session.send import send_session
        host, port = args.send
        stop = StopFlag()
        stop.install_signals()
        counts = send_session(session, host, port, speed=args.speed, stop=stop.event)
        if stop.reason:         # not done: what went, so the desk knows where the show stands
            print(f"send stopped by {stop.reason}: sent {counts['sent']} of {len(session.events)} messages "
                  f"to {host}:{port}", file=sys.stderr)
            return 1
        print(f"sent {counts.get('sent', counts)} messages to {host}:{port}")
        return 0
    cfg = _replay_config(session, args)
    walk = _replay_input(session, cfg)
    try:
        return _replay(args, session, cfg, walk, _input_counts(session, walk))
    except (ExportError, SessionError) as exc:     # a SessionError now: the file changed under the replay
        raise UserError(str(exc)) from None


def _keep_none(frame) -> None:
    """A headless replay's frames: only the last one counts (the summary's frame_hash)."""


def _replay(args, session, cfg: Config, walk, counts: tuple[int, int]) -> int:
    import os
    import shutil
    import tempfile
    from .pipeline import Pipeline
    from .frame_worker import FrameWorker
    from .session.errors import ExportError
    from .session.export import Progress, VideoWriter, WavWriter, mux_audio
    from .session.feed import TickFeed
    stop = StopFlag()
    stop.install_signals()
    total = session.ticks
    exporting = bool(args.export)
    size = args.size if (exporting and args.size) else None
    clock = _session_clock(session)      # once: it may walk the whole session
    pipeline = Pipeline(cfg, render_size=size, time_of_day=clock)
    if pipeline.guard.warning:      # switched off by the config (with its phrase): said as `run` says it
        log.warning(pipeline.guard.warning)
    display = None if (exporting or args.headless) else open_display(cfg, False, (pipeline.renderer.width, pipeline.renderer.height),
                                                                   live=False)
    offline = exporting or args.wav or args.headless or display is None
    paced = not (exporting or args.headless or display is None)

    def shown_to_a_viewer(p):
        """A paced replay shows speed x tick_hz ticks a second: the flash guard's second must
        be the viewer's (at 4x, 10 Hz pulses reach the screen at 40 Hz)."""
        if paced:
            p.show_at(cfg.sim.tick_hz * args.speed)
        return p

    shown_to_a_viewer(pipeline)
    audio = None
    if args.wav or not args.no_audio:
        audio = open_audio(cfg, offline, False, first=pipeline.audio)
    out = Path(args.export) if exporting else None
    tmp = None          # the export's temporary files: beside the video, hidden, always removed
    wav = video = worker = progress = feed = None
    wav_path = None
    stats = LoopStats()
    audio_final = None
    ok = False
    released = False

    def release() -> None:
        """The devices and the progress line, once, whatever happened."""
        nonlocal released, audio_final
        if released:
            return
        released = True
        if progress is not None:
            progress.close()
        if audio is not None:
            audio_final = audio_stats(audio)
            audio.close()
        if display is not None:
            display.close()

    try:
        if exporting:
            # not in $TMPDIR: a night's picture and sound outgrow a small /tmp (a tmpfs); on the
            # video's own disk the finished file is moved into place whole, never half-written
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".export-tmp", dir=out.parent))
        wav_path = Path(args.wav) if args.wav else (tmp / "audio.wav" if exporting and audio else None)
        wav = WavWriter(wav_path, cfg.audio.samplerate, 2) if wav_path is not None and audio is not None else None
        if exporting:
            video = VideoWriter(tmp / f"video{out.suffix}", pipeline.renderer.width, pipeline.renderer.height,
                                cfg.sim.tick_hz, settings=cfg.session)
        progress = Progress(total, "export") if exporting else None

        # with no window to show them live, frames are drawn on a thread of their own while the
        # next tick is simulated (an export encodes them; a headless replay keeps the last one)
        if display is None:
            worker = FrameWorker(pipeline, video.write if video else _keep_none)
        hz = cfg.sim.tick_hz

        def replay_status() -> dict:
            """The HUD of a replay in a window: where in the session, how fast, paused or not."""
            state = "paused (space plays, . steps)" if stage.paused else f"at {args.speed:g}x"
            return {"replay": f"{stage.p.tick / hz:.1f} s of {total / hz:.1f} s, {state}", "scene": stage.p.mixer.current_name}
        feed = TickFeed(walk, stopped=stop.event.is_set)
        stage = RunStage(pipeline, source=feed, display=display, audio=audio, stop=stop,
                         audio_sink=_naming_errors(wav.write, wav_path) if wav else None, hud=cfg.window.hud,
                         frame_worker=worker, extra_status=replay_status)
        stage.transport = True
        settle_heap()
        base_keep_going = stage.keep_going

        def seek(seconds: float) -> None:
            """Jump by `seconds` in the session. The state at a tick exists only by simulating up
            to it, so back means again from the start; the picture and sound resume from there."""
            target = min(total, max(0, stage.p.tick + int(round(seconds * cfg.sim.tick_hz))))
            if target < stage.p.tick:
                stage.p = shown_to_a_viewer(Pipeline(cfg, render_size=size, time_of_day=clock))
            log.info("seek to %.1f s", target / cfg.sim.tick_hz)
            # a seek back into an hour-long session simulates for minutes: the window keeps
            # answering (Esc, close, Ctrl-C, SIGTERM end it; another seek key waits), and the
            # log says how far it has got
            stage.seek = None
            shown = time.monotonic()
            try:
                while stage.p.tick < target:
                    stage.p.advance(feed(stage.p.tick))     # back to tick 0: it reads from the start
                    if stage.p.tick % 30 == 0 and time.monotonic() - shown > 0.25:
                        if not base_keep_going():
                            return
                        if time.monotonic() - shown > 2.0:
                            log.info("seeking: %.0f s of %.0f s", stage.p.tick / cfg.sim.tick_hz,
                                     target / cfg.sim.tick_hz)
                        shown = time.monotonic()
            finally:
                stage.seek = seek
        if display is not None and args.wav:
            # --wav writes the session's audio as it plays: a jump would leave a hole or a repeat
            log.info("seek keys are off while --wav writes the session's audio")
        elif display is not None:
            stage.seek = seek

        def keep_going():
            return stage.p.tick < total and base_keep_going()
        stage.keep_going = keep_going
        stage.last_tick = total

        def on_frame(stats):
            stage.stats = stats
            if progress is not None:
                progress.update(stage.p.tick)

        tick_s = (1.0 / cfg.sim.tick_hz) / args.speed if paced else None
        try:
            stats = run_loop(stage, tick_s=tick_s, max_catchup=cfg.window.max_catchup_ticks, on_frame=on_frame)
            ok = not stop.event.is_set()
            if worker is not None:
                t0 = time.perf_counter()
                worker.close()      # the frames still queued (an interrupted export keeps them too)
                stats.wall_s += time.perf_counter() - t0
        except BaseException:
            # an error: stop the encoder first, so that a worker blocked on its pipe gets free
            if video is not None:
                video.abort()
            if worker is not None and worker.open:
                worker.abort()
            raise
        finally:
            pipeline = stage.p
            release()
        if wav is not None:
            _naming_errors(wav.close, wav_path)()
        if video is not None:
            if ok or pipeline.tick > 0:
                video.close()
                final = video.path
                if wav is not None:
                    final = tmp / f"with-sound{out.suffix}"
                    mux_audio(video.path, wav_path, final, video.frames / cfg.sim.tick_hz, cfg.session)
                _naming_errors(os.replace, out)(final, out)     # the same disk: whole or not at all
            else:
                video.abort()
    except OSError as exc:
        print(f"error: {_write_failed(exc, out or wav_path, pipeline.tick, total, tmp)}", file=sys.stderr)
        return 1
    except ExportError as exc:
        raise ExportError(f"{exc}{_low_space_hint(out.parent if out else Path('.'))}") from None
    finally:
        release()
        if feed is not None:
            feed.close()
        if video is not None:
            video.abort()       # after an error (a no-op once closed): no encoder left running
        if wav is not None:
            try:
                wav.close()     # after an error: a WAV that cannot be finished either must
            except OSError:     # not hide the error that stopped the replay
                pass
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = _summary(pipeline, stats, audio_final, None, {"replayed_events": counts[0],
                                                      "replay_rejected": counts[1], "session_ticks": total,
                                                      "session_truncated": bool(session.truncated),
                                                      "session_gaps": len(session.gaps)})
    # A replay drops no tick: when a frame falls behind, the loop's catch-up limit slows the
    # replay down instead; what the viewer lost is speed, said here, not ticks
    summary["dropped_ticks"] = 0
    replayed_s = pipeline.tick / cfg.sim.tick_hz
    summary["replay_speed"] = round(replayed_s / max(stats.wall_s, 1e-9), 3)
    if paced and pipeline.tick >= cfg.sim.tick_hz and summary["replay_speed"] < 0.9 * args.speed:
        log.warning("replayed at %.2fx, not the %gx asked: this machine could not draw that fast "
                    "(every tick was replayed)", summary["replay_speed"], args.speed)
    if args.summary:
        from .summary import write_summary
        write_summary(args.summary, summary)
    if args.export:
        # the ticks rendered, not the session's: a stopped export's ratio is its own
        log.info("exported %d frames to %s in %.1f s (%.2fx real time)", video.frames, args.export, stats.wall_s,
                 (video.frames / cfg.sim.tick_hz) / max(stats.wall_s, 1e-9))
    log.info("replayed %d ticks, state %s", pipeline.tick, summary["state_hash"][:16])
    if not ok and (exporting or wav is not None):
        # stopped by a signal (or a window closed) before the end: not done, so not status 0
        made = [f"{out} holds the first {video.frames / cfg.sim.tick_hz:.1f} s" if video is not None and video.frames
                else (f"nothing was written to {out}" if out else ""),
                f"{wav_path} holds the first {wav.frames / cfg.audio.samplerate:.1f} s" if args.wav and wav else ""]
        print(f"{'export' if exporting else 'replay'} stopped{' by ' + stop.reason if stop.reason else ''} "
              f"at tick {pipeline.tick} of {total}: {'; '.join(m for m in made if m)}", file=sys.stderr)
        return 1
    return 0


def _naming_errors(fn, path):
    """`fn`, with the file it writes named in the OSError it may raise (a write's has no name)."""
    def call(*args):
        try:
            return fn(*args)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = str(path)
            raise
    return call


def _free_space(folder: Path) -> str:
    import shutil
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    return f"{free / 2**30:.1f} GiB" if free >= 2**30 else f"{free / 2**20:.1f} MiB"


def _low_space_hint(folder: Path) -> str:
    """For an encoder that failed: its own message rarely says the disk is full."""
    import shutil
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" (only {_free_space(folder)} free in {folder}: is the disk full?)" if free < 64 * 2**20 else ""


def _write_failed(exc: OSError, out: Path | None, tick: int, total: int, tmp: Path | None) -> str:
    """One line: what could not be written, why, and how much room its disk has."""
    where = Path(exc.filename) if exc.filename else (out or Path("."))
    temporary = tmp is not None and tmp in where.parents
    folder = out.parent if temporary else where.parent
    what = f"the export's temporary file {where}" if temporary else str(where)
    left = "; its unfinished files were removed" if tmp is not None else ""
    return (f"{'export' if out is not None else 'replay'} failed at tick {tick} of {total}: cannot write "
            f"{what}: {exc.strerror or exc} ({_free_space(folder)} free in {folder}){left}")


# --- analyze -----------------------------------------------------------------------------------

def analyze_command(args) -> int:
    """Replay the session headless and unpaced, note the mood and the guards tick by tick, plot."""
    from .session.analyze import analyze
    from .session.errors import SessionError
    from .session.export import Progress
    from .session.feed import TickFeed
    from .session.reader import read_session
    try:
        session = read_session(args.session)     # an unreadable session leaves no empty --out behind
    except SessionError as exc:
        raise UserError(str(exc)) from None
    out = folder_to_fill("--out", args.out)      # before the replay, which may take hours
    if (out / "report.md").exists():
        log.warning("--out %s holds an analysis already: its files are replaced by this one's", args.out)
    args.sets = []
    cfg = _replay_config(session, args)
    progress = Progress(session.ticks, "analyze", unit="ticks")
    try:
        with TickFeed(_replay_input(session, cfg)) as feed:
            timeline = replay_timeline(cfg, feed, session.ticks, _session_clock(session), progress.update)
        progress.update(session.ticks)      # every tick is in: 100 %, not the last 30-tick step
    except SessionError as exc:             # the file changed under the replay
        raise UserError(str(exc)) from None
    finally:
        progress.close()
    result = analyze(session, args.out, timeline)
    print(f"analysis of {session.ticks} ticks written to {args.out} (report.md, {len(result.get('plots', {})) or 4} plots)")
    return 0


def replay_timeline(cfg: Config, by_tick, ticks: int, time_of_day=None, on_tick=None):
    """What a headless replay of `ticks` ticks sees, tick by tick (`session.timeline`). The
    frames are drawn behind the simulation (`FrameWorker`), as a headless replay's are: a
    night's session takes hours to analyse, and this is the faster way on any core count.
    Whether the flash guard changed a tick's frame is noted as each frame is drawn.
    `by_tick`: {tick: events}, or a callable(tick) -> events such as a `TickFeed`."""
    import numpy as np
    from .audio.offline import OfflineAudio
    from .frame_worker import FrameWorker
    from .pipeline import Pipeline
    from .session.timeline import Timeline
    pipeline = Pipeline(cfg, time_of_day=time_of_day)
    audio = OfflineAudio(cfg.audio)
    timeline = Timeline(cfg.sim.tick_hz, capacity=ticks + 1)
    limited_so_far = []     # the guard's count after each frame, appended in tick order

    def note_frame(frame) -> None:     # on the worker thread
        limited_so_far.append(pipeline.guard.limited_frames)

    worker = FrameWorker(pipeline, note_frame)
    try:
        for tick in range(ticks):
            events = by_tick(tick) if callable(by_tick) else by_tick.get(tick, [])
            pipeline.advance(events)
            audio.publish(pipeline.audio)
            audio.render_to_tick(tick, cfg.sim.tick_hz)
            worker.submit()
            a = audio.stats()
            mood = pipeline.control.mood
            timeline.append(tick, mood.valence, mood.arousal, mood.agreement, mood.energy, mood.count,
                            # OSC traffic: not the run's own clock, schedule or state events
                            sum(1 for e in events if e.src not in INTERNAL_SOURCES),
                            pipeline.control.surged, a["limiter_db"] < -0.5, False,
                            pipeline.control.attract_level)
            if on_tick is not None and tick % 30 == 0:
                on_tick(tick)
        worker.close()
    finally:
        worker.abort()      # after an error only: close() has stopped it
    timeline.set_column("flash_limited", np.diff(limited_so_far, prepend=0) != 0)
    return timeline


def _session_clock(session):
    """Time of day at a tick of a session recorded before quiet hours were recorded as /quiet
    events: its start plus the ticks since, in this machine's zone. None for a session that
    holds its /quiet events (a replay then dims exactly as the show did, anywhere)."""
    if any(te.event.addr == QUIET_ADDR for te in session.events):
        return None
    try:
        start = datetime.fromisoformat(session.header.get("created", "")).astimezone()
    except (TypeError, ValueError):
        return None
    hz = session.tick_hz
    return lambda tick: start + timedelta(seconds=tick / hz)
