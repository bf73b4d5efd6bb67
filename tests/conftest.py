"""Shared test policy: real parts, and no silent skips in CI.

A test that needs a real part (JACK, ffmpeg, oscdump, a display driver) calls
`need(available, "what is missing and how to get it")`: on a laptop without the part it
skips; under CI (CI=true) the same condition fails, so a missing install step in .ci/run
cannot hide behind a green run.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it; see installation/cli.py
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this real part: {what}")
    pytest.skip(f"missing real part: {what}")


@pytest.fixture
def require():
    return need


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the real CLI in a subprocess (headless, no audio device)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["SDL_VIDEODRIVER"] = "dummy"
    env["SDL_AUDIODRIVER"] = "dummy"
    return env


PYTHON = sys.executable


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Under CI nothing may skip: a skip there means a missing install step in .ci/run."""
    if IN_CI and _skipped and session.exitstatus == 0:
        print(f"\nCI: {len(_skipped)} test(s) skipped, which CI does not allow: " + ", ".join(_skipped[:10]))
        session.exitstatus = 1
