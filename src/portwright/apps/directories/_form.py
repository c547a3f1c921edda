"""One generic adapter for every directory: the directory map says what to fill where."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urljoin

import httpx
from parsel import Selector
from pydantic import BaseModel, Field

from portwright.apps.directories._profile import BusinessProfile
from portwright.resilience import Backoff
from portwright.sdk import (
    Adapter,
    ChallengeError,
    Job,
    PageChangedError,
    PermanentError,
    RetryPolicy,
    StepContext,
    TransientError,
    linear_machine,
)

__all__ = ["DirectoryFormAdapter", "ListingInput"]


class FieldMap(BaseModel):
    profile: str
    input: str
    required: bool = True


class FormStep(BaseModel):
    form: str
    action: str
    captcha: bool = False
    fields: list[FieldMap]


class DirectoryEntry(BaseModel):
    """One directory of the master list (the parts the adapter needs)."""

    slug: str
    name: str
    url_path: str
    steps: list[FormStep] = Field(min_length=1)
    success_selector: str
    duplicate_selector: str
    error_selector: str = ".error"


class ListingInput(BaseModel):
    base_url: str = Field(description="where the directories are served")
    directory: DirectoryEntry
    profile: BusinessProfile


def _form_values(page: Selector, step: FormStep, profile: BusinessProfile) -> dict[str, str]:
    form = page.css(step.form)
    if not form:
        raise PageChangedError(f"form {step.form!r} not found", selector=step.form)
    values = {
        str(i.attrib["name"]): str(i.attrib.get("value", ""))
        for i in form.css("input[type=hidden][name]")
    }
    for field in step.fields:
        value = profile.value(field.profile)
        if value is None:
            if field.required:
                raise PermanentError(
                    f"profile has no {field.profile!r} for required {field.input!r}"
                )
            continue
        values[field.input] = value
    return values


async def _post_step(
    sc: StepContext, url: str, step: FormStep, page: Selector, profile: BusinessProfile
) -> httpx.Response:
    values = _form_values(page, step, profile)
    if step.captcha:
        sitekey = page.css("div.captcha::attr(data-sitekey)").get()
        if not sitekey:
            raise PageChangedError("captcha expected but not shown", selector="div.captcha")
        try:
            values["captcha_answer"] = await sc.solve_captcha(sitekey=sitekey, url=url)
        except ChallengeError as exc:
            # For fan-out, a failing provider slows dispatch and alerts staff (the parent
            # watches for this reason) rather than parking every item with an operator.
            raise TransientError(f"captcha provider failing: {exc.message}") from exc
    return await sc.http.post(urljoin(url, step.action), data=values)


# A re-run after the final form was sent and its answer lost (a crash, a timeout) is
# confirming a listing that may exist: giving up there would report a landed listing as
# failed, so a flaky site gets this many tries per attempt instead of one.
CONFIRM_TRIES = 8


async def submit(
    sc: StepContext, base: str, entry: dict[str, Any], profile: dict[str, Any]
) -> dict[str, Any]:
    """Fill and send the directory's form(s); the outcome decides success or the error class."""
    directory = DirectoryEntry.model_validate(entry)
    business = BusinessProfile.model_validate(profile)
    url = urljoin(base, directory.url_path)
    if await sc.recall("final_form_sent"):
        await sc.remember("final_form_sent_before", True)
    tries = CONFIRM_TRIES if await sc.recall("final_form_sent_before") else 1
    for attempt in range(1, tries):  # all but the last try; its failure is the attempt's
        try:
            return await _send(sc, url, directory, business)
        except TransientError as exc:
            sc.log.warning(
                "confirming a listing that may exist; the site failed",
                directory=directory.slug, attempt=attempt, error=exc.message,
            )  # fmt: skip
            await asyncio.sleep(Backoff(0.3, 3.0).delay(attempt))
    return await _send(sc, url, directory, business)


async def _send(
    sc: StepContext, url: str, directory: DirectoryEntry, business: BusinessProfile
) -> dict[str, Any]:
    response = await sc.http.get(url)
    last = len(directory.steps) - 1
    for index, step in enumerate(directory.steps):
        _raise_for_site(response)
        page = Selector(text=response.text)
        if index and page.css(directory.error_selector):
            error = page.css(directory.error_selector + "::text").get()
            raise PermanentError(f"step {index} refused: {error}")
        if index == last:
            await sc.remember("final_form_sent", True)  # before the POST: it may land, then we die
        response = await _post_step(sc, url, step, page, business)
    _raise_for_site(response)
    done = Selector(text=response.text)
    if done.css(directory.duplicate_selector):
        if await sc.recall("final_form_sent_before"):
            # An earlier run of this step sent the final form and did not live to read the
            # answer (a crash, a timeout): the listing the directory found is ours.
            return {"listing_id": None, "directory": directory.slug, "confirmed_by": "duplicate"}
        raise PermanentError("duplicate listing: the directory already lists this business")
    listing = done.css(directory.success_selector)
    if listing:
        return {"listing_id": listing.attrib.get("data-listing-id"), "directory": directory.slug}
    error = done.css(directory.error_selector + "::text").get()
    if error:
        raise PermanentError(f"refused: {error.strip()}")
    raise PageChangedError(
        f"neither success nor a known error after submitting to {directory.slug}",
        selector=directory.success_selector, url=str(response.url), html=response.text,
    )  # fmt: skip


def _raise_for_site(response: httpx.Response) -> None:
    if response.status_code == 502 and "gone" in response.text.lower():
        raise PermanentError("site gone")
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"{response.status_code} from {response.request.url.path}")


class DirectoryFormAdapter(Adapter[ListingInput]):
    """One listing on one directory: an item of a directory-submission job."""

    name: ClassVar[str] = "directory-listing"
    version: ClassVar[str] = "1.0"
    portal: ClassVar[str | None] = "directories"
    input_model = ListingInput
    machine = linear_machine("directory-listing", ["SUBMITTING"])
    max_concurrency: ClassVar[int] = 8
    retry = RetryPolicy(max_attempts=4, base_delay_s=0.3, max_delay_s=3.0, degraded_after=4)

    def lock_key(self, data: ListingInput) -> str | None:
        # One submission of a business to a directory at a time, whichever job asks.
        return f"listing:{data.directory.slug}:{data.profile.name.lower()}:{data.profile.phone}"

    async def run(self, job: Job[ListingInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SUBMITTING", job.input.directory.slug)
        data = job.input
        return await job.step(
            "submit",
            submit,
            data.base_url,
            data.directory.model_dump(),
            data.profile.model_dump(mode="json"),
        )
