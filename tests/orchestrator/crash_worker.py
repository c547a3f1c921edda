"""A worker process for crash tests: the real Runtime, sandbox credentials, settings from env.

Run as `python -m tests.orchestrator.crash_worker`; it runs jobs until killed.
"""

from __future__ import annotations

import signal
import sys
import threading

from portwright.adapters import default_registry
from portwright.observability import configure_logging
from portwright.orchestrator import Runtime
from portwright.resources import StaticSecrets
from portwright.settings import Settings


def main() -> int:
    settings = Settings()
    configure_logging(settings)
    secrets = StaticSecrets({f"user{i}@example.test": f"pw-{i}" for i in range(1, 201)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(settings, default_registry(), secrets=secrets) as runtime:
        print(f"worker {runtime.executor_id} ready", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
