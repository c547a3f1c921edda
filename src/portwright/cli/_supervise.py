"""The worker's main loop: wait for a signal, watch the runtime, and say why it ends.

A worker exits for a reason it writes down first, as one JSON line on stderr (whatever the
log format): a signal, a runtime that could not start, or a heartbeat thread that died (a
worker that cannot heartbeat is soon taken for dead and its jobs run elsewhere, so it stops
rather than run them twice). A thread that dies of an exception is logged the same way.
A database outage is not a reason: the runtime's loops ride it out (see Janitor).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portwright.orchestrator import Runtime

__all__ = [
    "StopSignals",
    "catch_stop_signals",
    "log_exit",
    "log_thread_crashes",
    "run_until_stopped",
]

CHECK_EVERY_S = 1.0


def _line(event: str, level: str, **fields: Any) -> None:
    record = {
        "event": event,
        "level": level,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pid": os.getpid(),
        **fields,
    }
    try:
        sys.stderr.write(json.dumps(record, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nothing left to tell
        pass


def log_exit(reason: str, *, code: int, **fields: Any) -> None:
    """The one line a worker writes before it exits: why, and with which exit code."""
    _line("worker exiting", "info" if code == 0 else "error", reason=reason, code=code, **fields)


def log_thread_crashes() -> None:
    """Log any thread's uncaught exception as one JSON line (the default prints a bare
    traceback that log shippers split into lines without the thread's name)."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        _line(
            "thread died",
            "error",
            thread=args.thread.name if args.thread else None,
            error=f"{args.exc_type.__name__}: {args.exc_value}",
        )
        previous(args)

    threading.excepthook = hook


class StopSignals:
    """SIGINT/SIGTERM caught from the moment a worker process begins: a signal that arrives
    while the runtime starts (DBOS may already be running a recovered or queued job's step)
    asks for the same orderly stop as one that arrives later, instead of killing the process
    with the default action (exit -15, the step cut off without the drain). A second signal
    takes the default action at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: list[str] = []

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.received:
            # a second signal means now (a start that hangs, a drain not to wait for): the
            # default action, as if no handler had been installed
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        self.received.append(signal.Signals(signum).name)
        self.event.set()


def catch_stop_signals() -> StopSignals:
    """Install the stop handlers now; call it before starting the runtime."""
    stop = StopSignals()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop._on_signal)
    return stop


def run_until_stopped(
    runtime: Runtime, *, stop: StopSignals | None = None, check_every_s: float = CHECK_EVERY_S
) -> str:
    """Block until SIGINT/SIGTERM or a fatal runtime condition; return the reason. `stop`
    is what `catch_stop_signals` installed before the runtime started (a signal already
    received returns at once); without it the handlers are installed now."""
    stop = stop if stop is not None else catch_stop_signals()
    while not stop.event.wait(check_every_s):
        janitor = runtime.janitor
        if janitor is not None and not janitor.alive:
            return "the heartbeat thread died: stopping before other workers take this one's jobs"
    return f"received {stop.received[0]}" if stop.received else "stopped"
