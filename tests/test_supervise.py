"""The worker's main loop: it stops when its heartbeat thread dies and says why, as one
JSON line (the signal path runs in tests/orchestrator/test_worker_outage.py)."""

from __future__ import annotations

import json
import signal
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


WORKER_SIGNALLED_WHILE_STARTING = """
import os, signal, sys
import portwright.cli._stack as stack

class Runtime:
    executor_id = "w-early"
    janitor = None
    def stop(self, drain_s):
        print(f"drained for up to {drain_s}s", flush=True)

class Vault:
    def close(self):
        pass

def start_runtime(settings):
    # DBOS may already run a queued job's step while the runtime starts: an orchestrator's
    # SIGTERM arriving now must stop the worker in order, as one arriving later does
    os.kill(os.getpid(), signal.SIGTERM)
    return Runtime(), Vault()

stack.start_runtime = start_runtime
from portwright.cli import main
sys.exit(main(["worker", "--worker-id", "w-early"]))
"""


def test_a_sigterm_while_the_runtime_starts_stops_the_worker_in_order(tmp_path: Any) -> None:
    """Seen in CI as exit -15: the handlers were installed only after the runtime started,
    so a SIGTERM during a step DBOS began at launch killed the process without the drain."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    env.update(PORTWRIGHT_DATA_DIR=str(tmp_path), PORTWRIGHT_DRAIN_TIMEOUT_S="7")
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SIGNALLED_WHILE_STARTING],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "drained for up to 7.0s" in done.stdout
    exits = [json.loads(x) for x in done.stderr.splitlines() if '"worker exiting"' in x]
    assert [(e["reason"], e["code"]) for e in exits] == [("received SIGTERM", 0)]


def test_a_second_sigterm_stops_the_worker_at_once(tmp_path: Any) -> None:
    """The first SIGTERM asks for the orderly stop; a second (a start that hangs, a drain
    nobody wants to wait for) takes the default action: no drain, exit -15."""
    import os
    import subprocess
    import sys

    twice = WORKER_SIGNALLED_WHILE_STARTING.replace(
        "    os.kill(os.getpid(), signal.SIGTERM)\n",
        "    os.kill(os.getpid(), signal.SIGTERM)\n    os.kill(os.getpid(), signal.SIGTERM)\n",
    )
    assert twice != WORKER_SIGNALLED_WHILE_STARTING
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    env.update(PORTWRIGHT_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", twice],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stderr[-2000:])
    assert "drained" not in done.stdout
