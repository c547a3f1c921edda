"""The consulate's scan for a `WatchService`: one request per poll, shared by every booking.

`PortalScanner(client, base_url, email, password)` signs in (once, and again when the
session expires) with a watcher account of its own and reads the calendar of the key's
center and visa type with the booking adapter's selectors. A 429 becomes
`ScanResult(retry_after=...)`, so the watch hub cools the portal down; the portal's clock,
when the page shows one, is the observation's time. Hand it a client that passes the
SSRF guard (`portwright.resources.ssrf.guarded_client`).
"""

from __future__ import annotations

from urllib.parse import urljoin

import httpx

from portwright.apps.consulate import ConsulateAdapter
from portwright.apps.consulate._watch_command import register
from portwright.intelligence import ScanResult, WatchKey
from portwright.resilience import parse_retry_after
from portwright.sdk import Page, PageChangedError, SelectorMap

__all__ = ["PortalScanner", "register"]

_SELECTORS = SelectorMap(dict(ConsulateAdapter.selectors))


class PortalScanner:
    def __init__(self, client: httpx.AsyncClient, base_url: str, email: str, password: str) -> None:
        self._client, self._base = client, base_url
        self._email, self._password = email, password
        self._signed_in = False
        self.requests = 0

    async def _login(self) -> ScanResult | None:
        self.requests += 2
        form = await self._client.get(urljoin(self._base, "/login"))
        csrf = Page(form.text, _SELECTORS).value("csrf")
        done = await self._client.post(
            urljoin(self._base, "/login"),
            data={"email": self._email, "password": self._password, "csrf": csrf},
        )
        if done.status_code == 429:
            return ScanResult(retry_after=parse_retry_after(done.headers.get("retry-after")) or 60)
        if "/login" in done.url.path:
            raise PageChangedError("the watcher account could not sign in")
        self._signed_in = True
        return None

    async def __call__(self, key: WatchKey) -> ScanResult:
        if not self._signed_in and (limited := await self._login()) is not None:
            return limited
        self.requests += 1
        response = await self._client.get(
            urljoin(self._base, "/appointments"),
            params={"center": key.center, "visa": key.visa_type},
        )
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("retry-after"))
            return ScanResult(retry_after=60.0 if wait is None else wait)
        if "/login" in response.url.path:  # the session expired: next poll signs in again
            self._signed_in = False
            return ScanResult(retry_after=0.0)
        page = Page(response.text, _SELECTORS, url=str(response.url))
        ids = tuple(page.values("slot_ids"))
        if not ids and not page.has("no_slots"):
            page.one("slot_ids")  # neither slots nor the empty marker: the page changed
        at = float(page.value("portal_time")) if page.has("portal_time") else None
        return ScanResult(slots=ids, at=at)
