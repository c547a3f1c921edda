"""The directories app's plan limit (entry point `portwright.plan_limits: directories`):
how many directories one job may name, per plan. The gateway refuses a job over it with
402 `plan_limit` before taking any quota."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portwright.gateway import PlanLimit

__all__ = ["DIRECTORIES_PER_JOB", "LIMIT"]

DIRECTORIES_PER_JOB: Mapping[str, int] = {
    "starter": 50,
    "growth": 100,
    "business": 300,
    "enterprise": 500,
}


def _directories(job_input: Mapping[str, Any]) -> int | None:
    named = job_input.get("directories")
    return len(named) if isinstance(named, list) else None


LIMIT = PlanLimit(
    field="input.directories",
    unit="directories",
    per_plan=DIRECTORIES_PER_JOB,
    measure=_directories,
)
