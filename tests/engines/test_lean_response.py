"""The HTTP rungs' session reads a response the lean way (`_curl.lean_response`): what the
rungs read of it (status, reason, headers, Set-Cookie cookies, body, its text and encoding)
is what curl_cffi's own `_parse_response` reads, response by response, on raw answers with
interim responses, folded headers, odd status lines, bad cookies, charsets. Its URL is
left empty (the rungs follow redirects themselves and know the URL they asked)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from curl_cffi import CurlInfo
from curl_cffi.requests import AsyncSession

from portwright.engines.ladder import Session
from portwright.engines.ladder import _curl as lean_module
from portwright.engines.ladder._http import CurlFetcher, FetchRequest, _pinning_session
from portwright.sdk import RateLimitedError, TransientError

LATIN = "caf\u00e9 cr\u00e8me".encode("latin-1")
RAW: dict[str, bytes] = {
    "/latin": b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=ISO-8859-1\r\n"
    b"content-length: %d\r\n\r\n" % len(LATIN) + LATIN,
    "/moved": b"HTTP/1.1 302 Found\r\nlocation: /latin\r\n"
    b"set-cookie: sid=abc; Path=/; Secure\r\n"
    b"set-cookie: pref=x; Domain=example.test; Path=/shop\r\n"
    b'set-cookie: =;;\x01bad"\r\n'
    b'set-cookie: quoted="a b"\r\ncontent-length: 0\r\n\r\n',
    "/limited": b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\n"
    b"content-length: 4\r\n\r\nslow",
    "/hints": b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 200 Fine Thanks\r\nx-a: 1\r\nx-a: 2\r\nX-Folded: one\r\n two\r\n"
    b"content-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
    "/bare": b"HTTP/1.1 200 \r\ncontent-length: 7\r\n\r\n\xe2\x9c\x93 utf8",
    "/empty": b"HTTP/1.1 204 No Content\r\nset-cookie: gone=1; Max-Age=0\r\n\r\n",
    "/error": b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 120\r\n"
    b"content-type: text/html;charset=utf-8\r\ncontent-length: 2\r\n\r\nno",
    "/upper": b"HTTP/1.1 200 OK\r\nSET-Cookie: upper=1; Path=/\r\ncontent-length: 0\r\n\r\n",
    "/note": b"HTTP/1.1 200 OK\r\nx-note: set-cookie: no=1\r\ncontent-length: 0\r\n\r\n",
    # header bytes beyond ASCII: the headers' encoding found as curl_cffi finds it
    "/utf8-header": b"HTTP/1.1 200 OK\r\nx-name: caf\xc3\xa9\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 2\r\n\r\nok",
    "/latin-header": b"HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\ncontent-length: 2\r\n\r\nok",
}
# answers for the rung alone (not in RAW's comparison): a Location on a page that is no
# redirect, and a Retry-After on a 503 (it counts on a 429 only)
RUNG_ONLY: dict[str, bytes] = {
    "/located": b"HTTP/1.1 200 OK\r\nlocation: /latin\r\ncontent-length: 4\r\n\r\nhere",
    "/temporary": b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /bare\r\n"
    b"content-length: 0\r\n\r\n",
    "/no-location": b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 5\r\n\r\nstays",
    # header lines the lean parse splits itself: one without a colon, odd spacing and case
    "/no-colon": b"HTTP/1.1 200 OK\r\nx-good: 1\r\nbroken line\r\ncontent-length: 2\r\n\r\nok",
    "/spacing": b"HTTP/1.1 200 OK\r\nX-Odd:a:b:c \r\nX-ODD : \t two\r\nx-empty:\r\n"
    b"Content-Type:text/html;charset=latin-1\r\ncontent-length: 2\r\n\r\nok",
}


class RawSite:
    """A loopback server answering each path with the raw bytes of `RAW`."""

    def __init__(self) -> None:
        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    words = line.split()
                    if len(words) < 2:  # a blank line between requests, or a torn one
                        continue
                    path = words[1].decode().split("?")[0]
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    self.wfile.write(RAW.get(path) or RUNG_ONLY[path])
                    self.wfile.flush()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[RawSite]:
    raw = RawSite()
    try:
        yield raw
    finally:
        raw.close()


def _read(response: Any) -> dict[str, Any]:
    """Everything of a response the HTTP rungs (and `Response.text`) read."""
    return {
        "header_encoding": response.headers.encoding,  # read first: before any lookup
        "status": response.status_code,
        "url": response.url,
        "ok": response.ok,
        "reason": response.reason,
        "content": response.content,
        "text": response.text,
        "encoding": response.encoding,
        "headers": list(response.headers.multi_items()),
        "location": response.headers.get("location"),
        "retry_after": response.headers.get("retry-after"),
        "cookies": [(c.name, c.value, c.domain, c.path, c.secure) for c in response.cookies.jar],
    }


async def _responses(session: Any, site: RawSite) -> list[dict[str, Any]]:
    try:
        return [
            _read(await session.request("GET", site.url(path), discard_cookies=True, timeout=10))
            for path in RAW
        ]
    finally:
        await session.close()


OPTIONS: dict[str, Any] = {"trust_env": False, "allow_redirects": False}


async def test_lean_responses_read_as_curl_cffis_own(
    site: RawSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer reads the same through the rungs' session as through curl_cffi's own
    `AsyncSession`; and the lean parse did run (an info it skips stays at its default)."""
    calls: list[str] = []
    parse = lean_module.lean_response

    def spy(*args: Any) -> Any:
        calls.append(args[1].getinfo(CurlInfo.EFFECTIVE_URL).decode())
        return parse(*args)

    monkeypatch.setattr(lean_module, "lean_response", spy)
    lean = await _responses(_pinning_session()(**OPTIONS), site)
    own = await _responses(AsyncSession(**OPTIONS), site)
    assert [r.pop("url") for r in lean] == [""] * len(RAW)  # the URL is the rungs' own
    assert [r.pop("url") for r in own] == [site.url(path) for path in RAW]
    assert lean == own
    assert len(calls) == len(RAW)  # each response parsed the lean way
    assert [r["status"] for r in lean] == [200, 302, 429, 200, 200, 204, 503, 200, 200, 200, 200]
    encodings = [r["header_encoding"] for r in lean]
    assert encodings == ["ascii"] * (len(RAW) - 2) + ["utf-8", "iso-8859-1"]
    assert [h for h in lean[-2]["headers"] if h[0] == "x-name"] == [("x-name", "caf\u00e9")]
    assert {c[0] for c in lean[1]["cookies"]} >= {"sid", "quoted"}
    assert [c[:2] for c in lean[7]["cookies"]] == [("upper", "1")]
    assert lean[8]["cookies"] == []  # the name in a value is no Set-Cookie
    assert lean[3]["reason"] == "Fine Thanks"
    assert lean[0]["text"] == "caf\u00e9 cr\u00e8me"


async def test_a_session_keeping_cookies_parses_its_own_way(
    site: RawSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that keeps cookies (or a session reading infos of its own) goes through
    curl_cffi's own parse; so does every response on a curl_cffi that does not fit."""
    calls: list[int] = []
    monkeypatch.setattr(lean_module, "lean_response", lambda *a: calls.append(1))
    session = _pinning_session()(**OPTIONS)
    try:
        kept = await session.request("GET", site.url("/moved"), timeout=10)
        assert session.cookies.get("sid") == "abc"  # the session's jar took it
        assert kept.primary_port == site.port  # an info only curl_cffi's parse reads
    finally:
        await session.close()
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)
    session = _pinning_session()(**OPTIONS)
    try:
        own = await session.request("GET", site.url("/latin"), discard_cookies=True, timeout=10)
        assert own.primary_port == site.port
    finally:
        await session.close()
    assert calls == []


async def _no_solve(sitekey: str, url: str) -> str:
    raise AssertionError("no captcha here")


async def test_the_rung_answers_alike_with_the_lean_parse(
    site: RawSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain HTTP rung gives the same exchange, the same session cookies and the same
    errors with the lean parse as with curl_cffi's own (a curl_cffi that does not fit)."""

    async def run() -> tuple[list[Any], list[dict[str, Any]]]:
        fetcher = CurlFetcher()
        session = Session(None)
        out: list[Any] = []
        try:
            for path in ("/moved", "/hints", "/bare", "/limited", "/error"):
                try:
                    out.append(
                        await fetcher.fetch(
                            FetchRequest(site.url(path), timeout_s=10),
                            proxy=None,
                            session=session,
                            solve=_no_solve,
                        )
                    )
                except Exception as exc:  # the error class and details are compared
                    out.append((type(exc).__name__, str(exc), getattr(exc, "details", None)))
            return out, sorted(session.rows(), key=lambda c: sorted(c.items()))
        finally:
            await fetcher.aclose()

    lean = await run()
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)
    own = await run()
    assert lean == own
    answers = lean[0]
    assert answers[0].url == site.url("/latin")
    assert answers[0].html == "caf\u00e9 cr\u00e8me"
    assert answers[3][0] == "RateLimitedError"
    assert answers[4][0] == "TransientError"
    assert {c["name"] for c in lean[1]} >= {"sid", "quoted"}


async def test_the_rung_reads_location_and_retry_after_where_they_count(site: RawSite) -> None:
    """The rung follows a Location on a redirect status only (a page carrying one is
    answered, a redirect without one is the answer), and a 429's Retry-After is the wait
    its RateLimitedError asks for (a 503's is not read: it is transient either way)."""
    fetcher = CurlFetcher()
    session = Session(None)

    async def fetch(path: str) -> Any:
        return await fetcher.fetch(
            FetchRequest(site.url(path), timeout_s=10), proxy=None, session=session,
            solve=_no_solve,
        )  # fmt: skip

    try:
        located = await fetch("/located")
        assert (located.status, located.url, located.html) == (200, site.url("/located"), "here")
        moved = await fetch("/temporary")
        assert (moved.status, moved.url) == (200, site.url("/bare"))
        assert moved.html == "\u2713 utf"  # "/bare" says 7 bytes
        kept = await fetch("/no-location")
        assert (kept.status, kept.url, kept.html) == (301, site.url("/no-location"), "stays")
        with pytest.raises(RateLimitedError) as limited:
            await fetch("/limited")
        assert limited.value.retry_after == 7
        with pytest.raises(TransientError) as failed:
            await fetch("/error")
        assert failed.value.details["status"] == 503
    finally:
        await fetcher.aclose()


async def test_odd_header_lines_read_as_curl_cffis_own(site: RawSite) -> None:
    """Header lines the lean parse splits itself (a line without a colon, colons in a
    value, spacing and case around them, an empty value) read as curl_cffi reads them, or
    fail as they fail there."""

    async def read(session: Any) -> list[Any]:
        out: list[Any] = []
        try:
            for path in ("/no-colon", "/spacing"):
                try:
                    response = await session.request(
                        "GET", site.url(path), discard_cookies=True, timeout=10
                    )
                    out.append({**_read(response), "url": None})
                except Exception as exc:  # the error is what is compared
                    out.append((type(exc).__name__, str(exc)))
            return out
        finally:
            await session.close()

    lean = await read(_pinning_session()(**OPTIONS))
    own = await read(AsyncSession(**OPTIONS))
    assert lean == own
    assert lean[0][0] == "ConnectionError"  # curl refuses the line (the rest is parsed)
    assert lean[1]["headers"][:3] == [("X-Odd", "a:b:c"), ("X-ODD ", "two"), ("x-empty", "")]
