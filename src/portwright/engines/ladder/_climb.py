"""The state of one fetch climbing the ladder, and the result it ends with."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import structlog
from parsel import Selector

from portwright.engines.ladder._extract import extract, parse, title_of
from portwright.engines.ladder._http import Exchange, FetchRequest
from portwright.engines.ladder._result import Attempt, FetchResult
from portwright.engines.ladder._rungs import Rung
from portwright.engines.ladder._session import Session
from portwright.resources.proxies import Proxy
from portwright.sdk import JobError

__all__ = ["Climb", "RungTries", "proxy_at_fault"]

log = structlog.get_logger("portwright.ladder")
# structlog's filtering logger classes that drop debug lines (it makes one class per level):
# when one is configured, a rung attempt's line is not built (the lazy logger's bind alone
# was ~7 µs of CPU per fetch)
_QUIET = frozenset(
    structlog.make_filtering_bound_logger(level)
    for level in (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
)


@dataclass
class RungTries:
    """What one rung has spent so far: identities burned, transient failures."""

    burned: int = 0
    transient: int = 0


@dataclass
class Climb:
    """One fetch as it moves up the ladder."""

    site: str
    request: FetchRequest
    session: Session
    sticky: str | None
    attempts: list[Attempt] = field(default_factory=list)
    rate_limited: int = 0
    blocked: JobError | None = None
    fallback: tuple[Rung, Proxy | None, Exchange] | None = None
    started: float = field(default_factory=time.monotonic)

    def note(
        self, rung: Rung, proxy: Proxy | None, outcome: str, detail: str, began: float
    ) -> None:
        name = None if proxy is None else proxy.name
        self.attempts.append(Attempt(rung.name, name, outcome, detail, time.monotonic() - began))
        if structlog.get_config()["wrapper_class"] in _QUIET:
            return
        log.debug(
            "rung attempt",
            site=self.site,
            rung=rung.name,
            proxy=name,
            outcome=outcome,
            detail=detail,
        )

    def result(
        self,
        rung: Rung,
        proxy: Proxy | None,
        exchange: Exchange,
        page: str | Selector | None = None,
    ) -> FetchResult:
        """The fetch's result from `exchange`; `page` is its HTML, parsed already or not
        (None: `exchange.html`): it is parsed at most once, and only when it must be."""
        rules = self.request.extract
        doc = exchange.html if page is None else page
        if rules:
            doc = parse(doc)
        return FetchResult(
            url=self.request.url,
            final_url=exchange.url,
            status=exchange.status,
            html=exchange.html,
            title=title_of(doc),
            extracted=extract(doc, rules) if rules else {},
            screenshot=exchange.screenshot,
            rung=rung.name,
            engine=rung.engine,
            proxy=None if proxy is None else proxy.name,
            proxy_tier=None if proxy is None else proxy.tier,
            credits=rung.credits,
            attempts=tuple(self.attempts),
            elapsed_s=time.monotonic() - self.started,
            captcha_solved=exchange.captcha_solved,
        )


def proxy_at_fault(error: JobError, proxy: Proxy | None) -> bool:
    """Whether a failure is the proxy's own (refused tunnel, gateway error), not the site's."""
    if proxy is None:
        return False
    return bool(error.details.get("proxy_failure")) or error.details.get("status") in (502, 504)
