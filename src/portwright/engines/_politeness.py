"""Politeness per site: a minimum delay between requests, a concurrency cap, robots.txt.

`slot(site)` admits at most `max_concurrency` requests to a site at once and
spaces their actual starts at least `min_delay_s` apart (in arrival order). `allowed(url)`
answers from the site's robots.txt, parsed by Protego (RFC 9309: longest match wins,
`Allow` beats `Disallow` on a tie, `*` and `$` patterns): a 4xx robots.txt allows
everything, a 5xx or unreachable one disallows everything for a short while.
Given an SSRF `guard`, robots.txt and each of its redirects (5 at most) pass it
first and are fetched from the address it checked (no second lookup); a
refused hop raises the guard's error (nothing is cached for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from protego import Protego

from portwright.resources.ssrf import GuardedTransport, per_origin
from portwright.resources.tls import client_context

__all__ = ["Politeness", "PolitenessRule", "RobotsFetch"]

RobotsFetch = Callable[[str], Awaitable[tuple[int, str]]]
Guard = Callable[[str], Awaitable[Sequence[str] | None]]  # the ladder's SSRF check
_UNREACHABLE_TTL_S = 60.0
_ROBOTS_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class PolitenessRule:
    """How gently one site is treated."""

    min_delay_s: float = 0.0
    max_concurrency: int = 8
    respect_robots: bool = True
    user_agent: str = "Portwright"


class RobotsRefusedError(OSError):
    """The SSRF guard refused robots.txt or one of its redirects; `refusal` is its error."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


async def _fetch_robots(url: str, guard: Guard | None = None) -> tuple[int, str]:
    transport = None
    if guard is not None:
        checked = guard

        async def check(hop: str) -> Sequence[str] | None:
            try:
                return await checked(hop)
            except Exception as exc:  # noqa: BLE001 - the guard's refusal, whatever its type
                raise RobotsRefusedError(exc) from None

        transport = GuardedTransport(check)  # checks each hop, connects to what it checked
    async with httpx.AsyncClient(
        timeout=5.0, trust_env=False, transport=transport, verify=client_context()
    ) as client:
        for _ in range(_ROBOTS_REDIRECTS + 1):
            response = await client.get(url)
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                return response.status_code, response.text
            url = str(response.url.join(location))
        return 404, ""  # too many redirects: RFC 9309 treats robots.txt as unavailable


@per_origin
def _site_of(url: str) -> str:
    """The site whose robots.txt rules `url`: its scheme and netloc (remembered per
    origin: every fetch asks it, a batch's URLs share a few)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def warm() -> None:
    """Import and build what a site's first robots.txt fetch would (the TLS context, the
    HTTP transport's modules, anyio's asyncio backend), so a worker pays it when it
    starts: a batch's first items all wait on that fetch (it holds the robots lock)."""
    import importlib

    importlib.import_module("anyio._backends._asyncio")
    httpx.AsyncHTTPTransport(verify=client_context(), trust_env=False)


@dataclass(slots=True)
class _Site:
    gate: asyncio.Semaphore
    spacing: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_start: float = float("-inf")


class _Slot:
    """`Politeness.slot`'s context: a class, not a generator (it wraps every request)."""

    __slots__ = ("_delay", "_state")

    def __init__(self, state: _Site, delay: float) -> None:
        self._state = state
        self._delay = delay

    async def __aenter__(self) -> None:
        state = self._state
        await state.gate.acquire()
        if self._delay > 0:
            try:
                # Spaced from the previous request's actual start, not its planned one: a
                # late wake-up (a busy loop) never lets two starts come closer than the delay.
                async with state.spacing:
                    wait = state.last_start + self._delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    state.last_start = time.monotonic()
            except BaseException:
                state.gate.release()
                raise

    async def __aexit__(self, *exc: object) -> None:
        self._state.gate.release()


class Politeness:
    """Per-site gates and robots.txt rules; one instance per process (per event loop)."""

    def __init__(
        self,
        default: PolitenessRule | None = None,
        *,
        per_site: Mapping[str, PolitenessRule] | None = None,
        robots_fetch: RobotsFetch | None = None,
        robots_ttl_s: float = 3600.0,
    ) -> None:
        self.default = default or PolitenessRule()
        self.per_site = dict(per_site or {})
        self.robots_fetch = robots_fetch or _fetch_robots
        self.robots_ttl_s = robots_ttl_s
        self._sites: dict[str, _Site] = {}
        self._robots: dict[str, tuple[float, Protego | bool]] = {}
        self._robots_lock = asyncio.Lock()

    def rule(self, site: str) -> PolitenessRule:
        return self.per_site.get(site, self.default)

    def slot(self, site: str) -> _Slot:
        """Hold one of the site's concurrency slots, started no sooner than its delay allows
        (`async with politeness.slot(site):`)."""
        rule = self.rule(site)
        state = self._sites.get(site)
        if state is None:
            state = self._sites[site] = _Site(asyncio.Semaphore(max(1, rule.max_concurrency)))
        return _Slot(state, rule.min_delay_s)

    async def allowed(
        self, url: str, *, respect: bool | None = None, guard: Guard | None = None
    ) -> bool:
        """Whether robots.txt lets our user agent fetch `url` (True when not respected)."""
        site = _site_of(url)
        rule = self.rule(site)
        if not (rule.respect_robots if respect is None else respect):
            return True
        verdict = await self._robots_for(site, guard)
        if isinstance(verdict, bool):
            return verdict
        return bool(verdict.can_fetch(url, rule.user_agent))

    async def _robots_for(self, site: str, guard: Guard | None) -> Protego | bool:
        now = time.monotonic()
        cached = self._robots.get(site)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._robots_lock:
            cached = self._robots.get(site)
            if cached is not None and cached[0] > now:
                return cached[1]
            verdict: Protego | bool
            ttl = self.robots_ttl_s
            try:
                robots_url = f"{site}/robots.txt"
                if self.robots_fetch is _fetch_robots:
                    status, text = await _fetch_robots(robots_url, guard)
                else:
                    if guard is not None:
                        await guard(robots_url)
                    status, text = await self.robots_fetch(robots_url)
            except RobotsRefusedError as exc:  # the fetch fails with the guard's reason
                raise exc.refusal from None
            except (httpx.HTTPError, OSError, ValueError):
                verdict, ttl = False, _UNREACHABLE_TTL_S
            else:
                if status >= 500:
                    verdict, ttl = False, _UNREACHABLE_TTL_S
                elif status >= 400:
                    verdict = True
                else:
                    verdict = Protego.parse(text)
            self._robots[site] = (now + ttl, verdict)
            return verdict
