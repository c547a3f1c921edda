"""The HTTP engine: httpx clients with a per-job cookie session, and error translation.

httpx exceptions never leave this module raw: `translate_exception` maps them
(and the other engines' exceptions, see `portwright.engines._errors`) onto the
SDK's error tree, and `classify_response` does the same for status codes
(429 → rate limited, 5xx → transient, 403/407 → blocked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import httpx

from portwright.engines._errors import classify_status, translate_exception
from portwright.resources.ssrf import Check, GuardedTransport, UrlGuard
from portwright.resources.tls import system_context

__all__ = [
    "CookieRow",
    "classify_response",
    "dump_cookies",
    "new_client",
    "summarize",
    "translate_exception",
]

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
USER_AGENT = "Portwright/0.1 (+https://github.com/portwright)"


class CookieRow(TypedDict):
    name: str
    value: str
    domain: str
    path: str


def new_client(
    *,
    cookies: list[CookieRow] | None = None,
    proxy: str | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    on_response: Callable[[httpx.Response], Awaitable[None]] | None = None,
    guard: UrlGuard | Check | None = None,
) -> httpx.AsyncClient:
    """A client for one step of one job, restoring the job's cookie session.

    `on_response` sees every response (redirects included), e.g. to keep a summary.
    With a `guard`, every request (each redirect hop) passes it first and connects to
    the address it checked (through `proxy` too): see `portwright.resources.ssrf`.
    """
    transport: httpx.AsyncBaseTransport | None = None
    if guard is not None:
        inner = httpx.AsyncHTTPTransport(proxy=proxy, verify=system_context(), trust_env=False)
        transport, proxy = GuardedTransport(guard, inner), None
    client = httpx.AsyncClient(
        timeout=timeout,
        proxy=proxy,
        transport=transport,
        follow_redirects=True,
        headers={"user-agent": USER_AGENT},
        trust_env=False,
        verify=system_context(),
        event_hooks={"response": [on_response]} if on_response else None,
    )
    for row in cookies or []:
        client.cookies.set(row["name"], row["value"], domain=row["domain"], path=row["path"])
    return client


def dump_cookies(client: httpx.AsyncClient) -> list[CookieRow]:
    """The client's cookies as plain rows, to checkpoint with the step's result."""
    return [
        CookieRow(name=c.name, value=c.value or "", domain=c.domain, path=c.path)
        for c in client.cookies.jar
    ]


def classify_response(response: httpx.Response) -> None:
    """Raise the error class this response means for the job, or return for a usable one."""
    where = f"{response.request.method} {response.request.url}"
    classify_status(response.status_code, where, retry_after=response.headers.get("retry-after"))


def summarize(response: httpx.Response) -> dict[str, Any]:
    """A short, secret-free summary of a response for evidence (no query string, no body)."""
    try:
        size: int | None = len(response.content)
    except httpx.ResponseNotRead:
        length = response.headers.get("content-length")
        size = int(length) if length and length.isdigit() else None
    try:
        elapsed_ms: float | None = round(response.elapsed.total_seconds() * 1000, 1)
    except RuntimeError:  # not yet known while the body is unread
        elapsed_ms = None
    return {
        "method": response.request.method,
        "url": str(response.request.url.copy_with(query=None)),
        "status": response.status_code,
        "elapsed_ms": elapsed_ms,
        "bytes": size,
        "content_type": response.headers.get("content-type"),
    }
