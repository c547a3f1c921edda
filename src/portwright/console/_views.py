"""What the console's pages show, computed from the store: masking, stats, statuses."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from portwright.store import PortalRecord, SiteRecord, Store, site_name

__all__ = ["MASK", "Dashboard", "dashboard", "mask", "portal_status"]

MASK = "••••••"
SECRET_HINTS = (
    "password", "passwd", "secret", "token", "otp", "code", "card", "cvv", "cvc", "pin",
    "api_key", "apikey", "credential", "iban", "ssn",
)  # fmt: skip


# Settings *about* a secret are not secret: `otp_source`, `otp_timeout_s`, `password_url`.
NOT_SECRET_SUFFIXES = (
    "_source", "_timeout", "_timeout_s", "_url", "_name", "_type", "_kind", "_at", "_count",
    "_required", "_length",
)  # fmt: skip


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.endswith(NOT_SECRET_SUFFIXES):
        return False
    return any(hint in lowered for hint in SECRET_HINTS)


def mask(value: Any) -> Any:
    """A copy of JSON-like `value` with every secret-looking field's value masked."""
    if isinstance(value, dict):
        return {
            k: (MASK if _secret_key(str(k)) and v not in (None, "") else mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def portal_status(
    portal: PortalRecord, breaker_state: str | None, now: float, zone: tzinfo = UTC
) -> str:
    """healthy, degraded, cooling down until … (a time in `zone`, the console's display
    zone, with its name), circuit open, or paused."""
    if portal.paused:
        return "paused" + (f" ({portal.paused_reason})" if portal.paused_reason else "")
    if breaker_state == "open":
        return "circuit open"
    if portal.cooldown_until and portal.cooldown_until > now:
        until = datetime.fromtimestamp(portal.cooldown_until, zone).strftime("%H:%M:%S %Z")
        return f"cooling down until {until}"
    if portal.degraded_since:
        return "degraded"
    return "healthy"


def site_status(site: SiteRecord, breaker_state: str | None, now: float, zone: tzinfo = UTC) -> str:
    """healthy, degraded, cooling down until … (in `zone`, and why), or circuit open."""
    if breaker_state == "open":
        return "circuit open"
    if site.cooldown_until and site.cooldown_until > now:
        until = datetime.fromtimestamp(site.cooldown_until, zone).strftime("%H:%M:%S %Z")
        return f"cooling down until {until}: {site.cooldown_reason or ''}".rstrip(": ")
    if site.degraded_since:
        return "degraded"
    return "healthy"


@dataclass(frozen=True, slots=True)
class HourBar:
    label: str
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    queued: int
    running: int
    waiting: int
    succeeded_24h: int
    failed_24h: int
    success_rate: float | None
    open_escalations: int
    median_response_s: float | None
    hours: list[HourBar]
    portals: list[tuple[str, str]] = field(default_factory=list)
    sites: list[tuple[str, str, str]] = field(default_factory=list)  # portal, site, status

    @property
    def peak(self) -> int:
        return max([h.succeeded + h.failed for h in self.hours] + [1])


def dashboard(store: Store, *, tenant_id: str | None, zone: tzinfo = UTC) -> Dashboard:
    """Queue depth, running, outcomes per hour over 24 h, escalations, portal statuses."""
    now = time.time()
    since = now - 24 * 3600
    counts = store.jobs.counts_by_status(tenant_id=tenant_id)
    outcomes = store.console.hourly_outcomes(since=since, tenant_id=tenant_id)
    current_hour = int(now // 3600)
    buckets = {h: [0, 0] for h in range(current_hour - 23, current_hour + 1)}
    for finished_at, status in outcomes:
        bucket = buckets.get(int(finished_at // 3600))
        if bucket is not None and status in ("succeeded", "failed"):
            bucket[0 if status == "succeeded" else 1] += 1
    hours = [
        HourBar(datetime.fromtimestamp(h * 3600, zone).strftime("%H:%M"), s, f)
        for h, (s, f) in buckets.items()
    ]
    ok = sum(h.succeeded for h in hours)
    bad = sum(h.failed for h in hours)
    times = store.console.escalation_response_times(since=since, tenant_id=tenant_id)
    open_escalations = [
        e
        for e in store.jobs.escalations(status="unresolved", tenant_id=tenant_id, limit=10_000)
        if e.step != "alert"
    ]
    portals = []
    for portal in store.portals.all():
        try:
            breaker = store.portals.portal_breaker(portal.name).state
        except LookupError:
            breaker = None
        portals.append((portal.name, portal_status(portal, breaker, now, zone)))
    sites = []
    for site in store.sites.all(limit=100):
        if tenant_id is not None and site.tenant_id != tenant_id:
            continue  # a tenant's operators see their own slowdowns, not others' hosts
        label = site.host if site.tenant_id is None else f"{site.host} (tenant {site.tenant_id})"
        breaker = store.portals.breaker(f"site:{site_name(site.portal, site.host)}").state
        sites.append((site.portal, label, site_status(site, breaker, now, zone)))
    return Dashboard(
        queued=counts.get("queued", 0),
        running=counts.get("running", 0),
        waiting=counts.get("waiting", 0),
        succeeded_24h=ok,
        failed_24h=bad,
        success_rate=(ok / (ok + bad)) if ok + bad else None,
        open_escalations=len(open_escalations),
        median_response_s=statistics.median(times) if times else None,
        hours=hours,
        portals=portals,
        sites=sites,
    )
