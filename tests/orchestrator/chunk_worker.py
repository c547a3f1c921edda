"""A worker process for the chunk kill test: the real Runtime with the scrape adapter behind
the allowlist from the environment (the sandbox's loopback ports). Runs until killed.

Run as `python -m tests.orchestrator.chunk_worker`.
"""

from __future__ import annotations

import signal
import sys
import threading

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.observability import configure_logging
from portwright.orchestrator import Runtime
from portwright.resources.ssrf import UrlGuard
from portwright.settings import Settings


def main() -> int:
    settings = Settings()
    configure_logging(settings)
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(settings, registry) as runtime:
        print(f"worker {runtime.executor_id} ready", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
