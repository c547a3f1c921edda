"""`/v1/scrape` and `/v1/batch` (scenario 2): guarded URLs, credits by engine tier,
sync (wait up to a timeout) or async (a job id at once); the tenant's scrape settings.

Credits: the requested tier's price is reserved and the usage recorded as
pending; the store prices it at the tier that served once the job ends. robots.txt
is respected unless the tenant turned it off (`PUT /v1/settings/scrape`); the
setting is the latest audited change of it, so its history is the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from portwright._ids import new_id
from portwright.client.models import (
    BatchRequest,
    BatchResponse,
    ErrorBody,
    FieldProblem,
    Job,
    ScrapeRequest,
    ScrapeSettings,
)
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._plans import PENDING_TIER, TIER_CREDITS, plan_of, tier_of
from portwright.gateway._principal import Principal, current_principal
from portwright.gateway.idempotency import idempotent_id, idempotent_ids
from portwright.gateway.routes._views import answer_json, job_views_json, linked_job_view
from portwright.resilience import Backoff
from portwright.store import JobRecord

__all__ = ["scrape_router", "scrape_settings", "submit_scrape"]

SCRAPE_ADAPTER = "scrape"
Caller = Annotated[Principal, Depends(current_principal)]
ENDED = frozenset({"succeeded", "failed", "cancelled"})
SETTINGS_ACTION = "tenant.scrape_settings"


def _engines(ctx: GatewayContext) -> tuple[str, ...]:
    adapter = ctx.service.rt.registry.get(SCRAPE_ADAPTER)
    return tuple(getattr(adapter, "engines", ("auto", "http")))


def _job_input(
    request: ScrapeRequest, batch_id: str | None, settings: ScrapeSettings
) -> dict[str, Any]:
    data = request.model_dump(mode="json", exclude={"mode", "timeout_s"})
    data["batch_id"] = batch_id
    data["respect_robots"] = settings.respect_robots
    return data


async def _check_webhook(
    ctx: GatewayContext, tenant_id: str, field: str, url: str, known: dict[str, bool]
) -> None:
    """The SSRF guard, then: the URL must be one of the tenant's webhook endpoints, whose
    secret signs what is sent there (422 naming the field otherwise). `known` caches the
    answer per URL for one request (a batch names the same one many times)."""
    if url in known:
        return
    await ctx.check_url(field, url)
    endpoints = await asyncio.to_thread(ctx.store.endpoints.search, tenant_id=tenant_id)
    if not any(e.url == url and e.kind == "webhook" and e.enabled for e in endpoints):
        problem = (
            "no enabled webhook endpoint of yours has this URL; add it first "
            "(POST /v1/webhook-endpoints): its secret signs the results sent there"
        )
        raise ApiError(
            422,
            "webhook_unregistered",
            f"{field}: {problem}",
            fields=[FieldProblem(field=field, problem=problem)],
        )
    known[url] = True


async def _check(
    ctx: GatewayContext,
    request: ScrapeRequest,
    where: str,
    tenant_id: str,
    known: dict[str, bool] | None = None,
    engines: tuple[str, ...] | None = None,
) -> None:
    """422 naming the field when `request` may not be scraped: its engine not available
    (`engines`: `_engines(ctx)`, asked once per batch), its URL refused by the SSRF guard,
    its webhook not the tenant's."""
    engines = _engines(ctx) if engines is None else engines
    if request.engine not in engines:
        problem = (
            f"engine {request.engine!r} is not available here (available: {', '.join(engines)})"
        )
        raise ApiError(
            422,
            "engine_unavailable",
            f"{where}engine: {problem}",
            fields=[FieldProblem(field=f"{where}engine", problem=problem)],
        )
    await ctx.check_url(f"{where}url", request.url)
    if request.webhook:
        await _check_webhook(
            ctx, tenant_id, f"{where}webhook", request.webhook, {} if known is None else known
        )


async def submit_scrape(
    ctx: GatewayContext,
    caller: Principal,
    request: ScrapeRequest,
    *,
    priority: int = 0,
    batch_id: str | None = None,
    job_id: str | None = None,
) -> JobRecord:
    """Guard, price and submit one scrape job (`job_id`: see `GatewayContext.submit_metered`)."""
    await _check(ctx, request, "", caller.tenant_id)
    settings = await scrape_settings(ctx, caller.tenant_id)
    return await ctx.submit_metered(
        caller,
        adapter=SCRAPE_ADAPTER,
        job_input=_job_input(request, batch_id, settings),
        credits=TIER_CREDITS[tier_of(request.engine)],
        tier=PENDING_TIER,
        priority=priority,
        job_id=job_id,
    )


SYNC_POLL = Backoff(0.02, 0.25, factor=1.5)  # a sync scrape looks again sooner at first


async def _wait(ctx: GatewayContext, job: JobRecord, tenant_id: str, wait_s: float) -> JobRecord:
    deadline = time.monotonic() + wait_s
    looks = 0
    while job.status not in ENDED and time.monotonic() < deadline:
        looks += 1
        delay = SYNC_POLL.delay(looks)
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        job = await ctx.service.get(job.id, tenant_id=tenant_id)
    return job


def scrape_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(tags=["scraping"], dependencies=SECURED)
    quota: dict[int | str, dict[str, Any]] = {
        402: {"model": ErrorBody, "description": "out of credits or over the plan"}
    }

    @router.post(
        "/v1/scrape",
        response_model=Job,
        status_code=202,
        responses={
            **ERROR_RESPONSES,
            **quota,
            200: {"model": Job, "description": "sync mode: the finished job with its output"},
        },
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Scrape one URL",
    )
    async def scrape(body: ScrapeRequest, caller: Caller) -> JSONResponse:
        """Async: 202 with the job at once. Sync: 200 with the finished job, or 202 with the
        job if it did not finish within `timeout_s`."""
        job = await submit_scrape(ctx, caller, body)
        status = 202
        if body.mode == "sync":
            job = await _wait(ctx, job, caller.tenant_id, body.timeout_s)
            status = 200 if job.status in ENDED else 202
        return JSONResponse(
            (await linked_job_view(ctx.service, job)).model_dump(mode="json"),
            status_code=status,
            headers={"location": f"/v1/jobs/{job.id}"},
        )

    @router.post(
        "/v1/batch",
        response_model=BatchResponse,
        status_code=202,
        responses={**ERROR_RESPONSES, **quota},
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Scrape many URLs",
    )
    async def batch(body: BatchRequest, caller: Caller, request: Request) -> Response:
        """Every item is checked first (422 names the item), then all become jobs at once:
        one quota reservation, one transaction for the jobs and their usage records. Under
        an Idempotency-Key the batch and its items are named from the claim, so a retry
        after the gateway died between accepting them and storing its answer gets the same
        items back (metered once) instead of a second set."""
        plan = plan_of(caller.plan)
        if len(body.items) > plan.batch_size:
            raise ApiError(
                402,
                "plan_limit",
                f"items: {len(body.items)} exceed the {plan.name} plan's batch size "
                f"of {plan.batch_size}",
            )
        known: dict[str, bool] = {}
        engines = _engines(ctx)
        for index, item in enumerate(body.items):
            await _check(ctx, item, f"items.{index}.", caller.tenant_id, known, engines)
        if body.webhook:
            await _check_webhook(ctx, caller.tenant_id, "webhook", body.webhook, known)
        batch_id = idempotent_id(request, "bat") or new_id("bat")
        job_ids = idempotent_ids(request, "job", len(body.items))
        settings = await scrape_settings(ctx, caller.tenant_id)
        items = [
            item.model_copy(update={"webhook": body.webhook})
            if body.webhook and not item.webhook
            else item
            for item in body.items
        ]
        # counted as its items end: one event when the last one does (a retried claim's
        # first attempt may have made it already)
        created = bool(body.webhook) and (
            job_ids is None
            or await asyncio.to_thread(ctx.store.batches.get, batch_id, tenant_id=caller.tenant_id)
            is None
        )
        if created:
            await asyncio.to_thread(
                ctx.store.batches.create,
                batch_id,
                tenant_id=caller.tenant_id,
                total=len(items),
                webhook=body.webhook,
            )
        registry = ctx.service.rt.registry

        def body_of(records: list[JobRecord]) -> bytes:
            # `BatchResponse(batch_id, jobs=[job_view(j) …]).model_dump(mode="json")`, built
            # without a model per job (tests/gateway/test_batch_views.py holds them equal)
            return answer_json({"batch_id": batch_id, "jobs": job_views_json(records, registry)})

        # The 202's body is drafted on the loop while the acceptance's thread waits for the
        # database to write the jobs (their records are known before: `insert_many`'s
        # `on_records`), and sent only once they are committed
        loop = asyncio.get_running_loop()
        drafted: list[tuple[list[JobRecord], bytes]] = []

        def draft_now(records: list[JobRecord]) -> None:
            with contextlib.suppress(Exception):  # drafted again below, raising there
                drafted[:] = [(records, body_of(records))]

        def draft(records: list[JobRecord]) -> None:  # in the acceptance's thread
            loop.call_soon_threadsafe(draft_now, records)

        try:
            jobs = await ctx.submit_metered_many(
                caller,
                adapter=SCRAPE_ADAPTER,
                inputs=[_job_input(item, batch_id, settings) for item in items],
                credits=[TIER_CREDITS[tier_of(item.engine)] for item in items],
                tier=PENDING_TIER,
                job_ids=job_ids,
                same=lambda job: (job.input or {}).get("batch_id") == batch_id,
                early=draft,
            )
        except BaseException:
            if created:
                await asyncio.to_thread(ctx.store.batches.discard, batch_id)
            raise
        # the draft of the jobs accepted (those a retried claim found: drafted now); the
        # callback that drafted them ran before this line (the loop runs callbacks in order)
        answer = next((text for records, text in drafted if records is jobs), None)
        return Response(
            body_of(jobs) if answer is None else answer,
            status_code=202,
            media_type="application/json",
        )

    @router.get(
        "/v1/settings/scrape",
        response_model=ScrapeSettings,
        responses=ERROR_RESPONSES,
        summary="Your scrape settings",
    )
    async def get_settings(caller: Caller) -> ScrapeSettings:
        """Whether your scrapes respect robots.txt (on unless you turned it off)."""
        return await scrape_settings(ctx, caller.tenant_id)

    @router.put(
        "/v1/settings/scrape",
        response_model=ScrapeSettings,
        responses=ERROR_RESPONSES,
        summary="Change your scrape settings",
    )
    async def put_settings(body: ScrapeSettings, caller: Caller) -> ScrapeSettings:
        """Applies to scrapes submitted from now on; the change is audited."""
        before = await scrape_settings(ctx, caller.tenant_id)
        await asyncio.to_thread(
            ctx.store.audit.record,
            actor=actor_of(caller),
            action=SETTINGS_ACTION,
            target_type="tenant-settings",
            target_id=_settings_target(caller.tenant_id),
            before=before.model_dump(mode="json"),
            after=body.model_dump(mode="json"),
            tenant_id=caller.tenant_id,
        )
        return body

    return router


def _settings_target(tenant_id: str) -> str:
    return f"{tenant_id}/scrape"


async def scrape_settings(ctx: GatewayContext, tenant_id: str) -> ScrapeSettings:
    """The tenant's scrape settings: the latest audited change, else the defaults."""
    rows = await asyncio.to_thread(
        ctx.store.audit.search, target_id=_settings_target(tenant_id), limit=1
    )
    if rows and rows[0].action == SETTINGS_ACTION and rows[0].tenant_id == tenant_id:
        return ScrapeSettings.model_validate(rows[0].after or {})
    return ScrapeSettings()
