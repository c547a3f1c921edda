"""The engine ladder: HTTP → HTTP with a browser's TLS → browser → hardened browser.

A fetch starts on the cheapest rung that works for the site (tier memory,
shared through the database), and climbs on block signals: a 403 from the
edge or a block page (after burning up to `identities_per_rung` identities
of the rung's proxy tier), a tier with no identity left, or, on an HTTP
rung, a page without the content asked for (it needs a browser). Timeouts,
5xx and dead proxies retry on the same rung; 429s rotate the identity or
wait. A captcha is answered through the solver chain on any rung; when no
solver can, ChallengeError goes to the caller (the orchestrator asks a
person). Nothing left to climb: `PoolExhaustedError` or `BlockedError`, which
the orchestrator escalates instead of looping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType

import structlog

from portwright.engines._errors import translate_exception
from portwright.engines._politeness import Politeness
from portwright.engines.browser import BrowserPool, EvidenceSink
from portwright.engines.ladder._browser import BrowserFetcher
from portwright.engines.ladder._climb import Climb, RungTries, proxy_at_fault
from portwright.engines.ladder._extract import ExtractRule, parse
from portwright.engines.ladder._http import CurlFetcher, Exchange, FetchRequest, Guard
from portwright.engines.ladder._memory import MemoryTierMemory, TierMemory, choose_start
from portwright.engines.ladder._result import FetchResult
from portwright.engines.ladder._rungs import ENGINE_RUNGS, LadderConfig, Rung, site_of
from portwright.engines.ladder._session import SessionStore
from portwright.engines.ladder._signals import unrendered
from portwright.observability import PROCESS
from portwright.resources import CaptchaSolver
from portwright.resources.proxies import PoolExhaustedError, Proxy, ProxyPool
from portwright.resources.ssrf import all_checks
from portwright.sdk import (
    BlockedError,
    ChallengeError,
    JobError,
    PermanentError,
    RateLimitedError,
)

__all__ = ["Ladder"]


class Ladder:
    """`await ladder.fetch(url, wait_for=…, extract=…)`; an async context manager."""

    def __init__(
        self,
        *,
        browsers: BrowserPool | None = None,
        proxies: ProxyPool | None = None,
        captcha: CaptchaSolver | None = None,
        memory: TierMemory | None = None,
        politeness: Politeness | None = None,
        config: LadderConfig | None = None,
        guard: Guard | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.config = config or LadderConfig()
        self.browsers = browsers
        self.proxies = proxies
        self.captcha = captcha
        self.memory: TierMemory = memory or MemoryTierMemory()
        self.politeness = politeness or Politeness()
        self.sessions = sessions or SessionStore()
        c = self.config
        self.guard = guard
        self._http = CurlFetcher(max_bytes=c.max_html_bytes, guard=guard)
        self._tls = CurlFetcher(impersonate="chrome", max_bytes=c.max_html_bytes, guard=guard)
        self._browser: dict[bool, BrowserFetcher] = {}
        if browsers is not None:
            for hardened in (False, True):
                self._browser[hardened] = BrowserFetcher(
                    browsers,
                    hardened=hardened,
                    settle_s=c.settle_s,
                    max_bytes=c.max_html_bytes,
                    captcha_attempts=c.captcha_attempts,
                    trace=c.trace,
                    guard=guard,
                )

    async def __aenter__(self) -> Ladder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the ladder's HTTP connections (the browser and proxy pools are the caller's)."""
        await self._http.aclose()
        await self._tls.aclose()

    def rungs_for(self, engine: str, *, screenshot: bool = False) -> list[Rung]:
        """The rungs an `engine` option ("auto", "http", "browser", "stealth") may use."""
        try:
            names = ENGINE_RUNGS[engine]
        except KeyError:
            known = ", ".join(ENGINE_RUNGS)
            raise PermanentError(f"unknown engine {engine!r}; use {known}") from None
        browsers = self.browsers is not None
        usable = [
            r
            for r in self.config.rungs
            if r.name in names
            and (r.engine in ("browser", "stealth") if screenshot else True)
            and (r.engine in ("http", "tls") or browsers)
        ]
        if not usable:
            needs = "a screenshot needs" if screenshot else f"engine {engine!r} needs"
            raise PermanentError(f"{needs} a browser engine, and none is available")
        return usable

    def _browser_rungs_missing(self, engine: str) -> bool:
        """True when `engine` would climb to browser rungs this ladder has no browser for."""
        if self.browsers is not None:
            return False
        names = ENGINE_RUNGS.get(engine, ())
        rungs = self.config.rungs
        return any(r.name in names and r.engine in ("browser", "stealth") for r in rungs)

    async def start_rung(self, url: str, engine: str = "auto", *, screenshot: bool = False) -> str:
        """The rung a fetch of `url` would start on now."""
        rungs = self.rungs_for(engine, screenshot=screenshot)
        return rungs[await self._start(rungs, site_of(url), engine)].name

    async def _start(self, rungs: list[Rung], site: str, engine: str) -> int:
        """The index in `rungs` (the engine's) of the rung a fetch of `site` starts on."""
        if engine != "auto":
            return 0
        stats = await self.memory.stats(site)
        c = self.config
        return choose_start(
            rungs, stats, threshold=c.success_threshold, reprobe_after_s=c.reprobe_after_s
        )

    async def fetch(
        self,
        url: str,
        *,
        engine: str = "auto",
        wait_for: str | None = None,
        extract: Mapping[str, ExtractRule] | None = None,
        screenshot: bool = False,
        session_id: str | None = None,
        proxy_tier: str | None = None,
        country: str | None = None,
        tenant_id: str | None = None,
        job_id: str | None = None,
        respect_robots: bool | None = None,
        timeout_s: float | None = None,
        evidence: EvidenceSink | None = None,
        guard: Guard | None = None,
        trace: bool | None = None,
    ) -> FetchResult:
        """Fetch `url` on the cheapest rung that works; see the module docstring.

        `guard` (an SSRF check) runs on every URL this fetch reaches, on every rung,
        robots.txt included, on top of the ladder's own guard. `trace` records a
        Playwright trace of browser rungs into `evidence` (None: `config.trace`)."""
        if proxy_tier is not None and self.proxies and proxy_tier not in self.proxies.tiers:
            raise PermanentError(f"unknown proxy tier {proxy_tier!r}")
        checks = all_checks(self.guard, guard)  # as the rungs run them (guards_of)
        if checks is not None:  # a refused URL fails with the guard's reason, not robots'
            await checks(url)
        if not await self.politeness.allowed(url, respect=respect_robots, guard=checks):
            raise PermanentError(f"robots.txt disallows {url}", robots=True, url=url)
        rungs = self.rungs_for(engine, screenshot=screenshot)
        site = site_of(url)
        start = await self._start(rungs, site, engine)
        climb = Climb(
            site=site,
            request=FetchRequest(
                url,
                wait_for=wait_for,
                extract=dict(extract or {}),
                screenshot=screenshot,
                timeout_s=timeout_s or self.config.timeout_s,
                guard=guard,
                trace=trace,
            ),
            session=self.sessions.get(session_id),
            sticky=f"session:{session_id}" if session_id else (f"job:{job_id}" if job_id else None),
        )
        # A fetch in a session logs with its id (the rung attempts, the solver, the browser).
        with (
            structlog.contextvars.bound_contextvars(session_id=session_id)
            if session_id
            else contextlib.nullcontext()
        ):
            for rung in rungs[start:]:
                result = await self._on_rung(climb, rung, proxy_tier, country, tenant_id, evidence)
                if result is not None:
                    return result
        unclimbed = self._browser_rungs_missing(engine)
        if climb.fallback is not None and not unclimbed:  # content missing, nothing blocked
            rung, proxy, exchange = climb.fallback  # and nothing left to try: give what we got
            return climb.result(rung, proxy, exchange)
        if job_id is not None and self.proxies is not None:
            self.proxies.mark_exhausted(f"job:{job_id}")
        if unclimbed:  # the ladder would climb to a browser; there is none: fail now, clearly
            why = "the content asked for is not in its HTML" if climb.fallback else (
                "it refuses clients that are not browsers")  # fmt: skip
            raise PermanentError(
                f"this site needs a browser ({why}) and none is installed on this worker: "
                f"{climb.site}",
                needs_browser=True,
                attempts=[a.outcome for a in climb.attempts],
            )
        blocked = climb.blocked or BlockedError(f"every rung was blocked on {climb.site}")
        blocked.details["attempts"] = [a.outcome for a in climb.attempts]
        raise blocked

    async def _on_rung(
        self,
        climb: Climb,
        rung: Rung,
        proxy_tier: str | None,
        country: str | None,
        tenant_id: str | None,
        evidence: EvidenceSink | None,
    ) -> FetchResult | None:
        """Try one rung; a result, or None to climb (the reason noted in `climb`)."""
        tier = proxy_tier or rung.proxy_tier
        pool = self.proxies
        if tier is None or pool is None or not pool.has_tier(tier):
            pool = None
        tries = RungTries()
        while True:
            proxy: Proxy | None = None
            if pool is not None:
                try:
                    proxy = pool.acquire(
                        site=climb.site, tier=tier, country=country, session=climb.sticky
                    )
                except PoolExhaustedError as exc:
                    climb.note(rung, None, "exhausted", exc.message, time.monotonic())
                    climb.blocked = exc
                    await self.memory.record(climb.site, rung.name, ok=False)
                    return None
            began = time.monotonic()
            try:
                async with self.politeness.slot(climb.site):
                    exchange = await self._run(rung, climb, proxy, tenant_id, evidence)
            except (ChallengeError, PermanentError):
                raise
            except Exception as exc:
                error = translate_exception(exc)
                if error is None:
                    raise
                if await self._failed(climb, rung, proxy, pool, error, began, tries):
                    continue
                return None
            return await self._succeeded(climb, rung, proxy, pool, exchange, began)

    async def _failed(
        self,
        climb: Climb,
        rung: Rung,
        proxy: Proxy | None,
        pool: ProxyPool | None,
        error: JobError,
        began: float,
        tries: RungTries,
    ) -> bool:
        """After a failed try: True to try the rung again, False to climb; or raise."""
        c = self.config
        if isinstance(error, BlockedError) and not error.details.get("proxy_failure"):
            climb.note(rung, proxy, "blocked", error.message, began)
            climb.blocked = error
            if proxy is not None and pool is not None:
                pool.burn(proxy, site=climb.site, reason=error.message)
                tries.burned += 1
                rotating = tries.burned < c.identities_per_rung
                PROCESS.burned(climb.site, rotated=rotating)  # burns and rotations metrics
                if rotating:
                    return True
            await self.memory.record(climb.site, rung.name, ok=False)
            return False
        if isinstance(error, RateLimitedError):
            climb.note(rung, proxy, "rate_limited", error.message, began)
            climb.rate_limited += 1
            if climb.rate_limited > c.rate_limit_retries:
                raise error
            # A fresh identity has a fresh budget; a sticky or direct one must wait.
            if proxy is None or climb.sticky is not None or climb.rate_limited > 1:
                await asyncio.sleep(min(error.retry_after, c.max_wait_s))
            return True
        outcome = "proxy_failed" if proxy_at_fault(error, proxy) else "transient"
        climb.note(rung, proxy, outcome, error.message, began)
        if outcome == "proxy_failed" and proxy is not None and pool is not None:
            pool.failed(proxy)
        tries.transient += 1
        if tries.transient > c.transient_retries:
            raise error
        return True

    async def _succeeded(
        self,
        climb: Climb,
        rung: Rung,
        proxy: Proxy | None,
        pool: ProxyPool | None,
        exchange: Exchange,
        began: float,
    ) -> FetchResult | None:
        """A page came back: the result, or None to climb when it lacks what was asked."""
        request = climb.request
        # parsed once for the check and the extraction; a page asked for neither is read
        # for its title only (`title_of`, which parses only a page whose head is not plain)
        page = parse(exchange.html) if request.wait_for or request.extract else exchange.html
        if rung.engine in ("http", "tls") and 200 <= exchange.status < 300:
            missing = unrendered(page, wait_for=request.wait_for, rules=request.extract)
            if missing:
                climb.note(rung, proxy, "unrendered", missing, began)
                climb.fallback = (rung, proxy, exchange)
                await self.memory.record(climb.site, rung.name, ok=False)
                return None
        climb.note(rung, proxy, "ok", str(exchange.status), began)
        if proxy is not None and pool is not None:
            pool.succeeded(proxy, latency_s=time.monotonic() - began)
        await self.memory.record(climb.site, rung.name, ok=True)
        return climb.result(rung, proxy, exchange, page)

    async def _run(
        self,
        rung: Rung,
        climb: Climb,
        proxy: Proxy | None,
        tenant_id: str | None,
        evidence: EvidenceSink | None,
    ) -> Exchange:
        async def solve(sitekey: str, page_url: str) -> str:
            if self.captcha is None:
                raise ChallengeError(
                    f"captcha on {page_url} and no solver is configured",
                    sitekey=sitekey,
                    url=page_url,
                    needs_operator=True,
                )
            site = site_of(page_url)
            try:
                answer = await self.captcha.solve(
                    sitekey=sitekey, url=page_url, tenant_id=tenant_id
                )
            except ChallengeError:
                PROCESS.captcha(site, solved=False)  # portwright_captchas_total
                raise
            PROCESS.captcha(site, solved=True)
            return answer

        request, session = climb.request, climb.session
        if rung.engine == "http":
            return await self._http.fetch(request, proxy=proxy, session=session, solve=solve)
        if rung.engine == "tls":
            return await self._tls.fetch(request, proxy=proxy, session=session, solve=solve)
        fetcher = self._browser[rung.engine == "stealth"]
        return await fetcher.fetch(
            request, proxy=proxy, session=session, solve=solve, sink=evidence
        )
