"""One release's side of the upgrade test, run with `PYTHONPATH` pointing at that release's
`src` (the previous release's from git history, or this checkout's): only APIs both releases
have are used here.

    python -m tests.deploy.upgrade_release worker   # `portwright worker`'s loop, echo adapter
    python -m tests.deploy.upgrade_release submit TENANT INPUT_JSON   # prints the job id

The worker is `portwright worker` with the test adapter `portwright.testing.EchoAdapter`
(the real command loads only installed adapters): the same runtime, the same signal
handling, and the release's own stop — a draining one (`drain_timeout_s`) where the release
has it. Settings come from the environment. It prints `release PATH` first, so the test
can check which source the process really imported.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys

import portwright
from portwright.adapters import AdapterRegistry
from portwright.orchestrator import JobService, Runtime
from portwright.settings import Settings
from portwright.testing import EchoAdapter


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    return registry


def worker() -> int:
    from portwright.cli._supervise import log_exit, run_until_stopped
    from portwright.observability import configure_logging

    settings = Settings()
    configure_logging(settings)
    runtime = Runtime(settings, _registry()).start()
    print(f"worker {runtime.executor_id} ready", flush=True)
    reason = run_until_stopped(runtime)
    code = 0 if reason.startswith("received") else 1
    if "drain_s" in inspect.signature(runtime.stop).parameters:
        runtime.stop(drain_s=settings.drain_timeout_s if code == 0 else 0.0)
    else:  # a release before the draining shutdown: it stops at once, marked stopped
        runtime.stop()
    log_exit(reason, code=code, executor_id=runtime.executor_id)
    return code


def submit(tenant: str, data: str) -> int:
    runtime = Runtime(Settings(), _registry(), run_workers=False).start()
    try:
        service = JobService(runtime)
        tenant_id = service.store.tenants.ensure(tenant).id
        job = asyncio.run(
            service.submit(tenant_id=tenant_id, adapter="echo", input=json.loads(data))
        )
        print(job.id, flush=True)
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    print(f"release {portwright.__file__}", flush=True)
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker())
    if sys.argv[1:2] == ["submit"] and len(sys.argv) == 4:
        sys.exit(submit(sys.argv[2], sys.argv[3]))
    sys.exit("usage: upgrade_release worker | submit TENANT INPUT_JSON")
