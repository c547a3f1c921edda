"""Demo scenario 3: one customer order fans out to directory submissions, then the report.

A customer's business profile goes to the first `plan` directories of the
sandbox's master list (chaos on: some directories are flaky, some down, some
gone, some already list the business). Staff see per-item progress; the
summary is the job's report: every directory accounted for, none listed
twice, and the reasons for the ones that failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from portwright.cli.scenarios import Progress, ScenarioResult

__all__ = ["PROFILE", "run"]

PROFILE: dict[str, Any] = {
    "name": "Harbour Lights Bakery",
    "address": {"street": "12 Quay St", "city": "Bristol", "postcode": "BS1 4DJ", "country": "UK"},
    "phone": "+44 117 496 0123",
    "website": "https://harbour-lights.example",
    "category": "bakery",
    "hours": "Mon-Sat 07:00-17:00",
    "tagline": "Bread at dawn",
}
ENDED = ("succeeded", "failed", "cancelled")


async def run(stack: Any, world: Any, progress: Progress, *, plan: int = 50,
              timeout_s: float = 180.0) -> ScenarioResult:  # fmt: skip
    from portwright.reports import build_report

    service = stack.service
    store = service.store
    tenant = store.tenants.ensure("harbour-lights")
    job = await service.submit(
        tenant_id=tenant.id,
        adapter="directory-submission",
        input={"profile": PROFILE, "plan": plan, "poll_s": 0.5,
               "directories_url": world.url("directories")},
    )  # fmt: skip
    progress(f"directories: one order for {plan} directories submitted as job {job.id}")
    deadline = time.monotonic() + timeout_s
    last = ""
    parent = await service.get(job.id)
    while time.monotonic() < deadline:
        parent = await service.get(job.id)
        items = store.jobs.children(job.id)
        seen = Counter(item.status for item in items)
        line = " · ".join(f"{status} {n}" for status, n in sorted(seen.items()))
        if line != last:
            progress(f"directories: {len(items)}/{plan} items — {line}")
            last = line
        if parent.status in ENDED:
            break
        await asyncio.sleep(1.0)
    report = build_report(store, job.id)
    ledger = world.ledger("directories")
    doubles = ledger.duplicates("listing")
    counts = report.counts
    took = report.time_to_complete_s
    lines = [
        f"order {job.id} ({parent.state}): {counts.get('total', 0)}/{plan} directories accounted "
        f"for — {counts.get('succeeded', 0)} listed, {counts.get('failed', 0)} failed, "
        f"{report.retries} retries" + (f", {took:.1f}s" if took is not None else ""),
        f"directory ledgers: {len(ledger.entries('listing'))} listings, "
        f"{len(doubles)} listed twice",
    ]
    for reason, n in list(report.failure_reasons.items())[:4]:
        lines.append(f"  {n} x {reason}")
    where = f"--data-dir {stack.settings.data_dir}"
    if stack.settings.database_url:  # not printed: it may carry a password
        where += " --database-url URL"
    lines.append(f"report: portwright jobs report {job.id} --format html {where}")
    ok = parent.status in ENDED and counts.get("total") == plan and not doubles
    return ScenarioResult("directories", ok, lines)
