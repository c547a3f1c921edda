"""Demo scenario 4: job applications filled in a browser, with a person for the unsure field.

Three applicants of two tenants apply on the sandbox job board (profile, a
résumé upload, screening questions, a captcha on some). Two can answer every
question; the third's profile does not say how they like to work, so that run
parks at the question and waits for an operator. A scripted operator answers
through the same service call the console's "Resolve with input" makes, and
the run submits. A resubmission of a finished application is refused by the
board (409) and fails as a duplicate. The board's own ledger must show each
application once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from portwright.cli.scenarios import BrowserNeed, Progress, ScenarioResult

__all__ = ["APPLICANTS", "BROWSER", "run"]

STORY = (
    "I disagreed with my manager about shipping without load tests; I showed the numbers "
    "and we agreed to delay a week."
)
APPLICANTS: list[tuple[str, int, dict[str, Any]]] = [
    ("acme", 2, {"name": "Ada Lovelace", "email": "ada@example.com", "location": "London",
                 "answers": {"disagreed with a manager": STORY,
                             "how you like to work": "collaborative"}}),
    ("globex", 4, {"name": "Alan Turing", "email": "alan@example.com", "location": "Manchester",
                   "answers": {"disagreed with a manager": STORY,
                               "how you like to work": "Independent, with regular check-ins"}}),
    ("acme", 7, {"name": "Grace Hopper", "email": "grace@example.com", "location": "Leeds",
                 "answers": {"disagreed with a manager": STORY}}),  # unsure: working style
]  # fmt: skip
ENDED = ("succeeded", "failed", "cancelled")
OPERATOR = "op:demo-operator"
BROWSER = BrowserNeed("the jobboard scenario", whole=True)  # forms filled in a browser


def _input(board: str, job_id: int, person: dict[str, Any]) -> dict[str, Any]:
    resume = f"%PDF-1.4\n% résumé of {person['name']}\n".encode()
    return {
        "board_url": board,
        "job_id": job_id,
        "applicant": {
            "phone": "+44 20 7946 0000",
            "years_experience": 8,
            "work_authorised": True,
            "resume": {
                "filename": person["name"].split()[0].lower() + ".pdf",
                "content_b64": base64.b64encode(resume).decode(),
            },
            **person,
        },
    }


async def _answer_when_asked(service: Any, job_id: str, progress: Progress) -> str | None:
    """The scripted operator: wait for the job's escalation, answer the question it asks."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = await service.get(job_id)
        if job.status in ENDED:
            return None
        waiting = [e for e in await service.escalations(job_id=job_id) if e.status != "resolved"]
        if waiting:
            esc = waiting[0]
            label = esc.details.get("label", "?")
            progress(f"jobboard: {job_id} waits for a person: {label!r} ({esc.kind})")
            await service.decide(
                esc.id, "resume", actor=OPERATOR, value="flexible", reason="demo operator answered"
            )  # fmt: skip (audited)
            progress(f"jobboard: the operator answered {esc.details.get('field')} = flexible")
            return str(esc.details.get("field"))
        await asyncio.sleep(0.5)
    return None


async def _finished(service: Any, job_ids: list[str], timeout_s: float) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [await service.get(j) for j in job_ids]
        if all(j.status in ENDED for j in jobs) or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(0.5)


async def run(stack: Any, world: Any, progress: Progress, *,
              timeout_s: float = 150.0) -> ScenarioResult:  # fmt: skip
    service = stack.service
    store = service.store
    board = world.url("jobboard")
    submitted: list[tuple[str, str]] = []
    for tenant_name, job_id, person in APPLICANTS:
        tenant = store.tenants.ensure(tenant_name)
        job = await service.submit(
            tenant_id=tenant.id, adapter="jobboard", input=_input(board, job_id, person)
        )
        submitted.append((job.id, f"{job_id}|{person['email']}"))
        progress(f"jobboard: {person['name']} ({tenant_name}) applies for job {job_id}: {job.id}")
    # The first application sent again: its lock key queues it behind the first run, then
    # the board refuses it (409) and the job fails as a duplicate.
    tenant_name, job_id, person = APPLICANTS[0]
    again = await service.submit(
        tenant_id=store.tenants.ensure(tenant_name).id, adapter="jobboard",
        input=_input(board, job_id, person),
    )  # fmt: skip
    progress(f"jobboard: {person['name']}'s application sent again as {again.id}")
    answered = await _answer_when_asked(service, submitted[2][0], progress)
    jobs = await _finished(service, [j for j, _ in submitted], timeout_s)
    (repeat,) = await _finished(service, [again.id], 60.0)
    ledger = world.ledger("jobboard")
    lines = []
    for job, (_, key) in zip(jobs, submitted, strict=True):
        out = job.output or {}
        lines.append(f"{job.id} {key}: {job.state} {out.get('application_id') or job.reason}")
    lines.append(f"{again.id} resubmitted: {repeat.state} ({repeat.reason})")
    keys = [key for _, key in submitted]
    counts = {key: ledger.count("application", key) for key in keys}
    lines.append(
        f"board ledger: {sum(counts.values())} applications for {len(keys)} applicants, "
        f"{len(ledger.duplicates('application'))} twice; operator answered: {answered}"
    )
    entry = next((e for e in ledger.entries("application") if e.key == submitted[2][1]), None)
    ok = (
        all(j.state == "SUCCEEDED" for j in jobs)
        and all(n == 1 for n in counts.values())
        and answered == "working_style"
        and entry is not None
        and entry.data["answers"].get("working_style") == "flexible"
        and repeat.state == "FAILED"
        and "duplicate application" in (repeat.reason or "")
    )
    return ScenarioResult("jobboard", ok, lines)
