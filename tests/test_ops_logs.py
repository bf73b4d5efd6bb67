"""Logging: one line per event, a size-capped rotating file, a rate-limited helper."""
from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from installation.config import ConfigError
from installation.ops.logs import RateLimitedLog, close_logging, log_file_paths, setup_logging
from installation.ops.settings import LogSettings

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) installation")


@pytest.fixture
def teardown():
    yield
    close_logging()


def test_rotation_caps_the_size(tmp_path, teardown):
    settings = LogSettings(file=str(tmp_path / "logs" / "mosaic.log"), max_mb=0.1, keep=3)
    log = setup_logging(settings, stream=io.StringIO())
    cap = int(0.1 * 1024 * 1024)
    child = logging.getLogger("installation.test")
    for i in range(6000):  # about 1 MB: ten times one file
        child.info("event %05d %s", i, "x" * 120)
    for h in log.handlers:
        h.flush()
    files = sorted((tmp_path / "logs").iterdir())
    assert [f.name for f in files] == ["mosaic.log", "mosaic.log.1", "mosaic.log.2", "mosaic.log.3"]
    assert all(f.stat().st_size <= cap for f in files)
    assert sum(f.stat().st_size for f in files) <= 4 * cap
    assert "event 05999" in files[0].read_text()  # the newest lines are in the live file
    assert log_file_paths(settings) == [str(f) for f in files]


def test_one_line_per_event_even_with_a_traceback(tmp_path, teardown):
    console = io.StringIO()
    setup_logging(LogSettings(file=str(tmp_path / "m.log"), level="debug"), stream=console)
    log = logging.getLogger("installation.test")
    log.warning("two\nlines")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    for text in (console.getvalue(), (tmp_path / "m.log").read_text()):
        lines = text.splitlines()
        assert len(lines) == 2 and all(LINE.match(x) for x in lines)
        assert "two | lines" in lines[0]
        assert "Traceback" in lines[1] and "ValueError: boom" in lines[1]


def test_level_and_repeat_setup_do_not_double_lines(teardown):
    console = io.StringIO()
    setup_logging(LogSettings(level="warning"), stream=console)
    setup_logging(LogSettings(level="warning"), stream=console)
    log = logging.getLogger("installation.test")
    log.info("hidden")
    log.warning("shown")
    assert console.getvalue().count("shown") == 1 and "hidden" not in console.getvalue()


def test_unwritable_log_file_is_a_config_error(tmp_path, teardown):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"\[log\] file"):
        setup_logging(LogSettings(file=str(blocker / "m.log")), stream=io.StringIO())


def test_close_logging_restores_propagation(teardown):
    setup_logging(LogSettings(), stream=io.StringIO())
    close_logging()
    assert logging.getLogger("installation").propagate


def test_rate_limited_log_once_a_second_per_kind(caplog):
    now = [100.0]
    rl = RateLimitedLog("installation.test.rl", interval_s=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="installation.test.rl"):
        written = [rl.warning("bad-packet", "bad packet %d", i) for i in range(5)]
        assert rl.warning("nan", "NaN from %s", "a") is True  # another kind is not held back
        now[0] += 0.999
        assert rl.warning("bad-packet", "bad packet %d", 5) is False
        now[0] += 0.002
        assert rl.warning("bad-packet", "bad packet %d", 6) is True
    assert written == [True, False, False, False, False]
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["bad packet 0", "NaN from a", "bad packet 6 (+5 more like this since the last line)"]
    assert rl.held("bad-packet") == 0


_FULL_LOG_SCRIPT = r"""
import logging, resource, sys
sys.path.insert(0, sys.argv[1])
from installation.ops.logs import setup_logging
from installation.ops.settings import LogSettings
path = sys.argv[2]
log = setup_logging(LogSettings(file=path, max_mb=10))
child = logging.getLogger("installation.test")
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, hard))     # the "disk" fills at 3000 bytes
for i in range(200):
    child.info("event %03d %s", i, "x" * 60)
handler = [h for h in log.handlers if hasattr(h, "baseFilename")][0]
print("during", handler.write_errors, handler.lost, handler.streaks, flush=True)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))     # space again
child.warning("after the full disk")
print("after", handler.write_errors, handler.lost, handler.streaks, flush=True)
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, hard))     # and full again: a second streak
child.info("lost again %s", "y" * 4000)
print("again", handler.write_errors, handler.lost, handler.streaks, flush=True)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE to make the disk 'full'")
def test_a_full_disk_costs_one_console_line_per_streak_not_a_traceback_per_record(tmp_path):
    """A log file on a full disk used to print a ~22-line "--- Logging error ---" traceback
    for every record. Now: counted, one line per failure streak, and the first line that gets
    into the file again says how many are missing above it."""
    path = tmp_path / "mosaic.log"
    r = subprocess.run([sys.executable, "-c", _FULL_LOG_SCRIPT, str(ROOT), str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Logging error" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    reports = [ln for ln in r.stderr.splitlines() if "cannot write the log file" in ln]
    assert len(reports) == 2, r.stderr[-3000:]               # two streaks, one line each
    assert str(path) in reports[0] and "File too large" in reports[0] and LINE.match(reports[0])
    assert sum("event" in ln for ln in r.stderr.splitlines()) == 200   # the console log goes on
    during, after, again = (ln.split() for ln in r.stdout.splitlines())
    lost = int(during[1])
    assert 150 < lost < 200 and during[2] == str(lost) and during[3] == "1"
    assert after[1:] == [str(lost), "0", "1"] and again[1:] == [str(lost + 1), "1", "2"]
    text = path.read_text()
    assert f"{lost} log lines could not be written to this file since" in text
    assert text.rstrip().endswith("after the full disk") and "Logging error" not in text
    assert all(LINE.match(x) or not x.strip() for x in text.splitlines()[-2:])
