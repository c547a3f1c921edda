"""An httpx transport that runs the SSRF guard on every connection and pins its address."""

from __future__ import annotations

import ipaddress

import httpx

from portwright.resources.ssrf._guard import UrlGuard

__all__ = ["GuardedTransport", "guarded_client"]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks each request's URL (so each redirect hop) and connects to the checked address,
    keeping the original Host header and TLS server name."""

    def __init__(self, guard: UrlGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await self.guard.check(request.url)
        address = addresses[0]
        host = address if ipaddress.ip_address(address).version == 4 else f"[{address}]"
        pinned_url = request.url.copy_with(host=host.strip("[]"))
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
    guard: UrlGuard, *, timeout: float = 20.0, max_redirects: int = 5, user_agent: str = ""
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the guard; follows redirects."""
    headers = {"user-agent": user_agent} if user_agent else {}
    return httpx.AsyncClient(
        transport=GuardedTransport(guard),
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=timeout,
        headers=headers,
        trust_env=False,
    )
