"""The command line of the contract: run, replay, crowd, analyze, bench, check-config.

Start-up problems a user can fix are one line on stderr and exit status 2; nothing here
prints a traceback for them.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys

from .config import ConfigError

log = logging.getLogger("installation")


class UsageError(Exception):
    """A bad command line or environment the user can fix: one line, exit 2."""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        w, h = int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    if not (64 <= w <= 7680 and 64 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"--size {text!r}: width 64..7680 and height 64..4320")
    return w, h


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:9000")
    return host.strip("[]"), int(port)


def _positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not v > 0 or not math.isfinite(v):     # nan and inf too: a run must end
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
        return v
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other usage problem
        _exit_usage(f"{self.prog}: {message} (see --help)")


def _exit_usage(message: str):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run_installation.py",
                description="Living Mosaic: a generative light-and-sound swarm shaped by its audience.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def common_run(sp):
        sp.add_argument("--headless", action="store_true", help="no window and no sound device; the full pipeline still runs")
        sp.add_argument("--no-audio", action="store_true", help="no sound at all")
        sp.add_argument("--summary", metavar="PATH", help="write the run's summary JSON here on exit")
        sp.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config key (repeatable); VALUE is TOML, a bare word is a string")
        sp.add_argument("--size", type=_size, metavar="WxH", help="window size (run) or video size (replay --export)")

    r = sub.add_parser("run", help="run the installation (the default command)")
    r.add_argument("--config", metavar="PATH", help="configuration file (default: configs/default.toml)")
    r.add_argument("--scene", metavar="NAME", help="scene to start with (configs/scenes/NAME.toml)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--fullscreen", dest="fullscreen", action="store_true", default=None)
    g.add_argument("--windowed", dest="fullscreen", action="store_false")
    r.add_argument("--display", type=int, metavar="N", help="display index for the window")
    stop = r.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=_positive(int), metavar="N", help="stop after N frames")
    stop.add_argument("--duration", type=_positive(float), metavar="SECONDS", help="stop after this much wall time")
    r.add_argument("--seed", type=int, metavar="N", help="simulation seed (sim.seed)")
    r.add_argument("--osc-port", type=int, metavar="PORT", help="UDP port for OSC (osc.port)")
    r.add_argument("--record", metavar="PATH", help="record the session (JSON Lines) to this file")
    common_run(r)

    rp = sub.add_parser("replay", help="replay a recorded session (or an oscdump log) exactly")
    rp.add_argument("session", metavar="SESSION")
    rp.add_argument("--speed", type=float, default=1.0, metavar="X", help="playback speed 0.25..8 (as fast as possible when --headless)")
    rp.add_argument("--export", metavar="VIDEO.mp4", help="render every tick to an H.264 video with the session's audio")
    rp.add_argument("--wav", metavar="AUDIO.wav", help="write the session's audio to a WAV file")
    rp.add_argument("--send", type=_hostport, metavar="HOST:PORT", help="re-send the session's OSC with its original timing")
    rp.add_argument("--write-oscdump", metavar="PATH", help="write the session out as liblo oscdump text")
    common_run(rp)

    c = sub.add_parser("crowd", help="a virtual audience sending real OSC over UDP")
    c.add_argument("--to", type=_hostport, required=True, metavar="HOST:PORT")
    c.add_argument("--participants", type=_positive(int), default=12, metavar="N")
    c.add_argument("--duration", type=_positive(float), default=30.0, metavar="SECONDS")
    c.add_argument("--mood", choices=("calm", "joyful", "tense", "surge", "mixed"), default="mixed")
    c.add_argument("--seed", type=int, default=1, metavar="N")

    a = sub.add_parser("analyze", help="plots and a report of a recorded session")
    a.add_argument("session", metavar="SESSION")
    a.add_argument("--out", required=True, metavar="DIR")

    b = sub.add_parser("bench", help="measure simulation, rendering and frame times")
    b.add_argument("--quick", action="store_true", help="fewer repetitions, no 200k row")
    b.add_argument("--json", metavar="PATH", help="write the results as JSON")

    cc = sub.add_parser("check-config", help="check a configuration file without running")
    cc.add_argument("path", metavar="PATH")
    cc.add_argument("--scene", metavar="NAME")

    ls = sub.add_parser("list-scenes", help="the scenes in the config's scenes folder")
    ls.add_argument("--config", metavar="PATH",
                    help="configuration file whose [scene] folder is listed (default: configs/default.toml)")
    sub.add_parser("list-audio-devices", help="the sound devices PortAudio sees")
    t = sub.add_parser("test-tone", help="play a quiet test tone on the configured device")
    t.add_argument("--seconds", type=_positive(float), default=3.0)
    t.add_argument("--config", metavar="PATH")
    t.add_argument("--set", dest="sets", action="append", default=[])
    return p


def run_config(args):
    """The resolved config of a `run`: file → scene → environment → --set → dedicated flags."""
    from .config import load_config
    from .config.loader import check_tree, overrides_from_sets
    from .config.model import Config
    flags = []      # (the flag as typed, the key it sets)
    if args.seed is not None:
        flags.append(("--seed", f"sim.seed={args.seed}"))
    if args.osc_port is not None:
        flags.append(("--osc-port", f"osc.port={args.osc_port}"))
    if args.fullscreen is not None:
        flags.append(("--fullscreen" if args.fullscreen else "--windowed",
                      f"window.fullscreen={'true' if args.fullscreen else 'false'}"))
    if args.display is not None:
        flags.append(("--display", f"window.display={args.display}"))
    if args.size is not None:
        flags.append(("--size", f"window.width={args.size[0]}"))
        flags.append(("--size", f"window.height={args.size[1]}"))
    for flag, item in flags:        # an error names the flag the user typed, not --set
        check_tree(Config, overrides_from_sets([item]), flag)
    return load_config(args.config, scene=args.scene, sets=list(args.sets) + [item for _, item in flags])


def _dispatch(args) -> int:
    cmd = args.command or "run"
    if cmd == "run":
        from .app import run_command
        return run_command(args, run_config(args))
    if cmd == "replay":
        if not 0.25 <= args.speed <= 8.0:
            raise UsageError(f"--speed {args.speed}: must be 0.25..8")
        from .app import replay_command
        return replay_command(args)
    if cmd == "crowd":
        from .crowd.virtual import UnknownHost, run_crowd
        host, port = args.to
        try:
            sent = run_crowd(host, port, participants=args.participants, duration=args.duration,
                             mood=args.mood, seed=args.seed)
        except UnknownHost as exc:      # bad usage: one line, exit 2
            raise UsageError(str(exc)) from None
        print(f"crowd: sent {sent} messages from {args.participants} participants to {host}:{port}")
        return 0
    if cmd == "analyze":
        from .app import analyze_command
        return analyze_command(args)
    if cmd == "bench":
        from .bench import bench_command
        return bench_command(args)
    if cmd == "check-config":
        from .config import load_config
        cfg = load_config(args.path, scene=args.scene)     # with the environment, as `run` reads it
        from .ops.preflight import preflight
        for w in preflight(cfg, strict=True):
            print(f"warning: {w}")
        print(f"{args.path}: ok (scene '{cfg.scene.name}', {cfg.sim.particles} particles)")
        return 0
    if cmd == "list-scenes":
        from .config import load_config
        from .config.model import broken_scenes, list_scenes
        cfg = load_config(args.config, scene="")      # the folder, whichever scene the file starts
        for name in list_scenes(cfg):
            print(name)
        for name, why in sorted(broken_scenes(cfg).items()):
            print(f"warning: scene '{name}' cannot be used: {why}", file=sys.stderr)
        return 0
    if cmd == "list-audio-devices":
        from .audio.output import AudioUnavailable, list_devices
        try:
            print(list_devices())
        except AudioUnavailable as exc:
            raise UsageError(str(exc)) from None
        return 0
    if cmd == "test-tone":
        from .audio.output import test_tone
        from .config import load_config
        cfg = load_config(args.config, sets=args.sets)
        from .audio.output import AudioUnavailable
        try:
            print(test_tone(cfg.audio, args.seconds))
        except AudioUnavailable as exc:
            raise UsageError(str(exc)) from None
        return 0
    raise UsageError(f"unknown command {cmd!r}")


def main(argv: list[str] | None = None) -> int:
    # OpenMP's default is to spin between parallel regions: on a loaded 2-core machine every
    # kernel then stalls ~10 ms waiting for a spinning thread's time slice. Passive costs ~10 µs.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = sys.argv[1:] if argv is None else argv
    commands = {"run", "replay", "crowd", "analyze", "bench", "check-config", "list-scenes",
                "list-audio-devices", "test-tone", "-h", "--help"}
    if not argv or argv[0] not in commands:
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    cmd = args.command or "run"
    before = None
    if cmd == "run":
        # before anything slow: SIGTERM from systemd or Ctrl-C in the first second of a start
        # used to end it with no summary and no recording (exit 143, or 0 in silence)
        from .stop import StopFlag
        args.stop = StopFlag(starting=True)
        args.stop.install_signals()
    if cmd == "analyze":
        # hours of replay: SIGTERM and SIGHUP (a closed ssh session) interrupt it as Ctrl-C does
        import signal
        for name in ("SIGTERM", "SIGHUP"):
            # (unless `nohup` set it aside: then the analysis is meant to outlive the terminal)
            if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:
                signal.signal(getattr(signal, name), signal.default_int_handler)
        before = _files_in(args.out)
    try:
        rc = _dispatch(args) or 0
        if cmd == "run":
            args.stop.done()    # its end is written: a late second tap must not change the status
        return rc
    except (ConfigError, UsageError, *_user_errors()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # `run` and `crowd` end on a signal as at their end (the contract); any other command
        # stopped before its end is not done: say so, and not with status 0
        if cmd in ("run", "crowd"):
            return 0
        if cmd == "analyze":
            written = set(_files_in(args.out).items()) - set(before.items())
            what = (f"the analysis in {args.out} is incomplete ({len(written)} files written)" if written
                    else "nothing written")
            print(f"analyze interrupted: {what}", file=sys.stderr)
        else:
            print(f"{cmd} interrupted", file=sys.stderr)
        return 1
    except MissingLibrary as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _files_in(folder) -> dict[str, int]:
    """The files in `folder` and their modification times (none if it is not there)."""
    try:
        return {e.name: e.stat().st_mtime_ns for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return {}


def _user_errors():
    from .app import UserError
    from .outputs import OutputPathError
    from .session.errors import SessionError
    return (UserError, OutputPathError, SessionError)


class MissingLibrary(Exception):
    """A system library is missing: the message names what to install."""
