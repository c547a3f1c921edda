"""The one DBOS workflow every job runs: load the job, drive its adapter to the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbos import DBOS

from portwright.orchestrator._driver import JobDriver

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = ["WORKFLOW_NAME", "current_runtime", "job_workflow", "set_runtime"]

WORKFLOW_NAME = "portwright.job"
_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime  # noqa: PLW0603 - DBOS is a process singleton; so is the runtime it serves
    _runtime = runtime


def current_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no Portwright runtime is running in this process")
    return _runtime


@DBOS.workflow(name=WORKFLOW_NAME)
async def job_workflow(job_id: str, snapshot: dict[str, Any] | None = None) -> str:
    """Run job `job_id`. The workflow id is the job id, so a job runs at most once at a time.

    `snapshot` is the job as enqueued (`snapshot_of`); without it (a child, or a workflow
    enqueued before it was passed) the `load` step reads it.
    """
    runtime = current_runtime()
    if snapshot is None:
        snapshot = await DBOS.run_step_async({"name": "load"}, runtime.load_snapshot, job_id)
    # The job runs the adapter version it started on, to its end (through restarts).
    name, version = snapshot["adapter"], snapshot.get("adapter_version")
    if name not in runtime.registry or (version and not runtime.registry.has(name, version)):
        await DBOS.run_step_async({"name": "orphan"}, runtime.fail_unknown_adapter, job_id)
        return "FAILED"
    driver: JobDriver = JobDriver(runtime, runtime.registry.get(name, version), snapshot)  # type: ignore[type-arg]
    return await driver.run()
