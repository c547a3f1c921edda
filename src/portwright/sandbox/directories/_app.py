"""The "directories" service: every directory of the data file under /d/{slug}/."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from portwright.sandbox import captcha
from portwright.sandbox._chaos import identity_of_scope
from portwright.sandbox._world import ServiceContext
from portwright.sandbox.directories._catalog import (
    DATA_FILE,
    DirectoryRecord,
    business_key,
    load_catalog,
)
from portwright.sandbox.directories._pages import form_page, listing_page, message_page

__all__ = ["build_directories"]

_FLAKY_STATUSES = (500, 502, 503, 504)


class _Site:
    """State shared by every directory: drafts of multi-step forms and accepted listings."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.records = load_catalog().by_slug()
        self.drafts: dict[str, dict[str, str]] = {}
        self.listed: dict[str, str] = {}
        self._draft_ids = itertools.count(1)

    def _hash(self, text: str) -> str:
        return hashlib.blake2b(f"{self.ctx.seed}|{text}".encode(), digest_size=8).hexdigest()

    def token(self, slug: str) -> str:
        return self._hash(f"token|{slug}")

    def outage(self, record: DirectoryRecord) -> str | None:
        overrides: Mapping[str, str] = self.ctx.options.get("outages") or {}
        forced = overrides.get(record.slug)
        if forced is not None:
            return None if forced == "up" else forced
        return record.sandbox.outage

    def fault(self, record: DirectoryRecord) -> Response | None:
        """The outage or flaky 5xx this request meets, if any. A request refused by an
        outage is written to the ledger ("outage", keyed by slug): tests wait on it."""
        outage = self.outage(record)
        if outage is not None:
            self.ctx.ledger.record("outage", record.slug, "site", outage=outage)
        if outage == "down":
            return HTMLResponse(message_page("Service unavailable", "down", "Down."), 503)
        if outage == "gone":
            page = message_page("Bad gateway", "gone", "site gone: origin unreachable")
            return HTMLResponse(page, 502)
        rate = record.sandbox.error_rate * float(self.ctx.options.get("error_scale", 1.0))
        key = f"flaky|{record.slug}"
        if self.ctx.chaos.chance(min(rate, 1.0), key):
            status = _FLAKY_STATUSES[int(self.ctx.chaos.draw(key + "|status") * 4)]
            return HTMLResponse(message_page("Server error", "fault", "Try again later."), status)
        return None

    def page(
        self,
        record: DirectoryRecord,
        step: int,
        *,
        draft: str | None = None,
        error: tuple[str, str] | None = None,
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        hidden = {"form_token": self.token(record.slug)}
        if draft is not None:
            hidden["draft"] = draft
        block = ""
        if record.steps[step].captcha:
            challenge = captcha.new_challenge(self.ctx, key=f"dir|{record.slug}")
            block = captcha.render_challenge_html(challenge)
        html = form_page(
            record, step, hidden=hidden, captcha_html=block, error=error, values=values
        )
        return HTMLResponse(html, status)

    def new_draft(self, record: DirectoryRecord, values: Mapping[str, str]) -> str:
        draft = f"{record.slug}-{next(self._draft_ids)}"
        self.drafts[draft] = {f.input: values.get(f.input, "") for f in record.steps[0].fields}
        return draft

    def refusal(
        self, record: DirectoryRecord, step: int, values: Mapping[str, str], draft: str | None
    ) -> Response | None:
        """Why step `step` cannot be accepted as posted (token, required fields, captcha)."""
        if values.get("form_token") != self.token(record.slug):
            return self.page(
                record, step, draft=draft, error=("validation", "Form expired."), status=400
            )
        spec = record.steps[step]
        if missing := [f.input for f in spec.fields if f.required and not values.get(f.input)]:
            problem = ("validation", "Missing: " + ", ".join(missing))
            return self.page(record, step, draft=draft, error=problem, values=values, status=422)
        if spec.captcha and not captcha.verify(
            self.ctx, values.get("captcha_id", ""), values.get("captcha_answer", "")
        ):
            problem = ("captcha", "The characters did not match.")
            return self.page(record, step, draft=draft, error=problem, values=values, status=400)
        return None

    def accept(self, record: DirectoryRecord, values: Mapping[str, str], actor: str) -> Response:
        name = values.get(record.input_for("name") or "", "")
        phone = values.get(record.input_for("phone") or "", "")
        key = f"{record.slug}:{business_key(name, phone)}"
        if key in self.listed:
            return HTMLResponse(
                message_page(record.name, "error duplicate", "This business is already listed."),
                409,
            )
        listing_id = "L" + self._hash(f"listing|{key}")[:12].upper()
        self.listed[key] = listing_id
        self.ctx.ledger.record(
            "listing", key, actor, directory=record.slug, listing_id=listing_id, name=name
        )
        return HTMLResponse(listing_page(record, listing_id, values))


async def _fields(request: Request) -> dict[str, str]:
    async with request.form() as form:
        return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def build_directories(ctx: ServiceContext) -> Starlette:
    """Build the service; options: error_scale (1.0), outages ({slug: down|gone|up})."""
    site = _Site(ctx)
    raw = DATA_FILE.read_bytes()

    def record_of(request: Request) -> DirectoryRecord | Response:
        record = site.records.get(str(request.path_params["slug"]))
        if record is None:
            return HTMLResponse(message_page("Not found", "error", "No such directory."), 404)
        return site.fault(record) or record

    async def show(request: Request) -> Response:
        record = record_of(request)
        if isinstance(record, Response):
            return record
        return site.page(record, 0)

    async def step_one(request: Request) -> Response:
        record = record_of(request)
        if isinstance(record, Response):
            return record
        if len(record.steps) < 2:
            return HTMLResponse(message_page("Not found", "error", "No such page."), 404)
        values = await _fields(request)
        if refused := site.refusal(record, 0, values, None):
            return refused
        return site.page(record, 1, draft=site.new_draft(record, values))

    async def submit(request: Request) -> Response:
        record = record_of(request)
        if isinstance(record, Response):
            return record
        values = await _fields(request)
        last = len(record.steps) - 1
        draft = values.get("draft") if last else None
        if draft is not None:
            if draft not in site.drafts:
                return site.page(record, 0, error=("validation", "Session expired."), status=400)
            values = site.drafts[draft] | values
        if refused := site.refusal(record, last, values, draft):
            return refused
        response = site.accept(record, values, identity_of_scope(request.scope))
        if draft is not None and response.status_code == 200:
            site.drafts.pop(draft, None)
        return response

    async def index(_: Request) -> HTMLResponse:
        items = "".join(
            f"<li><a href='{escape(r.url_path)}'>{escape(r.name)}</a></li>"
            for r in site.records.values()
        )
        return HTMLResponse(f"<!doctype html><title>Directories</title><ul>{items}</ul>")

    async def data_file(_: Request) -> Response:
        return Response(raw, media_type="application/json")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/directories.json", data_file),
            Route("/d/{slug}/", show),
            Route("/d/{slug}/step-1", step_one, methods=["POST"]),
            Route("/d/{slug}/submit", submit, methods=["POST"]),
        ]
    )
