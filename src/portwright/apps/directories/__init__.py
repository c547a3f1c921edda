"""Example adapters for scenario 3: one customer job fans out to hundreds of directories.

`DirectorySubmissionAdapter` ("directory-submission") validates the business
profile (nothing is dispatched while a required field is missing). An order without
a profile takes the tenant's intake form "business-profile" (`BUSINESS_PROFILE`, filled
at `/app/intake` or with `PUT /v1/intake/business-profile`): until it is saved the order
waits in state WAITING_FOR_INTAKE and proceeds when it is. Then it loads the
master list of directories (a data file served next to the directories), and
spawns one `DirectoryFormAdapter` ("directory-listing") item per directory,
FIFO within the plan's cap. Items retry transient failures 3 times and record
permanent ones (site gone, duplicate listing) with the reason. When the
captcha (or proxy) provider fails, the parent slows dispatch (a cooldown on the
directories portal) and alerts staff (an escalation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin

from pydantic import BaseModel, Field, ValidationError, model_validator

from portwright.apps.directories._form import DirectoryFormAdapter, ListingInput
from portwright.apps.directories._profile import Address, BusinessProfile
from portwright.sdk import (
    Adapter,
    InputTimeoutError,
    IntakeForm,
    Job,
    PermanentError,
    StateMachine,
    StepContext,
)

__all__ = [
    "BUSINESS_PROFILE",
    "Address",
    "BusinessProfile",
    "DirectoryFormAdapter",
    "DirectorySubmissionAdapter",
    "ListingInput",
    "SubmissionInput",
]

PLANS = (50, 100, 300, 500)
ALERT_AFTER = 3  # provider failures within a minute that make the parent alert and slow down
WAITING_FOR_INTAKE = "WAITING_FOR_INTAKE"
BUSINESS_PROFILE = IntakeForm(
    name="business-profile",
    title="Business profile",
    model=BusinessProfile,
    description="What every directory listing is filled from. Orders without a profile "
    "wait for this form.",
)


class SubmissionInput(BaseModel):
    """A customer's order: a profile, a plan, and which directories (default: the first ones)."""

    profile: BusinessProfile | None = Field(
        None,
        description="omitted: the tenant's intake form 'business-profile'; the order waits "
        "(state WAITING_FOR_INTAKE) until it is saved",
    )
    intake_timeout_s: float = Field(
        30 * 86_400.0, gt=0, le=90 * 86_400, description="how long to wait for the intake form"
    )
    plan: Literal[50, 100, 300, 500] = Field(description="directories per job the plan allows")
    directories_url: str = Field(description="where the directories and their map are served")
    directories: list[str] | None = Field(
        None, description="directory slugs (default: the first `plan` of the master list)"
    )
    poll_s: float = Field(2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _within_plan(self) -> SubmissionInput:
        if self.directories is not None and len(self.directories) > self.plan:
            raise ValueError(
                f"directories: {len(self.directories)} requested but the plan allows {self.plan}"
            )
        return self


async def load_directories(
    sc: StepContext, base: str, wanted: list[str] | None, plan: int
) -> list[dict[str, Any]]:
    """The chosen directories' entries from the master list, in order."""
    listing = sc.check(await sc.http.get(urljoin(base, "/directories.json"))).json()
    entries = {d["slug"]: d for d in listing["directories"]}
    if wanted is None:
        return [_slim(d) for d in listing["directories"][:plan]]
    unknown = [slug for slug in wanted if slug not in entries]
    if unknown:
        raise PermanentError(f"unknown directories: {', '.join(unknown[:10])}")
    return [_slim(entries[slug]) for slug in wanted]


async def read_profile(sc: StepContext) -> dict[str, Any] | None:
    """The tenant's saved business profile, validated; None while it is not saved (or no
    longer valid)."""
    saved = await sc.intake(BUSINESS_PROFILE.name)
    if saved is None:
        return None
    try:
        return BusinessProfile.model_validate(saved).model_dump(mode="json")
    except ValidationError:
        return None


def _slim(entry: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "slug",
        "name",
        "url_path",
        "steps",
        "success_selector",
        "duplicate_selector",
        "error_selector",
    )
    return {k: entry[k] for k in keep if k in entry}


class DirectorySubmissionAdapter(Adapter[SubmissionInput]):
    name: ClassVar[str] = "directory-submission"
    version: ClassVar[str] = "1.0"
    input_model = SubmissionInput
    machine = StateMachine.build(
        "directory-submission",
        initial="INIT",
        transitions={
            "INIT": ["QUEUED"],
            "QUEUED": [WAITING_FOR_INTAKE, "LOADING"],
            WAITING_FOR_INTAKE: ["LOADING"],
            "LOADING": ["DISPATCHING"],
            "DISPATCHING": ["RUNNING"],
            "RUNNING": ["SUCCEEDED"],
            "OPERATOR_ACTION_REQUIRED": [],
            "COOLDOWN": [],
            "RETRY_WAIT": [],
        },
        terminal={"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"},
        success="SUCCEEDED",
        waiting=[WAITING_FOR_INTAKE],
    )
    max_concurrency: ClassVar[int] = 4
    inputs: ClassVar[frozenset[str]] = frozenset({"intake"})
    intake: ClassVar[IntakeForm | None] = BUSINESS_PROFILE

    async def _profile(self, job: Job[SubmissionInput]) -> dict[str, Any]:
        """The order's profile, or the tenant's intake form, waiting until it is saved."""
        if job.input.profile is not None:
            return job.input.profile.model_dump(mode="json")
        profile = await job.step("intake", read_profile)
        round_ = 0
        while profile is None:
            round_ += 1
            try:
                await job.wait_for_input(
                    "intake",
                    job.input.intake_timeout_s,
                    state=WAITING_FOR_INTAKE,
                    reason="waiting for intake: the business profile is not filled in yet "
                    "(/app/intake)",
                )
            except InputTimeoutError as exc:
                raise PermanentError(
                    "the business profile (intake form) was not filled in within "
                    f"{job.input.intake_timeout_s:.0f}s"
                ) from exc
            profile = await job.step(f"intake-{round_}", read_profile)
        return profile

    async def run(self, job: Job[SubmissionInput]) -> Mapping[str, Any]:
        data = job.input
        await job.transition("QUEUED")
        profile = await self._profile(job)
        await job.transition("LOADING")
        entries = await job.step(
            "load", load_directories, data.directories_url, data.directories, data.plan
        )
        await job.transition("DISPATCHING", f"{len(entries)} directories")
        items = [
            (
                entry["slug"],
                {"base_url": data.directories_url, "directory": entry, "profile": profile},
            )
            for entry in entries
        ]
        await job.spawn("directory-listing", items)
        await job.transition("RUNNING", f"{len(items)} items queued")
        alerted = False
        while True:
            progress = await job.progress()
            unfinished = sum(progress.get(s, 0) for s in ("queued", "running", "waiting"))
            failures = progress.get("provider_failures", 0)
            if failures >= ALERT_AFTER and not alerted:
                await job.alert(
                    "provider_failing",
                    f"{failures} items hit a failing captcha/proxy provider in the last minute; "
                    "dispatch slowed",
                    failures=failures,
                )
                alerted = True
            if unfinished == 0:
                break
            await job.sleep(data.poll_s)
        final = await job.progress()
        return {k: v for k, v in final.items() if k != "provider_failures"}
