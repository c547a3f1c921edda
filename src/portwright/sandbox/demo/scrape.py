"""The demo's scenario 2: a batch over the sandbox scrape sites through the public API.

One tenant with an API key posts ~100 URLs to `/v1/batch` (static catalogue,
JS-rendered pages, a site that refuses plain HTTP clients, a site behind a
captcha), follows the jobs until they end, and prints, live, how many are
done. The summary: the share that succeeded, the tier each site settled on,
and the credits by tier from `GET /v1/usage` (every job metered at the tier
that served it). It is ok when ≥ 99 % succeeded, every job is metered and no
job is left pending. Without a browser (`browser=False`) the sites that need one
are left out of the batch (the demo says so), not sent to fail.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

from portwright.cli.scenarios import BrowserNeed, Progress, ScenarioResult

__all__ = ["BROWSER", "BROWSER_SITES", "MIX", "run"]

# Weighted like real traffic: mostly cheap pages, a fifth needing a browser.
MIX = {"scrape-static": 55, "scrape-js": 10, "scrape-guarded": 10, "scrape-captcha": 25}
BROWSER_SITES = ("scrape-js", "scrape-guarded")  # script-rendered; refuses non-browsers
BROWSER = BrowserNeed(f"the scrape sites {', '.join(BROWSER_SITES)}")
RULES = {
    "title": {"selector": "h1.title"},
    "price": {"selector": "span.price", "attribute": "data-amount"},
}
TENANT = "scrape-demo"
ENDED = frozenset({"succeeded", "failed", "cancelled"})
TIMEOUT_S = 150.0
POLL_S = 1.0


def _items(world: Any, mix: dict[str, int]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    items: list[dict[str, Any]] = []
    site_of: dict[str, str] = {}
    for site, count in mix.items():
        if site not in world.names():
            continue
        for index in range(count):
            url = f"{world.url(site)}/product/{index + 1}"
            item: dict[str, Any] = {"url": url, "extract": RULES}
            if site == "scrape-captcha":
                item["session_id"] = "demo-captcha"  # one solved captcha opens the site
            items.append(item)
            site_of[url] = site
    return items, site_of


async def run(
    stack: Any,
    world: Any,
    progress: Progress,
    *,
    mix: dict[str, int] | None = None,
    browser: bool = True,
) -> ScenarioResult:
    """Batch the sandbox scrape sites through the gateway; see the module docstring."""
    from portwright.client import AsyncClient
    from portwright.client.models import BatchRequest
    from portwright.gateway.auth import issue_key

    mix = mix or MIX
    if not browser:
        mix = {site: n for site, n in mix.items() if site not in BROWSER_SITES}
    items, site_of = _items(world, mix)
    if not items:
        return ScenarioResult("scrape", False, ["scrape: no sandbox scrape site is running"])
    key = await asyncio.to_thread(
        issue_key, stack.runtime.store, tenant=TENANT, name="demo", plan="business"
    )
    started = time.monotonic()
    async with AsyncClient(stack.gateway_url, key.key, timeout=60.0) as api:
        before = await api.usage()
        reply = await api.batch(BatchRequest.model_validate({"items": items}))
        progress(f"scrape: batch {reply.batch_id} accepted, {len(reply.jobs)} URLs over "
                 f"{len({site_of[j.input['url']] for j in reply.jobs})} sites")  # fmt: skip
        jobs = {job.id: job for job in reply.jobs}
        deadline = time.monotonic() + TIMEOUT_S
        reported = -1
        while time.monotonic() < deadline:
            # One read a poll (the key's read rate limit holds): the tenant's newest scrapes.
            page = await api.list_jobs(adapter="scrape", limit=200)
            jobs.update({j.id: j for j in page.data if j.id in jobs})
            done = sum(1 for j in jobs.values() if j.status in ENDED)
            if done != reported:
                ok_so_far = sum(1 for j in jobs.values() if j.status == "succeeded")
                progress(f"scrape: {done}/{len(jobs)} done, {ok_so_far} succeeded")
                reported = done
            if done == len(jobs):
                break
            await asyncio.sleep(POLL_S)
        usage = await api.usage()
    return _summary(jobs, site_of, before, usage, time.monotonic() - started)


def _summary(
    jobs: dict[str, Any], site_of: dict[str, str], before: Any, usage: Any, elapsed: float
) -> ScenarioResult:
    total = len(jobs)
    succeeded = [j for j in jobs.values() if j.status == "succeeded"]
    share = len(succeeded) / total if total else 0.0
    tiers: dict[str, Counter[str]] = defaultdict(Counter)
    for job in succeeded:
        tiers[site_of[job.input["url"]]][str((job.output or {}).get("tier"))] += 1
    failures = Counter(
        (j.reason or j.status)[:80] for j in jobs.values() if j.status != "succeeded"
    )
    lines = [
        f"scrape: {len(succeeded)}/{total} succeeded ({share:.1%}) in {elapsed:.1f}s "
        "through POST /v1/batch",
    ]
    for site in sorted(tiers):
        spread = ", ".join(f"{tier} x{n}" for tier, n in tiers[site].most_common())
        lines.append(f"scrape: {site} settled on {tiers[site].most_common(1)[0][0]} ({spread})")
    by_tier = {
        tier: line.credits - (before.by_tier[tier].credits if tier in before.by_tier else 0)
        for tier, line in sorted(usage.by_tier.items())
    }
    spent = ", ".join(f"{tier} {credits}" for tier, credits in by_tier.items() if credits)
    lines.append(f"scrape: credits by tier: {spent or 'none'} (total {sum(by_tier.values())})")
    metered = usage.jobs - before.jobs
    ok = share >= 0.99 and metered == total and "pending" not in usage.by_tier
    if metered != total or "pending" in usage.by_tier:
        lines.append(f"scrape: {metered} of {total} jobs metered; some still pending")
    for reason, count in failures.most_common(3):
        lines.append(f"scrape: failed x{count}: {reason}")
    return ScenarioResult("scrape", ok, lines)
