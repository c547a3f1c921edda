"""One leased browser context: its pages, its trace, its cookies and storage."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

from portwright.engines.browser._fingerprint import Fingerprint
from portwright.resources.proxies import Proxy

__all__ = ["BrowserLease", "StorageState", "cookie_rows", "playwright_cookies"]

StorageState = dict[str, Any]


class BrowserLease:
    """An isolated context the pool lent; valid until the pool's `context()` block exits."""

    def __init__(
        self,
        context: BrowserContext,
        fingerprint: Fingerprint,
        proxy: Proxy | None,
        *,
        hardened: bool,
        remote: bool = False,
    ) -> None:
        self.context = context
        self.fingerprint = fingerprint
        self.proxy = proxy  # the way out the context was given
        self.hardened = hardened
        self.remote = remote  # on a browser reached over CDP (see `is_remote`)
        self._tracing = False

    @property
    def pages(self) -> list[Page]:
        return list(self.context.pages)

    async def new_page(self) -> Page:
        return await self.context.new_page()

    async def start_trace(self) -> None:
        """Record a Playwright trace (screenshots and DOM snapshots) of this context."""
        await self.context.tracing.start(screenshots=True, snapshots=True, sources=False)
        self._tracing = True

    async def stop_trace(self) -> bytes | None:
        """Stop tracing and return the trace zip (None if not tracing or it failed)."""
        if not self._tracing:
            return None
        self._tracing = False
        with tempfile.TemporaryDirectory(prefix="portwright-trace-") as tmp:
            path = Path(tmp) / "trace.zip"
            with contextlib.suppress(Exception):
                await self.context.tracing.stop(path=path)
                return path.read_bytes()
        return None

    async def storage_state(self) -> StorageState:
        """Cookies and local storage, to restore in a later context of the same session."""
        return dict(await self.context.storage_state())

    async def cookies(self) -> list[dict[str, str]]:
        return cookie_rows(await self.context.cookies())

    async def add_cookies(self, rows: list[dict[str, str]]) -> None:
        if rows:
            await self.context.add_cookies(playwright_cookies(rows))  # type: ignore[arg-type]


def cookie_rows(cookies: Any) -> list[dict[str, str]]:
    """Playwright cookies as plain rows (name, value, domain, path)."""
    return [
        {
            "name": str(c["name"]),
            "value": str(c["value"]),
            "domain": str(c["domain"]),
            "path": str(c.get("path") or "/"),
        }
        for c in cookies
    ]


def playwright_cookies(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Plain cookie rows in Playwright's `add_cookies` shape."""
    return [
        {
            "name": r["name"],
            "value": r["value"],
            "domain": r["domain"].removesuffix(".local"),
            "path": r.get("path") or "/",
        }
        for r in rows
        if r.get("domain")
    ]
