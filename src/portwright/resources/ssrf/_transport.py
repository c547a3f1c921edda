"""Pinning: connect to the address the guard checked, never to a second lookup's answer.

`GuardedTransport` does it for httpx (the step client `sc.http`, robots.txt,
solver calls, webhooks); `curl_resolve` gives curl the same pin
(CURLOPT_RESOLVE), and the browser's guard proxy dials the checked address
itself. A `Check` is what these call on every request (each redirect hop): a
`UrlGuard`'s `check`, or any coroutine answering the addresses a URL may be
fetched from (None: it checked without resolving, so nothing is pinned).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import httpx

from portwright.resources.ssrf._guard import UrlGuard, UrlRefusedError, url_parts
from portwright.resources.tls import client_context
from portwright.sdk import PermanentError

__all__ = [
    "Check",
    "GuardedTransport",
    "all_checks",
    "curl_resolve",
    "guarded_client",
    "refusing",
]

Check = Callable[[str], Awaitable[Sequence[str] | None]]


def refusing(guard: UrlGuard) -> Check:
    """`guard` as a job's engines call it: the checked addresses, or a PermanentError
    naming the URL and why it was refused (a refusal is not worth a retry)."""

    async def check(url: str) -> list[str]:
        try:
            return await guard.check(url)
        except UrlRefusedError as exc:
            raise PermanentError(
                f"url refused by the SSRF guard: {exc}", url=exc.url, reason=exc.reason
            ) from None

    return check


def all_checks(*checks: Check | None) -> Check | None:
    """One check running each of `checks`; it pins to the addresses every one of them
    answered (each resolves on its own: answers that changed in between are refused)."""
    present = [c for c in checks if c is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    async def every(url: str) -> Sequence[str] | None:
        pinned: list[str] | None = None
        for check in present:
            answer = await check(url)
            if answer is None:
                continue
            pinned = list(answer) if pinned is None else [a for a in pinned if a in answer]
            if not pinned:
                raise PermanentError(
                    f"url refused by the SSRF guard: {url}: its host resolved differently "
                    "between two checks",
                    url=url,
                    reason="resolved differently between two checks",
                )
        return pinned

    return every


def curl_resolve(url: str, addresses: Sequence[str]) -> list[str]:
    """curl's CURLOPT_RESOLVE entry pinning `url`'s host and port to the first checked
    address (`HOST:PORT:ADDRESS`), so curl never looks the name up itself."""
    scheme, host, _, explicit = url_parts(url)
    port = explicit or (443 if scheme == "https" else 80)
    address = addresses[0].split("%", 1)[0]
    return [f"{host}:{port}:{f'[{address}]' if ':' in address else address}"]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks each request's URL (so each redirect hop) and connects to the checked address,
    keeping the original Host header and TLS server name."""

    def __init__(
        self, guard: UrlGuard | Check, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.guard = guard
        self._check: Check = guard.check if isinstance(guard, UrlGuard) else guard
        self.inner = inner or httpx.AsyncHTTPTransport(verify=client_context(), trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await self._check(str(request.url))
        if not addresses:  # a check that does not resolve: nothing to pin
            return await self.inner.handle_async_request(request)
        pinned_url = request.url.copy_with(host=addresses[0].split("%", 1)[0])
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = request.url.host
        pinned = httpx.Request(
            request.method,
            pinned_url,
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_client(
    guard: UrlGuard | Check,
    *,
    timeout: float | httpx.Timeout = 20.0,
    max_redirects: int = 5,
    user_agent: str = "",
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the guard, pinned; follows redirects."""
    headers = {"user-agent": user_agent} if user_agent else {}
    return httpx.AsyncClient(
        transport=GuardedTransport(guard, inner),
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=timeout,
        headers=headers,
        trust_env=False,
    )
