"""Synthetic probes as DBOS scheduled workflows: one schedule per portal with a probe.

A portal's probe (`PUT /v1/portals/{name}/probe`) is a DBOS schedule named
`portwright-probe-<portal>` whose workflow (`portwright.probe`) runs the live adapter
version's `probe` once per tick (`Rollouts.probe`). The schedule is written when the probe
is configured and again by every worker as it starts (an upsert of the same definition);
a disabled or removed probe's schedule is deleted. DBOS's scheduler runs in every process
and names each firing's workflow `sched-<schedule>-<tick time>`: the first process to
enqueue a tick inserts its row, the others find it there, so each tick runs once whichever
worker takes it (from the `portwright-probes` queue, which an API-only process does not
serve), and a crashed run resumes rather than repeats.

`every_s` becomes a cron step that divides the minute, the hour or the day (rounded down),
so ticks stay evenly spaced: 45 s runs every 30 s, 90 s every minute, 5 h every 4 hours.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from dbos import DBOS

from portwright.orchestrator._workflow import current_runtime

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = [
    "PROBE_QUEUE",
    "PROBE_SCHEDULE_PREFIX",
    "PROBE_WORKFLOW",
    "apply_probe_schedule",
    "apply_probe_schedules",
    "probe_cron",
    "probe_schedule_name",
    "probe_workflow",
    "register_probe_queue",
]

log = structlog.get_logger("portwright.probes")

PROBE_WORKFLOW = "portwright.probe"
PROBE_QUEUE = "portwright-probes"  # workers listen to it; an API-only process does not
PROBE_SCHEDULE_PREFIX = "portwright-probe-"
_SECOND_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_MINUTE_STEPS = _SECOND_STEPS
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)


def probe_schedule_name(portal: str) -> str:
    return f"{PROBE_SCHEDULE_PREFIX}{portal}"


def _step(value: float, steps: tuple[int, ...]) -> int:
    return max([s for s in steps if s <= max(1, int(value))] or [1])


def probe_cron(every_s: float) -> str:
    """A six-field cron (seconds first) whose ticks are about `every_s` apart, never more."""
    if every_s < 60:
        return f"*/{_step(every_s, _SECOND_STEPS)} * * * * *"
    if every_s < 3600:
        return f"0 */{_step(every_s / 60, _MINUTE_STEPS)} * * * *"
    if every_s < 86400:
        return f"0 0 */{_step(every_s / 3600, _HOUR_STEPS)} * * *"
    return "0 0 0 * * *"


def apply_probe_schedule(portal: str, *, every_s: float, enabled: bool) -> None:
    """Write (or, disabled, delete) one portal's probe schedule. Off any workflow."""
    name = probe_schedule_name(portal)
    if not enabled:
        DBOS.delete_schedule(name)
        return
    DBOS.apply_schedules(
        [
            {
                "schedule_name": name,
                "workflow_fn": probe_workflow,
                "schedule": probe_cron(every_s),
                "context": portal,
                "queue_name": PROBE_QUEUE,
            }
        ]
    )


def register_probe_queue() -> None:
    """The queue the probe ticks run on (declared by every process: a schedule names it)."""
    DBOS.register_queue(PROBE_QUEUE, worker_concurrency=4, on_conflict="always_update")


def apply_probe_schedules(runtime: Runtime) -> None:
    """Every configured probe's schedule, as a worker starts; a schedule whose probe was
    removed or disabled is deleted."""
    configured = {p.portal: p for p in runtime.store.rollouts.probes()}
    for probe in configured.values():
        apply_probe_schedule(probe.portal, every_s=probe.every_s, enabled=probe.enabled)
    for schedule in DBOS.list_schedules(schedule_name_prefix=PROBE_SCHEDULE_PREFIX):
        portal = schedule["schedule_name"].removeprefix(PROBE_SCHEDULE_PREFIX)
        if portal not in configured:
            DBOS.delete_schedule(schedule["schedule_name"])


@DBOS.workflow(name=PROBE_WORKFLOW)
async def probe_workflow(scheduled_at: datetime, context: Any = None) -> None:
    """One tick of a portal's probe (`context` is the portal): the probe, the portal's
    health, its escalation and the probe's record, as one checkpointed step."""
    await DBOS.run_step_async(
        {"name": "probe"}, current_runtime().rollouts.scheduled_probe, str(context)
    )
