"""Scenario 4's adapter: fill a job board's multi-page application in a browser.

`JobBoardAdapter` ("jobboard") fills the profile, uploads the résumé, answers
the screening questions it can match with confidence (`CONFIDENT`) and, for
each one it cannot, escalates (kind "unsure_field") and waits durably —
hours, across worker restarts — for an operator to resolve it with the
answer (`JobService.decide(…, "resume", value=…)`, the console's "Resolve").
Then it continues the same application and submits it.

The page is published for the console's live view while a step runs (see
`portwright.engines.browser.LivePage`): an operator can watch it and take over
the keyboard and mouse; the step waits meanwhile and continues from the page
as the operator left it.

With `approval: "customer"` the job fills the application up to the board's review page,
then asks its customer (`job.ask_customer`, input "approval") to approve it as filled: the
question lists the values the review page shows; they answer "yes" or "no" in the portal or
through the API. Nothing is sent before a yes; after it the application is sent once; a no,
or no answer in time, fails the job and nothing reaches the board.

Resubmission is idempotent: the board answers a second application for the
same job and email with 409. If this job's own earlier attempt sent the final
form (a durable note written before the click), that answer means the
application went through and the job succeeds with the board's reference;
otherwise it is someone else's application, and the job fails permanently
("duplicate application").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from portwright.apps.jobboard._form import SENT_NOTE, apply
from portwright.apps.jobboard._matching import CONFIDENT, FormField, Match, match_field
from portwright.apps.jobboard._model import Applicant, ApplicationInput, ResumeFile
from portwright.sdk import (
    Adapter,
    InputTimeoutError,
    Job,
    JobError,
    PermanentError,
    RetryPolicy,
    StepContext,
    linear_machine,
)

__all__ = [
    "CONFIDENT",
    "SENT_NOTE",
    "Applicant",
    "ApplicationInput",
    "FormField",
    "JobBoardAdapter",
    "Match",
    "ResumeFile",
    "UnsureFieldError",
    "match_field",
]

MAX_ROUNDS = 6  # operator-answer rounds, plus the stop at the review page for an approval
APPROVALS = frozenset({"yes", "y", "approve", "approved", "ok"})


class UnsureFieldError(JobError):
    """No confident answer for a field: an operator answers (escalation "unsure_field")."""

    error_class = "unsure_field"


async def ask_operator(sc: StepContext, question: dict[str, Any]) -> str:
    """Always escalates; the operator's "resolve" value becomes this step's result."""
    values = [str(v) for v, _ in question.get("options", [])]
    choose = f"; choose one of: {', '.join(values)}" if values else ""
    sc.log.info("asking an operator", field=question["field"])
    raise UnsureFieldError(
        f"{question['field']}: no confident answer to {question['label']!r}{choose}",
        **question,
    )


class JobBoardAdapter(Adapter[ApplicationInput]):
    name: ClassVar[str] = "jobboard"
    version: ClassVar[str] = "1.0"
    input_model = ApplicationInput
    machine = linear_machine("jobboard", ["FILLING"])
    max_concurrency: ClassVar[int] = 4
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=5.0)
    inputs: ClassVar[frozenset[str]] = frozenset({"approval"})

    def lock_key(self, data: ApplicationInput) -> str | None:
        # One application per listing and applicant at a time, whichever job asks.
        return f"jobboard:{data.board_url}:{data.job_id}:{data.applicant.email.lower()}"

    async def run(self, job: Job[ApplicationInput]) -> Mapping[str, Any]:
        data = job.input
        await job.transition("QUEUED")
        await job.transition("FILLING", f"job {data.job_id}")
        raw = data.model_dump(mode="json")
        answers: dict[str, str] = {}
        approved = data.approval != "customer"
        for round_ in range(MAX_ROUNDS):
            result = await job.step(f"apply-{round_}", apply, raw, dict(answers), not approved)
            if result["status"] == "review":
                await self._approved(job, [(str(k), str(v)) for k, v in result["values"]])
                approved = True
                continue
            if result["status"] == "submitted":
                return {k: v for k, v in result.items() if k != "status"} | {
                    "answered_by_operator": sorted(answers)
                }
            for question in result["unsure"]:
                field = str(question["field"])
                value = await job.step(f"answer-{field}-{round_}", ask_operator, question)
                answers[field] = "" if value is None else str(value).strip()
        raise PermanentError(f"still unsure after {MAX_ROUNDS} rounds of operator answers")

    async def _approved(self, job: Job[ApplicationInput], values: list[tuple[str, str]]) -> None:
        data = job.input
        filled = "\n".join(f"{label}: {value or '—'}" for label, value in values)
        question = (
            f"Send the application for listing {data.job_id} at {data.board_url} as "
            f"{data.applicant.name} <{data.applicant.email}>? Answer yes or no.\n"
            f"As filled in:\n{filled}"
        )
        try:
            answer = await job.ask_customer(
                "approval", question, data.approval_timeout_s, kind="yes_no"
            )
        except InputTimeoutError as exc:
            raise PermanentError("the customer did not approve the application in time") from exc
        if str(answer).strip().lower() not in APPROVALS:
            raise PermanentError(f"the customer declined the application ({str(answer)[:50]!r})")
