"""The HTTP engine: httpx clients with a per-job cookie session, and error translation.

httpx exceptions never leave this module raw: `translate_exception` maps them
onto the SDK's error tree, and `classify_response` does the same for status
codes (429 → rate limited, 5xx → transient, 403 → blocked).
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, TypedDict

import httpx

from portwright.sdk import BlockedError, JobError, RateLimitedError, TransientError

__all__ = [
    "CookieRow",
    "classify_response",
    "dump_cookies",
    "new_client",
    "parse_retry_after",
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
) -> httpx.AsyncClient:
    """A client for one step of one job, restoring the job's cookie session."""
    client = httpx.AsyncClient(
        timeout=timeout,
        proxy=proxy,
        follow_redirects=True,
        headers={"user-agent": USER_AGENT},
        trust_env=False,
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


def parse_retry_after(value: str | None, *, default: float = 30.0) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def classify_response(response: httpx.Response) -> None:
    """Raise the error class this response means for the job, or return for a usable one."""
    status = response.status_code
    where = f"{response.request.method} {response.request.url}"
    if status == 429:
        retry = parse_retry_after(response.headers.get("retry-after"))
        raise RateLimitedError(f"429 from {where}", retry_after=retry, status=status)
    if status in (500, 502, 503, 504) or status >= 520:
        raise TransientError(f"{status} from {where}", status=status)
    if status == 403:
        raise BlockedError(f"403 from {where}", status=status)


def translate_exception(exc: BaseException) -> JobError | None:
    """Map an httpx exception onto the error tree; None if it is not an HTTP failure."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"timeout: {exc!r}")
    if isinstance(exc, httpx.ProxyError):
        return BlockedError(f"proxy refused: {exc}")
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return TransientError(f"network error: {exc!r}")
    return None


def summarize(response: httpx.Response) -> dict[str, Any]:
    """A short, secret-free summary of a response for evidence."""
    return {
        "method": response.request.method,
        "url": str(response.request.url.copy_with(query=None)),
        "status": response.status_code,
        "elapsed_ms": round(response.elapsed.total_seconds() * 1000, 1),
        "bytes": len(response.content),
    }
