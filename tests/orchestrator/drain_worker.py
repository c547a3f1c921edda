"""A worker process for the drain test: the echo adapter on the real Runtime, stopped the way
`portwright worker` stops (`run_until_stopped`, then `Runtime.stop(drain_s=...)`).

Run as `python -m tests.orchestrator.drain_worker`; settings from the environment.
"""

from __future__ import annotations

import sys

from portwright.adapters import AdapterRegistry
from portwright.cli._supervise import catch_stop_signals, log_exit, run_until_stopped
from portwright.observability import configure_logging
from portwright.orchestrator import Runtime
from portwright.settings import Settings
from portwright.testing import EchoAdapter


def main() -> int:
    settings = Settings()
    configure_logging(settings)
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    # caught before the start, as `portwright worker` does: DBOS may run a queued job's step
    # while the runtime starts, and a SIGTERM then must drain, not kill (a CI rehearsal's
    # signal came before the handlers were installed after the start: exit -15, no drain)
    stop = catch_stop_signals()
    runtime = Runtime(settings, registry).start()
    print(f"worker {runtime.executor_id} ready", flush=True)
    reason = run_until_stopped(runtime, stop=stop)
    code = 0 if reason.startswith("received") else 1
    runtime.stop(drain_s=settings.drain_timeout_s if code == 0 else 0.0)
    log_exit(reason, code=code, executor_id=runtime.executor_id)
    return code


if __name__ == "__main__":
    sys.exit(main())
