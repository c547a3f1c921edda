"""More portal pages: the intake forms, reports, usage and webhook endpoints.

Who may do what: members and owners see the intake forms, the reports (and download them)
and the usage; owners save intake forms and manage webhook endpoints (their signing
secrets are the owner's to hold). Everything is scoped to the signed-in user's tenant:
another tenant's report or endpoint is a 404."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from portwright.customers._auth import Customer, need
from portwright.customers._intake import IntakeError, Intakes, flatten, form_fields, nest
from portwright.customers._render import PREFIX, page
from portwright.orchestrator import JobService
from portwright.reports import build_report, to_csv, to_html, to_json
from portwright.resources.ssrf import UrlGuard, UrlRefusedError
from portwright.settings import Settings
from portwright.store import JobNotFoundError

if TYPE_CHECKING:
    from portwright.resources.vault import Vault

__all__ = ["more_pages_router"]

Member = Annotated[Customer, Depends(need("member"))]
Owner = Annotated[Customer, Depends(need("owner"))]
REPORT_TYPES = {"csv": "text/csv", "json": "application/json", "html": "text/html"}


def more_pages_router(  # noqa: PLR0915 - one closure per page
    service: JobService, vault: Vault, settings: Settings, intakes: Intakes
) -> APIRouter:
    router = APIRouter()
    store = service.store
    guard = UrlGuard.from_allowlist(settings.url_allowlist)

    # -- intake forms (members see, owners save) ------------------------------------------

    @router.get("/intake")
    async def intake_list(request: Request, me: Member) -> Response:
        forms = intakes.forms()
        if len(forms) == 1:
            return RedirectResponse(f"{PREFIX}/intake/{next(iter(forms))}", status_code=303)
        rows = [
            (form, await intakes.saved(me.tenant_id, name) is not None)
            for name, (form, _) in forms.items()
        ]
        return page(request, "intake_list.html", me, nav="intake", rows=rows)

    def _form(name: str):  # type: ignore[no-untyped-def]
        found = intakes.form(name)
        if found is None:
            raise HTTPException(404, f"form: no intake form {name!r}")
        return found[0]

    @router.get("/intake/{name}")
    async def intake_page(request: Request, me: Member, name: str) -> Response:
        form = _form(name)
        saved = await intakes.saved(me.tenant_id, name)
        waiting = await asyncio.to_thread(_waiting_jobs, me.tenant_id, name)
        return page(
            request,
            "intake.html",
            me,
            nav="intake",
            form=form,
            fields=form_fields(form.model),
            values=flatten(saved or {}),
            errors={},
            saved=saved is not None,
            just_saved=request.query_params.get("saved", ""),
            waiting=waiting,
        )

    def _waiting_jobs(tenant_id: str, name: str) -> list[object]:
        found = intakes.form(name)
        adapters = set(found[1]) if found else set()
        rows = store.console.find_jobs(tenant_id=tenant_id, status="waiting", limit=200)
        return [r for r in rows if r.adapter in adapters and r.waiting_for == "intake"]

    @router.post("/intake/{name}")
    async def intake_save(request: Request, me: Owner, name: str) -> Response:
        form = _form(name)
        posted = await request.form()
        flat = {
            f.name: str(posted.get(f.name, ""))[:2000]
            for f in form_fields(form.model)
            if isinstance(posted.get(f.name, ""), str)
        }
        try:
            _, told = await intakes.save(me.tenant_id, name, nest(flat), actor=me.actor)
        except IntakeError as exc:
            errors: dict[str, str] = {}
            inputs = form_fields(form.model)
            for field, problem in exc.problems:
                # a group left empty (address) is each of its required inputs left empty
                group = [f.name for f in inputs if f.name.startswith(f"{field}.") and f.required]
                for input_name in group or [field]:
                    errors.setdefault(input_name, problem)
            waiting = await asyncio.to_thread(_waiting_jobs, me.tenant_id, name)
            return page(
                request,
                "intake.html",
                me,
                nav="intake",
                form=form,
                fields=form_fields(form.model),
                values=flat,
                errors=errors,
                saved=False,
                just_saved="",
                waiting=waiting,
                status_code=422,
            )
        return RedirectResponse(f"{PREFIX}/intake/{name}?saved={told}", status_code=303)

    # -- reports (members and owners) -----------------------------------------------------

    @router.get("/reports")
    async def reports(request: Request, me: Member) -> Response:
        rows = await asyncio.to_thread(store.jobs.fanout_parents, me.tenant_id)
        return page(request, "reports.html", me, nav="reports", rows=rows)

    @router.get("/reports/{job_id}.{fmt}")
    async def report_download(request: Request, me: Member, job_id: str, fmt: str) -> Response:
        if fmt not in REPORT_TYPES:
            raise HTTPException(404, f"format: {fmt!r} is not one of csv, json, html")
        try:
            built = await asyncio.to_thread(build_report, store, job_id, tenant_id=me.tenant_id)
        except JobNotFoundError as exc:
            raise HTTPException(404, f"job_id: no report {job_id!r} in your organisation") from exc
        if not built.items:
            raise HTTPException(404, f"job_id: job {job_id!r} has no items to report")
        headers = {"cache-control": "no-store"}
        if fmt == "html":
            return HTMLResponse(to_html(built), headers=headers)
        headers["content-disposition"] = f'attachment; filename="report-{job_id}.{fmt}"'
        body = to_csv(built) if fmt == "csv" else to_json(built)
        return PlainTextResponse(body, media_type=REPORT_TYPES[fmt], headers=headers)

    # -- usage (members and owners) -------------------------------------------------------

    @router.get("/usage")
    async def usage(request: Request, me: Member) -> Response:
        from portwright.gateway import current_period, plan_of  # the gateway mounts the portal

        month = current_period()
        tenant = await asyncio.to_thread(store.tenants.get, me.tenant_id)
        plan = plan_of(tenant.plan)
        summary = await asyncio.to_thread(store.usage.summary, me.tenant_id, month)
        keys = {k.id: k for k in await asyncio.to_thread(store.accounts.keys, me.tenant_id)}
        users = {u.id: u for u in await asyncio.to_thread(store.customers.users, me.tenant_id)}

        def who(key_id: str) -> str:
            if key_id in keys:
                return f"key pw_{keys[key_id].prefix}_… {keys[key_id].name}".strip()
            if key_id in users:
                return users[key_id].email
            return key_id

        return page(
            request,
            "usage.html",
            me,
            nav="usage",
            plan=plan,
            period=month,
            summary=summary,
            by_key=[(who(k), v) for k, v in sorted(summary.by_key.items())],
        )

    # -- webhook endpoints (owners) -------------------------------------------------------

    async def _endpoints_page(
        request: Request,
        me: Customer,
        *,
        created: object = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        rows = await asyncio.to_thread(store.endpoints.search, tenant_id=me.tenant_id)
        return page(
            request,
            "webhooks.html",
            me,
            nav="webhooks",
            rows=[r for r in rows if r.kind == "webhook"],
            created=created,
            error=error,
            status_code=status,
        )

    @router.get("/webhooks")
    async def webhooks(request: Request, me: Owner) -> Response:
        return await _endpoints_page(request, me)

    @router.post("/webhooks")
    async def add_webhook(
        request: Request,
        me: Owner,
        url: Annotated[str, Form(max_length=2000)] = "",
        topics: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        from portwright._ids import new_id
        from portwright.delivery import new_secret, seal_endpoint_secret

        url = url.strip()
        chosen = [t.strip() for t in topics.replace(",", " ").split() if t.strip()]
        error = ""
        if not url.startswith(("https://", "http://")):
            error = "url: must start with https:// (or http://)"
        elif any(len(t) > 100 for t in chosen) or len(chosen) > 20:
            error = "topics: at most 20, each up to 100 characters"
        else:
            try:
                await guard.check(url)
            except UrlRefusedError as exc:
                error = f"url: {exc.reason}"
        if error:
            return await _endpoints_page(request, me, error=error, status=422)
        endpoint_id, secret = new_id("wep"), new_secret()
        sealed = await asyncio.to_thread(
            seal_endpoint_secret, vault, me.tenant_id, endpoint_id, secret
        )
        endpoint = await asyncio.to_thread(
            store.endpoints.create,
            tenant_id=me.tenant_id,
            url=url,
            secrets=[sealed],
            topics=chosen,
            endpoint_id=endpoint_id,
        )
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.webhook_added",
            target_type="webhook_endpoint",
            target_id=endpoint.id,
            before=None,
            after={"url": url, "topics": chosen},
            tenant_id=me.tenant_id,
        )
        return await _endpoints_page(request, me, created={"id": endpoint.id, "secret": secret})

    @router.post("/webhooks/{endpoint_id}/delete")
    async def remove_webhook(request: Request, me: Owner, endpoint_id: str) -> Response:
        if not await asyncio.to_thread(store.endpoints.delete, endpoint_id, tenant_id=me.tenant_id):
            raise HTTPException(
                404, f"endpoint_id: no endpoint {endpoint_id!r} in your organisation"
            )
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.webhook_removed",
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            before=None,
            after=None,
            tenant_id=me.tenant_id,
        )
        return RedirectResponse(f"{PREFIX}/webhooks", status_code=303)

    return router
