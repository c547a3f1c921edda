"""Evidence of a browser step: screenshot, DOM (HTML), URL and timings, with secrets masked.

`capture_page` reads a page without changing it; `Masker` replaces every
secret the step touched in text, and the screenshot masks password fields
and any field whose value is a secret (compared in Python: no secret is
sent into the page).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from playwright.async_api import Locator, Page

__all__ = ["MASK", "EvidenceSink", "Masker", "PageEvidence", "capture_page", "record_page"]

MASK = "••••••"
_MAX_FIELDS = 200
_TIMING_JS = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  if (!nav) return {};
  const ms = (v) => Math.round(v * 10) / 10;
  return {
    ttfb_ms: ms(nav.responseStart - nav.requestStart),
    dom_content_loaded_ms: ms(nav.domContentLoadedEventEnd),
    load_ms: ms(nav.loadEventEnd),
    transfer_bytes: nav.transferSize || 0,
  };
}
"""


class EvidenceSink(Protocol):
    """Where evidence goes (a step context's `attach`): returns the evidence id."""

    async def attach(
        self, kind: str, data: bytes | str, *, content_type: str, **meta: Any
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces secrets (and their JSON-escaped forms) with a mask in text and bytes."""

    secrets: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Masker:
        return cls(frozenset(s for s in secrets if len(s) >= 3))

    def _forms(self) -> list[str]:
        forms = set(self.secrets)
        forms |= {json.dumps(s)[1:-1] for s in self.secrets}
        return sorted(forms, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._forms():
            value = value.replace(secret, MASK)
        return value

    def data(self, value: bytes) -> bytes:
        mask = MASK.encode()
        for secret in self._forms():
            value = value.replace(secret.encode(), mask)
        return value


@dataclass(frozen=True, slots=True)
class PageEvidence:
    """What one page looked like at the end of a step."""

    url: str
    title: str
    html: str
    screenshot: bytes | None
    timings: dict[str, float]
    captured_at: float

    def log(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "timings": self.timings, **extra}


async def _secret_fields(page: Page, masker: Masker) -> list[Locator]:
    masks = [page.locator("input[type=password]")]
    if not masker.secrets:
        return masks
    fields = page.locator("input, textarea")
    with contextlib.suppress(Exception):
        count = min(await fields.count(), _MAX_FIELDS)
        for index in range(count):
            field_ = fields.nth(index)
            value = await field_.input_value(timeout=500)
            if value and any(secret in value for secret in masker.secrets):
                masks.append(field_)
    return masks


async def capture_page(
    page: Page, masker: Masker | None = None, *, screenshot: bool = True, full_page: bool = False
) -> PageEvidence:
    """Screenshot, HTML, URL, title and navigation timings of `page`, secrets masked."""
    masker = masker or Masker()
    html = ""
    title = ""
    timings: dict[str, float] = {}
    shot: bytes | None = None
    with contextlib.suppress(Exception):
        html = masker.text(await page.content())
    with contextlib.suppress(Exception):
        title = masker.text(await page.title())
    with contextlib.suppress(Exception):
        timings = dict(await page.evaluate(_TIMING_JS))
    if screenshot:
        with contextlib.suppress(Exception):
            masks = await _secret_fields(page, masker)
            shot = await page.screenshot(
                type="png", full_page=full_page, mask=masks, animations="disabled", timeout=10_000
            )
    return PageEvidence(masker.text(page.url), title, html, shot, timings, time.time())


async def record_page(
    sink: EvidenceSink, evidence: PageEvidence, *, step_started: float, **meta: Any
) -> list[str]:
    """Attach a page's screenshot, DOM and step log to `sink`; returns the evidence ids."""
    ids: list[str] = []
    common = {"url": evidence.url, **meta}
    if evidence.screenshot is not None:
        ids.append(
            await sink.attach("screenshot", evidence.screenshot, content_type="image/png", **common)
        )
    ids.append(await sink.attach("dom", evidence.html, content_type="text/html", **common))
    log = evidence.log(duration_ms=round((evidence.captured_at - step_started) * 1000, 1), **meta)
    ids.append(
        await sink.attach("step-log", json.dumps(log), content_type="application/json", **common)
    )
    return ids
