"""The browser step: walk the board's application pages, filling what we can match.

Each pass reads the page it is on (so it continues wherever the board, a
restart or an operator left the application), fills the empty fields it can
match with confidence, and either moves on or returns the questions it is
unsure about. Fields that already hold a value are left alone: an operator who
took over the live browser may have typed them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import FilePayload, Page

from portwright.apps.jobboard._matching import FormField, match_field
from portwright.apps.jobboard._model import ApplicationInput
from portwright.engines.browser import LivePage
from portwright.intelligence import default_matcher
from portwright.sdk import (
    PageChangedError,
    PermanentError,
    StepContext,
    TransientError,
)

__all__ = ["SENT_NOTE", "apply"]

SENT_NOTE = "jobboard_submit_sent"
MAX_PAGES = 12

# Reads the current form's fields: name, kind, label, options, current value.
_READ_FORM = """
(form) => {
  const labelOf = (el) => {
    const byFor = el.id && form.querySelector(`label[for="${el.id}"]`);
    if (byFor) return byFor.innerText.trim();
    const fs = el.closest("fieldset");
    if (fs && fs.querySelector("legend")) return fs.querySelector("legend").innerText.trim();
    const wrap = el.closest("label");
    return wrap ? wrap.innerText.trim() : el.name;
  };
  const fields = {};
  for (const el of form.querySelectorAll("input, select, textarea")) {
    if (!el.name || el.type === "hidden" || el.type === "submit") continue;
    const name = el.name;
    if (el.type === "radio") {
      const f = fields[name] || (fields[name] = {name, kind: "choice", label: labelOf(el),
                                                  options: [], value: "", required: false});
      const text = el.closest("label") ? el.closest("label").innerText.trim() : el.value;
      f.options.push([el.value, text]);
      if (el.checked) f.value = el.value;
      f.required = f.required || el.required;
      continue;
    }
    let kind = "text";
    let options = [];
    let value = el.value || "";
    if (el.tagName === "SELECT") {
      kind = "choice";
      options = [...el.options].filter((o) => o.value).map((o) => [o.value, o.text.trim()]);
    } else if (el.type === "number") kind = "number";
    else if (el.type === "file") { kind = "file"; value = el.files.length ? "chosen" : ""; }
    else if (el.type === "checkbox") { kind = "checkbox"; value = el.checked ? "yes" : ""; }
    fields[name] = {name, kind, label: labelOf(el), options, value, required: el.required};
  }
  return Object.values(fields);
}
"""


async def _step_of(page: Page) -> str:
    form = await page.query_selector("form[data-step]")
    if form is not None:
        return str(await form.get_attribute("data-step"))
    if await page.query_selector("#application[data-application-id]") is not None:
        return "done"
    if await page.query_selector(".error.duplicate") is not None:
        return "duplicate"
    raise PageChangedError(
        "the job board showed a page that is neither a form step nor a confirmation",
        selector="form[data-step]", url=page.url, html=await page.content(),
    )  # fmt: skip


async def _fields(page: Page) -> list[tuple[FormField, str]]:
    form = await page.query_selector("form[data-step]")
    assert form is not None
    rows: list[dict[str, Any]] = await form.evaluate(_READ_FORM)
    return [
        (
            FormField(
                name=str(r["name"]),
                label=str(r["label"]),
                kind=str(r["kind"]),
                options=tuple((str(v), str(t)) for v, t in r["options"]),
                required=bool(r["required"]),
            ),
            str(r["value"]),
        )
        for r in rows
    ]


async def _set(page: Page, f: FormField, value: str) -> None:
    selector = f"form[data-step] [name='{f.name}']"
    if f.kind == "choice" and any(True for _ in f.options):
        radios = await page.query_selector_all(f"{selector}[type=radio]")
        if radios:
            await page.check(f"{selector}[value='{value}']")
        else:
            await page.select_option(selector, value)
    else:
        await page.fill(selector, value)


async def _submit_form(page: Page) -> None:
    async with page.expect_navigation(wait_until="domcontentloaded"):
        await page.click("form[data-step] button[type=submit]")


async def _refused(page: Page) -> None:
    """A 422 re-render names the fields it refused: a permanent problem with the input."""
    errors = await page.query_selector_all("p.error[data-field]")
    if not errors:
        return
    found = {
        str(await e.get_attribute("data-field")): (await e.inner_text()).strip() for e in errors
    }
    if set(found) == {"captcha"}:
        raise TransientError("the board refused the captcha answer")
    detail = "; ".join(f"{k}: {v}" for k, v in sorted(found.items()))
    raise PermanentError(f"the job board refused the application: {detail}", fields=found)


async def _fill(
    page: Page, data: ApplicationInput, given: dict[str, str]
) -> list[dict[str, object]]:
    """Fill the current page's empty fields; the questions we are unsure about, if any."""
    unsure: list[dict[str, object]] = []
    # the first call loads the embedding model (a second or so): not on the event loop
    matcher = await asyncio.to_thread(default_matcher)
    for f, current in await _fields(page):
        if current or f.kind in ("file", "checkbox"):
            continue
        found = match_field(f, data.applicant, given, matcher)
        if not found.confident:
            reason = found.why
            if f.name in given:
                reason = f"the answer {given[f.name]!r} was not usable: {found.why}"
            unsure.append(f.as_question(reason=reason))
            continue
        assert found.value is not None
        await _set(page, f, found.value)
    return unsure


async def _upload(page: Page, data: ApplicationInput) -> None:
    for f, current in await _fields(page):
        if f.kind == "file" and not current and f.required:
            resume = data.applicant.resume
            payload: FilePayload = {
                "name": resume.filename,
                "mimeType": resume.content_type,
                "buffer": resume.content(),
            }
            await page.set_input_files(f"form[data-step] [name='{f.name}']", files=[payload])


_READ_REVIEW = """
() => [...document.querySelectorAll("dl.review dd")].map((dd) => {
  const dt = dd.previousElementSibling;
  const label = dt && dt.tagName === "DT" ? dt.innerText.trim() : (dd.dataset.field || "");
  return [label, dd.innerText.trim()];
})
"""


async def _filled(page: Page) -> list[tuple[str, str]]:
    """The filled application as the board's review page shows it: (label, value) pairs."""
    rows: list[list[str]] = await page.evaluate(_READ_REVIEW)
    return [(str(label)[:200], str(value)[:1000]) for label, value in rows]


async def _review(sc: StepContext, page: Page) -> None:
    captcha = await page.query_selector("div.captcha[data-sitekey]")
    if captcha is not None:
        sitekey = str(await captcha.get_attribute("data-sitekey"))
        answer = await sc.solve_captcha(sitekey=sitekey, url=page.url)
        await page.fill("input[name=captcha_answer]", answer)
    for f, current in await _fields(page):
        if f.kind == "checkbox" and not current:
            await page.check(f"form[data-step] [name='{f.name}']")


@contextlib.asynccontextmanager
async def _published(sc: StepContext, page: Page, live: bool) -> AsyncIterator[LivePage | None]:
    if not live:
        yield None
        return
    async with LivePage(sc, page) as published:
        yield published


async def apply(
    sc: StepContext, raw: dict[str, Any], given: dict[str, str], stop_at_review: bool = False
) -> dict[str, Any]:
    """Walk the application to the end; or stop at the questions we cannot answer; or, with
    `stop_at_review`, at the review page with the filled values (nothing sent)."""
    data = ApplicationInput.model_validate(raw)
    sent_before = bool(await sc.recall(SENT_NOTE))
    page = await sc.browser()
    board = data.board_url.rstrip("/")
    await page.goto(f"{board}/jobs/{data.job_id}/apply", wait_until="domcontentloaded")
    async with _published(sc, page, data.live) as live:
        for _ in range(MAX_PAGES):
            if live is not None:
                await live.checkpoint()  # an operator drives: wait, then read the page again
            step = await _step_of(page)
            if step == "done":
                app_id = await page.get_attribute("#application", "data-application-id")
                return {"status": "submitted", "application_id": app_id}
            if step == "duplicate":
                app_id = await page.get_attribute(".error.duplicate", "data-application-id")
                if sent_before:
                    # Our own earlier attempt sent the form and did not live to read the answer.
                    return {
                        "status": "submitted",
                        "application_id": app_id,
                        "confirmed_by": "duplicate",
                    }
                raise PermanentError(
                    f"duplicate application: job {data.job_id} already has application "
                    f"{app_id} from {data.applicant.email}",
                    application_id=app_id,
                )
            if step == "resume":
                await _upload(page, data)
            elif step == "review":
                if stop_at_review:
                    return {"status": "review", "values": await _filled(page)}
                await _review(sc, page)
                if live is not None and await live.checkpoint():
                    continue  # the operator may have changed the page: look again
                # Noted before the click: it may land and we die before reading the answer.
                # (A 409 in answer to this very click is still someone else's application.)
                await sc.remember(SENT_NOTE, True)
            else:
                unsure = await _fill(page, data, given)
                if unsure:
                    return {"status": "needs_answers", "unsure": unsure, "page": step}
            await _submit_form(page)
            await _refused(page)
    raise PageChangedError(f"the application did not finish within {MAX_PAGES} pages", url=page.url)
