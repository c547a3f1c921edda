"""Housekeeping as a scheduled durable job: results held in the database are moved to the
blob store, then retention purges what is due, a bounded batch per step.

`HOUSEKEEPING_SCHEDULE` is a DBOS schedule (cron every `retention.every_s`, at least a
minute), applied by every worker as it starts (the same definition: an upsert). DBOS
gives each firing a workflow id of its own, so one run happens per firing, whichever
worker takes it. Each step is checkpointed: a crashed run resumes after its last batch.
"Now" is the firing's scheduled time, the same on a recovery.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbos import DBOS

from portwright.orchestrator._workflow import current_runtime
from portwright.results import Housekeeper, PurgeReport

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = [
    "HOUSEKEEPING_SCHEDULE",
    "HOUSEKEEPING_WORKFLOW",
    "apply_housekeeping_schedule",
    "housekeeper_of",
    "housekeeping_workflow",
]

HOUSEKEEPING_WORKFLOW = "portwright.housekeeping"
HOUSEKEEPING_SCHEDULE = "portwright-housekeeping"
MAX_ROUNDS = 200  # batches per run; what is left waits for the next run
MOVE_BATCH = 200


def housekeeper_of(runtime: Runtime) -> Housekeeper:
    return Housekeeper(runtime.store, runtime.blobs, runtime.settings.retention)


def _cron(every_s: float) -> str:
    minutes = max(1, round(every_s / 60))
    return f"0 */{minutes} * * * *" if minutes < 60 else "0 0 * * * *"


def apply_housekeeping_schedule(runtime: Runtime) -> None:
    DBOS.apply_schedules(
        [
            {
                "schedule_name": HOUSEKEEPING_SCHEDULE,
                "workflow_fn": housekeeping_workflow,
                "schedule": _cron(runtime.settings.retention.every_s),
                "context": None,
            }
        ]
    )


@DBOS.workflow(name=HOUSEKEEPING_WORKFLOW)
async def housekeeping_workflow(scheduled_at: datetime, context: Any = None) -> None:
    """One run: move held results, purge in bounded batches, then one audit event."""
    keeper = housekeeper_of(current_runtime())
    now = scheduled_at.timestamp()
    moved = 0
    while True:
        count: int = await DBOS.run_step_async(
            {"name": f"move:{moved}"}, asyncio.to_thread, keeper.move_held, MOVE_BATCH
        )
        moved += count
        if count < MOVE_BATCH:
            break
    report = PurgeReport(moved=moved)
    for index in range(MAX_ROUNDS):
        done: dict[str, dict[str, int]] = await DBOS.run_step_async(
            {"name": f"purge:{index}"}, asyncio.to_thread, keeper.purge_round, now
        )
        if not done:
            break
        report.add(done)
    await DBOS.run_step_async({"name": "audit"}, asyncio.to_thread, keeper.record, report, now)
