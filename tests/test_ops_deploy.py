"""The systemd unit agrees with the program: restart policy, notify, and watchdog timing."""
from __future__ import annotations

import configparser
from pathlib import Path

from installation.ops.sdnotify import SdNotifier
from installation.ops.settings import WatchdogSettings
from installation.ops.watchdog import Watchdog

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "living-mosaic.service"


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string(UNIT.read_text())
    return cp


def test_restart_policy_and_notify():
    u = unit()
    assert u["Unit"]["StartLimitIntervalSec"] == "0"
    s = u["Service"]
    assert s["Type"] == "notify" and s["Restart"] == "always"
    assert 1 <= int(s["RestartSec"]) <= 10
    assert s["ExecStart"].endswith("run_installation.py run --fullscreen")
    assert s["KillSignal"] == "SIGTERM"  # the contract's clean end


def test_our_watchdog_fires_before_systemds():
    """The program's own stall exit flushes the recording; systemd's kill would not."""
    watchdog_sec = float(unit()["Service"]["WatchdogSec"])
    notifier = SdNotifier({"WATCHDOG_USEC": str(int(watchdog_sec * 1e6))})
    w = Watchdog(WatchdogSettings().stall_s, notifier=notifier)
    # After the last beat: we notice the stall at most stall_s + 2 polls later; systemd's
    # last feed was at most feed_s + 1 poll before the last beat. Our final feed at the stall
    # then covers the flush.
    ours = w.timeout_s + 2 * w.poll_s
    systemds = watchdog_sec - w.feed_s - w.poll_s
    assert 0 < ours < systemds
    assert WatchdogSettings().flush_s < watchdog_sec
