"""The HTTP rungs, both on curl_cffi: plain (our own user agent), and impersonating Chrome.

libcurl does the HTTP work in C (several times the throughput of a pure
Python client on the same CPU); the second rung adds a browser's TLS, HTTP/2
and header fingerprint. One curl session per proxy and rung is shared by
all fetches (its connections are reused); cookies never go into it: each
request carries its session's cookies and hands back what the site set.
Redirects are followed here, so the optional guard sees every URL, and each
request connects to the address the guard checked (CURLOPT_RESOLVE, set on the
request's own curl handle: curl does not look the name up again; through a
proxy, the proxy resolves); a captcha
form is answered when its answer can be posted back; the SDK's error classes
are raised for what was met.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from portwright.engines._errors import classify_status
from portwright.engines.http import USER_AGENT
from portwright.engines.ladder._extract import ExtractRule
from portwright.engines.ladder._session import Session
from portwright.engines.ladder._signals import ChallengeForm, find_challenge
from portwright.resources.proxies import Proxy
from portwright.resources.ssrf import all_checks, curl_resolve
from portwright.sdk import ChallengeError, PermanentError

__all__ = ["CurlFetcher", "Exchange", "FetchRequest", "Guard", "Solve", "guards_of"]

# An SSRF check: the addresses the URL may be fetched from (the rung connects to the
# first), None when it checked without resolving; raises to refuse.
Guard = Callable[[str], Awaitable[Sequence[str] | None]]
Solve = Callable[[str, str], Awaitable[str]]
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PIN: ContextVar[list[str] | None] = ContextVar("portwright_curl_pin", default=None)


_LEAN_KWARGS = frozenset({"data", "headers", "timeout", "discard_cookies"})


def _cookie_only(headers: Any) -> bool:
    """Whether a request's `headers` are the rungs' own: a dict of one non-empty Cookie."""
    return (
        type(headers) is dict
        and headers.keys() == {"cookie"}
        and isinstance(headers["cookie"], str)
        and headers["cookie"] != ""
    )


@functools.cache
def _pinning_session() -> Any:
    """curl_cffi's AsyncSession whose requests carry the CURLOPT_RESOLVE entries of `_PIN`
    (set by the task sending it): curl_cffi takes curl options per session only, and a
    pooled handle is reset when released, so the pin lives for that one request. Its
    handles set options and read infos the lean way (`_curl.lean`), the rungs' GETs set
    their options without curl_cffi's general request builder (`_curl.lean_get`), and it
    reads of a response only what the rungs use (`_curl.lean_response`)."""
    from curl_cffi import CurlOpt
    from curl_cffi.requests import AsyncSession

    from portwright.engines.ladder import _curl

    class PinningSession(AsyncSession):  # type: ignore[type-arg]
        async def pop_curl(self) -> Any:
            curl = _curl.lean(await super().pop_curl())
            pin = _PIN.get()
            if pin:
                curl.setopt(CurlOpt.RESOLVE, pin)
            return curl

        async def request(self, method: Any, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
            headers = kwargs.get("headers")
            timeout: Any = kwargs.get("timeout")
            if (
                method == "GET"
                and kwargs.keys() <= _LEAN_KWARGS
                and kwargs.get("data") is None
                and kwargs.get("discard_cookies") is True
                and (headers is None or _cookie_only(headers))
                and type(timeout) in (int, float)
            ):
                plan = _curl.lean_plan(self)
                if plan is not None and not self.cookies:  # nothing the session would add
                    return await _curl.lean_get(self, plan, url, headers, timeout)
            return await super().request(method, url, **kwargs)

        def _parse_response(
            self,
            curl: Any,
            buffer: Any,
            header_buffer: Any,
            default_encoding: Any,
            discard_cookies: bool,
        ) -> Any:
            lean = (discard_cookies or self.discard_cookies) and not self.curl_infos
            if lean and _curl.lean_class() is not None:  # this curl_cffi fits
                return _curl.lean_response(self, curl, buffer, header_buffer, default_encoding)
            return super()._parse_response(
                curl, buffer, header_buffer, default_encoding, discard_cookies
            )

    return PinningSession


def warm() -> None:
    """Import and build what the HTTP rungs' first page would (curl_cffi: ~0.1 s of CPU;
    the HTML parser), so a worker pays it when it starts rather than in its first fetches,
    where it stalls every request on its event loop (a batch's items start at once)."""
    from portwright.engines.ladder._extract import parse, title_of

    _pinning_session()
    title_of(parse("<html><head><title>warm</title></head></html>"))


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What one fetch asks of a rung."""

    url: str
    wait_for: str | None = None
    extract: Mapping[str, ExtractRule] = field(default_factory=dict)
    screenshot: bool = False
    timeout_s: float = 30.0
    guard: Guard | None = None  # this request's own SSRF guard, on top of the fetcher's
    trace: bool | None = None  # a Playwright trace of browser rungs (None: the ladder's default)


def guards_of(request: FetchRequest, own: Guard | None) -> Guard | None:
    """One guard running the fetcher's and the request's (None when neither is set),
    answering the addresses both allowed."""
    return all_checks(own, request.guard)


@dataclass(frozen=True, slots=True)
class Exchange:
    """What a rung brought back."""

    status: int
    url: str
    html: str
    screenshot: bytes | None = None
    captcha_solved: bool = False


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    url: str
    text: str
    retry_after: str | None


def _check(answer: _Answer, max_bytes: int) -> ChallengeForm | None:
    """Raise for a block, rate limit or 5xx; return a captcha form to solve; else None."""
    if answer.status >= 400 or "data-sitekey" in answer.text:
        challenge = find_challenge(answer.text[:max_bytes], answer.url)
        if challenge is not None:
            return challenge
    classify_status(answer.status, answer.url, retry_after=answer.retry_after)
    return None


class CurlFetcher:
    """A rung over curl_cffi; `impersonate` (e.g. "chrome") makes it the hardened HTTP rung."""

    def __init__(
        self,
        *,
        impersonate: str | None = None,
        user_agent: str = USER_AGENT,
        max_bytes: int = 5_000_000,
        captcha_attempts: int = 2,
        guard: Guard | None = None,
    ) -> None:
        self.impersonate = impersonate
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.captcha_attempts = captcha_attempts
        self.guard = guard
        self._clients: dict[str | None, Any] = {}

    def _client(self, proxy: Proxy | None) -> Any:
        key = None if proxy is None else proxy.url
        client = self._clients.get(key)
        if client is None:
            from curl_cffi import CurlHttpVersion

            options: dict[str, Any] = {
                "proxy": key,
                "trust_env": False,
                "allow_redirects": False,
                "max_clients": 64,
            }
            if self.impersonate:  # as Chrome: HTTP/2 over TLS only, never an h2c upgrade
                options |= {"impersonate": self.impersonate, "http_version": CurlHttpVersion.V2TLS}
            else:
                options |= {
                    "headers": {"user-agent": self.user_agent},
                    "http_version": CurlHttpVersion.V1_1,
                }
            client = self._clients[key] = _pinning_session()(**options)
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def fetch(
        self, request: FetchRequest, *, proxy: Proxy | None, session: Session, solve: Solve
    ) -> Exchange:
        client = self._client(proxy)
        guard = guards_of(request, self.guard)

        async def send(method: str, url: str, data: Mapping[str, str] | None) -> _Answer:
            for _ in range(_MAX_REDIRECTS + 1):
                pin = None
                if guard is not None:
                    addresses = await guard(url)
                    if addresses and proxy is None:
                        pin = curl_resolve(url, addresses)
                cookie = session.cookie_header(url)
                token = _PIN.set(pin)
                try:
                    response = await client.request(
                        method,
                        url,
                        data=data,
                        headers={"cookie": cookie} if cookie else None,
                        timeout=request.timeout_s,
                        discard_cookies=True,
                    )
                finally:
                    _PIN.reset(token)
                jar = response.cookies.jar
                if jar:  # a cookie without a domain is the host's
                    host = urlsplit(url).hostname or ""
                    session.update(
                        {
                            "name": c.name,
                            "value": c.value or "",
                            "domain": c.domain or host,
                            "path": c.path,
                        }
                        for c in jar
                    )
                status = response.status_code
                # the headers read only where they count (a lookup scans every header line)
                location = response.headers.get("location") if status in _REDIRECTS else None
                if location:
                    if status in (301, 302, 303):
                        method, data = "GET", None
                    url = urljoin(url, location)
                    continue
                # Retry-After counts on a 429 only (`classify_status`)
                retry_after = response.headers.get("retry-after") if status == 429 else None
                return _Answer(status, url, response.text, retry_after)
            raise PermanentError(f"too many redirects from {request.url}")

        answer = await send("GET", request.url, None)
        solved = False
        for _ in range(self.captcha_attempts + 1):
            challenge = _check(answer, self.max_bytes)
            if challenge is None:
                html = answer.text[: self.max_bytes]
                return Exchange(answer.status, answer.url, html, None, solved)
            token = await solve(challenge.sitekey, answer.url)
            data = dict(challenge.fields) | {challenge.answer_field: token}
            answer = await send(challenge.method, challenge.action, data)
            solved = True
        raise ChallengeError(f"the captcha answer was refused on {request.url}", url=request.url)
