"""A worker process with every version of the rollout tests' `site` adapter installed.

Run as `python -m tests.rollouts.version_worker`; it runs jobs until killed.
"""

from __future__ import annotations

import signal
import sys
import threading

from portwright.adapters import AdapterRegistry
from portwright.observability import configure_logging
from portwright.orchestrator import Runtime
from portwright.settings import Settings
from tests.rollouts._adapters import SiteV1, SiteV2, SiteV3


def main() -> int:
    settings = Settings()
    configure_logging(settings)
    registry = AdapterRegistry()
    for adapter in (SiteV1, SiteV2, SiteV3):
        registry.register(adapter)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(settings, registry) as runtime:
        print(f"worker {runtime.executor_id} ready", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
