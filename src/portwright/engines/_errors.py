"""The engines' edge: every foreign exception and status code becomes the SDK's error tree.

httpx, curl_cffi and Playwright each raise their own exceptions; none leaves
an engine raw. `translate_exception` maps any of them (None for anything that
is not an engine failure), and `classify_status` maps a status code the same
way whichever engine fetched it:

    429                    → RateLimitedError (Retry-After honoured)
    500-504, 520+          → TransientError
    403, 407               → BlockedError (the edge or the proxy refused this identity)

Browser failures: a timeout or a closed/crashed target is transient (the
step retries on a fresh context); a proxy that refuses the tunnel is blocked
(rotate the identity); any other Playwright error means the page is not what
the step expects, which a person must look at (PageChangedError).
"""

from __future__ import annotations

import httpx

from portwright.resilience import parse_retry_after
from portwright.resources.ssrf import UrlRefusedError
from portwright.sdk import (
    BlockedError,
    JobError,
    PageChangedError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

__all__ = ["classify_status", "translate_exception"]

RATE_LIMITED_DEFAULT_S = 30.0  # a 429 without a usable Retry-After

BLOCK_STATUSES = frozenset({403, 407})
_PROXY_NET_ERRORS = (
    "ERR_PROXY_CONNECTION_FAILED",
    "ERR_TUNNEL_CONNECTION_FAILED",
    "ERR_PROXY_AUTH",
    "ERR_NO_SUPPORTED_PROXIES",
    "ERR_MANDATORY_PROXY_CONFIGURATION_FAILED",
)
_CLOSED_MARKERS = ("Target page, context or browser has been closed", "Browser has been closed")


def classify_status(status: int, where: str, *, retry_after: str | None = None) -> None:
    """Raise the error class a status code means for the job; return for a usable one."""
    if status == 429:
        wait = parse_retry_after(retry_after)
        if wait is None:
            wait = RATE_LIMITED_DEFAULT_S
        raise RateLimitedError(f"429 from {where}", retry_after=wait, status=status)
    if status in (500, 502, 503, 504) or status >= 520:
        raise TransientError(f"{status} from {where}", status=status)
    if status in BLOCK_STATUSES:
        raise BlockedError(f"{status} from {where}", status=status)


def translate_exception(exc: BaseException) -> JobError | None:
    """Map an engine's exception (httpx, curl_cffi, Playwright) onto the error tree."""
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, UrlRefusedError):  # a guard used bare: a refusal is no retry
        return PermanentError(
            f"url refused by the SSRF guard: {exc}", url=exc.url, reason=exc.reason
        )
    if isinstance(exc, httpx.HTTPError):
        return _from_httpx(exc)
    module = type(exc).__module__
    if module.startswith("curl_cffi"):
        return _from_curl(exc)
    if module.startswith(("playwright", "patchright")):
        return _from_playwright(exc)
    return None


def _from_httpx(exc: httpx.HTTPError) -> JobError | None:
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"timeout: {exc!r}")
    if isinstance(exc, httpx.ProxyError):
        return BlockedError(f"proxy refused: {exc}", proxy_failure=True)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return TransientError(f"network error: {exc!r}")
    return None


def _from_curl(exc: BaseException) -> JobError:
    from curl_cffi.requests import exceptions as curl

    if isinstance(exc, curl.ProxyError):
        return BlockedError(f"proxy refused: {exc}", proxy_failure=True)
    if isinstance(exc, curl.Timeout):
        return TransientError(f"timeout: {exc}")
    return TransientError(f"network error: {exc}")


def _from_playwright(exc: BaseException) -> JobError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    name = type(exc).__name__
    if name == "TimeoutError":
        return TransientError(f"browser timeout: {message}")
    if name == "TargetClosedError" or any(m in message for m in _CLOSED_MARKERS):
        return TransientError(f"browser closed: {message}", browser_closed=True)
    if any(code in message for code in _PROXY_NET_ERRORS):
        return BlockedError(f"proxy refused: {message}", proxy_failure=True)
    if "net::ERR_" in message:
        return TransientError(f"network error: {message}")
    return PageChangedError(f"browser error: {message}")
