"""`portwright demo` on a machine without Chromium, through the real command in a subprocess:
browser work is skipped in one line that says what, why and how to fix it, the rest runs, and
the run passes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# PORTWRIGHT_CHROMIUM names nothing and the search paths are emptied: no Chromium anywhere.
NO_CHROMIUM = {"PORTWRIGHT_CHROMIUM": "/nonexistent/chromium", "PORTWRIGHT_CHROMIUM_SEARCH": "none"}
CLASS_NAME = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+(?:\(|Error\b)")


def _demo(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", "demo", "--once", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def _no_internals(text: str) -> None:
    assert "Runtime(" not in text, text[-3000:]
    assert "fleet=" not in text, text[-3000:]
    assert CLASS_NAME.search(text) is None, CLASS_NAME.search(text)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_demo_without_chromium_skips_browser_work_in_one_line_and_passes(
    tmp_path: Path,
) -> None:
    """jobboard (all browser) is not run; the scrape batch leaves out its two browser sites
    and its HTTP sites all succeed; exit 0; one skip line; no class names anywhere."""
    run = _demo("--scenarios", "jobboard,scrape", "--data-dir", str(tmp_path),
                env=NO_CHROMIUM, timeout=360)  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert len(skipped) == 1, skipped
    line = skipped[0]
    assert "the jobboard scenario" in line
    assert "scrape-js, scrape-guarded" in line
    assert "no Chromium found on this machine" in line
    assert "apt-get install chromium" in line
    assert "PORTWRIGHT_CHROMIUM" in line
    _no_internals(out)
    assert "scenario jobboard" not in run.stdout  # not run, so no summary and no PROBLEM
    assert "RESULT: PROBLEM" not in run.stdout
    summary = run.stdout.split("scenario scrape\n", 1)[1]
    assert re.search(r"scrape: 80/80 succeeded", summary), summary
    assert "scrape-js" not in summary
    assert "scrape-guarded" not in summary
    assert "RESULT: ok" in summary


@pytest.mark.timeout(200)
def test_demo_with_browsers_switched_off_says_how_to_switch_them_back_on(
    tmp_path: Path,
) -> None:
    """PORTWRIGHT_CHROMIUM=none is a user's opt-out: the line says so, not "install it"."""
    run = _demo("--scenarios", "jobboard", "--data-dir", str(tmp_path),
                env={"PORTWRIGHT_CHROMIUM": "none"}, timeout=180)  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    [line] = [line for line in out.splitlines() if "skipped" in line]
    assert "the jobboard scenario" in line
    assert "browsers are switched off (PORTWRIGHT_CHROMIUM=none)" in line
    assert "unset it or set it to Chromium's path" in line
    _no_internals(out)
    assert "jobboard:" not in run.stdout  # nothing of it ran
