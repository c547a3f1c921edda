"""The worker's main loop: it stops when its heartbeat thread dies and says why, as one
JSON line (the signal path runs in tests/orchestrator/test_worker_outage.py)."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from portwright.cli._supervise import log_exit, log_thread_crashes, run_until_stopped


def test_a_worker_whose_heartbeat_thread_died_stops_with_the_reason() -> None:
    """No heartbeat means other workers soon take this one's jobs: it must stop, not idle."""
    janitor = SimpleNamespace(alive=False)
    runtime: Any = SimpleNamespace(janitor=janitor)
    reason = run_until_stopped(runtime, check_every_s=0.01)
    assert "heartbeat thread died" in reason


def test_the_exit_line_is_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    log_exit("received SIGTERM", code=0, executor_id="w1")
    line = capsys.readouterr().err.strip()
    assert "\n" not in line
    record = json.loads(line)
    assert record["event"] == "worker exiting"
    assert record["reason"] == "received SIGTERM"
    assert (record["code"], record["level"], record["executor_id"]) == (0, "info", "w1")


def test_a_thread_dying_of_an_exception_is_logged_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    previous = threading.excepthook
    threading.excepthook = lambda _args: None  # pytest's own hook would fail the test
    log_thread_crashes()
    try:

        def boom() -> None:
            raise RuntimeError("the relay's loop broke")

        thread = threading.Thread(target=boom, name="relay-loop")
        thread.start()
        thread.join(timeout=10)
    finally:
        threading.excepthook = previous
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    record = json.loads(lines[0])
    assert record["event"] == "thread died"
    assert record["thread"] == "relay-loop"
    assert "the relay's loop broke" in record["error"]
