"""`/healthz` (alive, uptime), `/readyz` (database, workers, queue depth) and the public
`/status` page (each portal and each sync platform: operational, degraded, cooling down,
down; "sync delayed since …"; a portal's synthetic probe: its last run, result and age)."""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from portwright.observability._metrics import CONTENT_TYPE, Metrics
from portwright.store import Store

__all__ = ["ComponentStatus", "ProbeHealth", "health_router", "status_of"]


@dataclass(frozen=True, slots=True)
class ProbeHealth:
    """A portal's synthetic probe as /status shows it: when it last ran, what it found
    and how long ago; `late` when it has not run for three of its intervals."""

    every_s: float
    enabled: bool
    last_at: float | None
    outcome: str | None
    age_s: float | None
    failures: int

    @property
    def late(self) -> bool:
        return self.enabled and (self.age_s is None or self.age_s > 3 * self.every_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "every_s": self.every_s, "enabled": self.enabled, "last_at": self.last_at,
            "outcome": self.outcome, "age_s": self.age_s, "failures": self.failures,
            "late": self.late,
        }  # fmt: skip

    def text(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.last_at is None or self.age_s is None:
            return "not run yet"
        ran = f"{self.outcome} {_ago(self.age_s)} ago"
        return f"{ran} (late)" if self.late else ran


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    kind: str  # "portal" or "sync"
    state: str  # operational | degraded | cooling down | down
    detail: str
    delayed_since: float | None = None
    probe: ProbeHealth | None = None  # a portal's synthetic probe, when it has one

    @property
    def banner(self) -> str | None:
        if self.delayed_since is None:
            return None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.delayed_since))
        return f"{self.name}: sync delayed since {stamp}"


def status_of(store: Store) -> list[ComponentStatus]:
    """Every portal's and every sync platform's state, worst first."""
    now = time.time()
    out: list[ComponentStatus] = []
    probes = {
        p.portal: ProbeHealth(
            every_s=p.every_s,
            enabled=p.enabled,
            last_at=p.last_at,
            outcome=p.last_outcome,
            age_s=None if p.last_at is None else now - p.last_at,
            failures=p.failures,
        )
        for p in store.rollouts.probes()
    }
    for portal in store.portals.all():
        try:
            breaker_state = store.portals.portal_breaker(portal.name).state
        except LookupError:
            breaker_state = "closed"
        if portal.paused or breaker_state == "open":
            state, detail = "down", portal.paused_reason or "circuit open"
        elif portal.cooldown_until and portal.cooldown_until > now:
            state, detail = "cooling down", portal.cooldown_reason or ""
        elif portal.degraded_since:
            state, detail = "degraded", portal.degraded_reason or ""
        else:
            state, detail = "operational", ""
        out.append(
            ComponentStatus(portal.name, "portal", state, detail, probe=probes.get(portal.name))
        )
    order = {"down": 0, "cooling down": 1, "degraded": 2, "operational": 3}
    owed_since = store.deliveries.oldest_late()
    by_platform: dict[str, ComponentStatus] = {}
    for endpoint in store.endpoints.search():
        if endpoint.kind != "shop-status" or endpoint.platform is None:
            continue
        since_values = [v for v in (endpoint.delayed_since, owed_since.get(endpoint.id)) if v]
        since = min(since_values) if since_values else None
        if endpoint.breaker_open_until and endpoint.breaker_open_until > now:
            state, detail = "down", "sync circuit open"
        elif since is not None:
            state, detail = "degraded", "sync delayed"
        else:
            state, detail = "operational", ""
        found = ComponentStatus(endpoint.platform, "sync", state, detail, since)
        seen = by_platform.get(endpoint.platform)
        if seen is not None:  # several tenants sync to one platform: the worst, the earliest
            worst = min(seen, found, key=lambda c: order[c.state])
            earliest = min((v for v in (seen.delayed_since, since) if v), default=None)
            found = ComponentStatus(endpoint.platform, "sync", worst.state, worst.detail, earliest)
        by_platform[endpoint.platform] = found
    out.extend(by_platform.values())
    return sorted(out, key=lambda c: (order[c.state], c.name))


def _ready(store: Store, live_after_s: float) -> dict[str, Any]:
    from portwright.store.schema import jobs, workers

    now = time.time()
    with store.engine.connect() as conn:
        conn.execute(sa.select(1))
        live = conn.execute(
            sa.select(sa.func.count()).where(
                workers.c.status == "alive", workers.c.heartbeat_at > now - live_after_s
            )
        ).scalar()
        queued = conn.execute(sa.select(sa.func.count()).where(jobs.c.status == "queued")).scalar()
    return {"database": "ok", "workers": int(live or 0), "queue_depth": int(queued or 0)}


def _page(components: list[ComponentStatus]) -> str:
    banners = "".join(
        f'<p class="banner">{html.escape(c.banner)}</p>' for c in components if c.banner
    )
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.kind}</td>"
        f'<td class="{c.state.replace(" ", "-")}">{c.state}</td>'
        f"<td>{html.escape(c.detail)}</td>"
        f'<td class="probe">{html.escape(c.probe.text()) if c.probe else ""}</td></tr>'
        for c in components
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Portwright status</title>"
        "<meta http-equiv='refresh' content='15'></head><body><h1>Status</h1>"
        f"{banners}<table><tr><th>component</th><th>kind</th><th>state</th><th>detail</th>"
        "<th>probe</th></tr>"
        f"{rows}</table></body></html>"
    )


def health_router(store: Store, metrics: Metrics, *, live_after_s: float) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    started = time.time()

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - started, 3)}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            body = await asyncio.to_thread(_ready, store, live_after_s)
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
            return JSONResponse(
                {"status": "unavailable", "error": type(exc).__name__},
                503,
                headers={"retry-after": "5"},  # as the gateway's other 503s
            )
        ready = body["workers"] > 0
        body["status"] = "ready" if ready else "no live workers"
        return JSONResponse(body, 200 if ready else 503)

    @router.get("/metrics")
    async def metrics_page() -> Response:
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    @router.get("/status")
    async def status_page(request: Request) -> Response:
        components = await asyncio.to_thread(status_of, store)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(
                {
                    "components": [
                        {
                            "name": c.name,
                            "kind": c.kind,
                            "state": c.state,
                            "detail": c.detail,
                            "banner": c.banner,
                            "probe": c.probe.as_dict() if c.probe else None,
                        }
                        for c in components
                    ]
                }
            )
        return HTMLResponse(_page(components))

    return router
