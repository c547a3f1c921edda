"""The HTTP rungs' curl handles set options and read infos the lean way (`_curl.lean`):
what goes on the wire and what comes back read exactly as with curl_cffi's own methods,
and nothing of one request stays on a pooled handle for the next."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from curl_cffi import Curl, CurlError, CurlInfo, CurlOpt
from curl_cffi.curl import ffi  # type: ignore[attr-defined]

from portwright.engines.ladder import Session
from portwright.engines.ladder import _curl as lean_module
from portwright.engines.ladder._curl import lean, lean_class
from portwright.engines.ladder._http import CurlFetcher, FetchRequest
from portwright.resources.ssrf import UrlGuard, parse_allowlist, refusing

PAGE = b"<html><head><title>lean</title></head><body>ok</body></html>"


class Recorder:
    """A loopback HTTP server noting each request's method, path and headers in order;
    `/set` answers with a cookie, `/moved` redirects to `/page`."""

    def __init__(self) -> None:
        seen: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen.append((self.command, self.path, list(self.headers.items())))
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("location", "/page")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                if self.path == "/set":
                    self.send_header("set-cookie", "sid=secret-1; Path=/")
                self.send_header("content-length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    site = Recorder()
    try:
        yield site
    finally:
        site.close()


def _guard(port: int) -> Any:
    allow = parse_allowlist([f"127.0.0.1:{port}"])

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    return refusing(UrlGuard(allow, resolve))


async def _no_solve(sitekey: str, url: str) -> str:
    raise AssertionError("no captcha here")


async def _fetch_all(
    recorder: Recorder, impersonate: str | None, paths: list[str]
) -> tuple[list[Any], set[type]]:
    """The exchanges, and the classes of the handles the session pooled for them."""
    fetcher = CurlFetcher(impersonate=impersonate, guard=_guard(recorder.port))
    try:
        answers = [
            await fetcher.fetch(
                FetchRequest(recorder.url(path), timeout_s=10),
                proxy=None,
                session=Session(None),
                solve=_no_solve,
            )
            for path in paths
        ]
        pool = fetcher._clients[None].pool
        handles = {type(h) for h in [pool.get_nowait() for _ in range(pool.qsize())] if h}
        return answers, handles
    finally:
        await fetcher.aclose()


def test_this_curl_cffi_gets_lean_handles() -> None:
    """The premise of the tests below: the installed curl_cffi fits the tables."""
    cls = lean_class()
    assert cls is not None
    curl = Curl()
    try:
        assert type(lean(curl)) is cls
        assert lean(curl) is curl  # the same handle, its class swapped
    finally:
        curl.close()


@pytest.mark.parametrize("impersonate", [None, "chrome"])
async def test_lean_handles_send_what_curl_cffis_own_methods_send(
    recorder: Recorder, impersonate: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request's method, path, headers (names, values, order: user agent, Accept-
    Encoding, a browser's headers when impersonating) and each answer are the same with
    lean handles as with curl_cffi's `Curl` methods, on both HTTP rungs, redirects too."""
    paths = ["/page", "/moved", "/set", "/page"]
    lean_answers, lean_handles = await _fetch_all(recorder, impersonate, paths)
    lean_seen, recorder.seen[:] = list(recorder.seen), []
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)  # curl_cffi's own methods
    plain_answers, plain_handles = await _fetch_all(recorder, impersonate, paths)
    assert lean_handles == {lean_class()}
    assert plain_handles == {Curl}
    assert lean_seen == recorder.seen
    assert len(lean_seen) == 5  # /moved was followed to /page
    assert lean_answers == plain_answers
    assert [a.status for a in lean_answers] == [200, 200, 200, 200]
    assert lean_answers[1].url == recorder.url("/page")


@pytest.mark.parametrize("impersonate", [None, "chrome"])
async def test_a_pooled_lean_handle_keeps_nothing_of_the_request_before(
    recorder: Recorder, impersonate: str | None
) -> None:
    """The same pooled handle serves each request in turn: a cookie one response set is
    not sent with the next request of another session (cookies are the session's, never
    the handle's), and the pin and headers of one request do not stay for the next."""
    fetcher = CurlFetcher(impersonate=impersonate, guard=_guard(recorder.port))
    try:
        first = Session(None)
        await fetcher.fetch(
            FetchRequest(recorder.url("/set"), timeout_s=10),
            proxy=None,
            session=first,
            solve=_no_solve,
        )
        assert [row["name"] for row in first.rows()] == ["sid"]  # the session got it
        await fetcher.fetch(
            FetchRequest(recorder.url("/page"), timeout_s=10),
            proxy=None,
            session=Session(None),
            solve=_no_solve,
        )
        carried = Session(None)
        carried.update(first.rows())
        await fetcher.fetch(
            FetchRequest(recorder.url("/page"), timeout_s=10),
            proxy=None,
            session=carried,
            solve=_no_solve,
        )
    finally:
        await fetcher.aclose()
    cookies = [
        next((v for k, v in headers if k.lower() == "cookie"), None)
        for _, _, headers in recorder.seen
    ]
    assert cookies == [None, None, "sid=secret-1"]


def _perform(curl: Curl, url: str) -> bytes:
    body = BytesIO()
    curl.setopt(CurlOpt.URL, url)
    curl.setopt(CurlOpt.WRITEDATA, body)
    curl.setopt(CurlOpt.TIMEOUT_MS, 10_000)
    curl.setopt(CurlOpt.ACCEPT_ENCODING, "gzip")
    curl.perform()
    return body.getvalue()


def _answer(call: Any) -> Any:
    try:
        return call()
    except Exception as exc:
        return type(exc), getattr(exc, "code", None)


def test_lean_infos_read_as_curl_cffi_reads_them(recorder: Recorder) -> None:
    """Every info of a performed handle the lean method reads (strings, numbers, sizes,
    times) reads the same from it as from curl_cffi's own `Curl.getinfo`, and a list (the
    redirect history) comes from curl_cffi's own."""
    curl = lean(Curl())
    try:
        assert _perform(curl, recorder.url("/moved")) == b""
        compared = 0
        # strings, numbers, times, sizes: the kinds the lean method reads itself (lists and
        # sockets go to curl_cffi's, and some of those cannot be read on any handle)
        for info in [
            i for i in CurlInfo if i & 0xF00000 in (0x100000, 0x200000, 0x300000, 0x600000)
        ]:
            assert _answer(lambda i=info: curl.getinfo(i)) == _answer(
                lambda i=info: Curl.getinfo(curl, i)
            ), info
            compared += 1
        assert compared > 20
        assert curl.getinfo(CurlInfo.REDIRECT_HISTORY) == Curl.getinfo(
            curl, CurlInfo.REDIRECT_HISTORY
        )
        assert curl.getinfo(CurlInfo.RESPONSE_CODE) == 302
        assert curl.getinfo(CurlInfo.EFFECTIVE_URL) == recorder.url("/moved").encode()
    finally:
        curl.close()


def test_lean_options_fail_as_curl_cffi_fails() -> None:
    """An option curl refuses raises curl_cffi's own error, with its code, both ways."""
    lean_curl, plain = lean(Curl()), Curl()
    try:
        for option, value in [(CurlOpt.HTTP_VERSION, 999), (CurlOpt.SSLVERSION, 999)]:
            with pytest.raises(CurlError) as lean_error:
                lean_curl.setopt(option, value)
            with pytest.raises(CurlError) as plain_error:
                plain.setopt(option, value)
            assert lean_error.value.code == plain_error.value.code
        assert lean_curl.setopt(CurlOpt.URL, "http://example.invalid/") == 0
    finally:
        lean_curl.close()
        plain.close()


def test_a_curl_cffi_that_does_not_fit_keeps_its_own_handles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)
    curl = Curl()
    try:
        assert type(lean(curl)) is Curl
    finally:
        curl.close()


LISTED = {
    CurlOpt.RESOLVE,
    CurlOpt.HTTPHEADER,
    CurlOpt.WRITEDATA,
    CurlOpt.HEADERDATA,
    CurlOpt.CAINFO,
}


def _perform_listed(curl: Curl, port: int) -> tuple[bytes, list[bytes]]:
    """A GET of `/page` on a name only the handle's RESOLVE entry knows, with header lines
    of its own: the body, and the header lines curl wrote (the Date line left out)."""
    body, head = BytesIO(), BytesIO()
    curl.setopt(CurlOpt.URL, f"http://pinned.invalid:{port}/page")
    curl.setopt(CurlOpt.RESOLVE, [f"pinned.invalid:{port}:127.0.0.1"])
    curl.setopt(CurlOpt.HTTPHEADER, [b"x-one: 1", b"x-two: 2"])
    curl.setopt(CurlOpt.HTTPHEADER, [b"x-three: 3"])  # appended, as curl_cffi appends
    curl.setopt(CurlOpt.WRITEDATA, body)
    curl.setopt(CurlOpt.HEADERDATA, head)
    curl.setopt(CurlOpt.TIMEOUT_MS, 10_000)
    assert not curl._is_cert_set
    curl.setopt(CurlOpt.CAINFO, curl._cacert)  # noted as set: perform sets none of its own
    assert curl._is_cert_set
    # the handle keeps the callbacks' contexts and the lists, for its cleanup to free
    assert curl._write_handle is not None
    assert curl._header_handle is not None
    assert ffi.NULL not in (curl._headers, curl._resolve)
    curl.perform()
    assert curl._headers == curl._resolve == ffi.NULL  # freed by perform's cleanup
    lines = [line for line in head.getvalue().splitlines() if not line.startswith(b"Date:")]
    return body.getvalue(), lines


def test_lean_buffers_and_lists_set_as_curl_cffi_sets_them(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body and header buffers, the header and resolve lists and the CA bundle, set by
    the lean method itself (curl_cffi's `setopt` is not called for them), bring the same body and
    header lines, send the same headers to the pinned address, and leave the handle as
    curl_cffi's own leaves it (lists its cleanup frees), nothing of them on the next request."""
    own_setopt = Curl.setopt
    delegated: list[Any] = []

    def spy(self: Curl, option: Any, value: Any) -> int:
        if type(self) is not Curl and option in LISTED:
            delegated.append(option)
        return own_setopt(self, option, value)

    monkeypatch.setattr(Curl, "setopt", spy)
    lean_curl, plain = lean(Curl()), Curl()
    try:
        answers = [_perform_listed(curl, recorder.port) for curl in (lean_curl, plain)]
        assert answers[0] == answers[1]
        assert answers[0][0] == PAGE
        assert delegated == []  # every option above set the lean way
        sent = [[(k.lower(), v) for k, v in headers] for _, _, headers in recorder.seen]
        assert sent[0] == sent[1]
        assert [h for h in sent[0] if h[0].startswith("x-")] == [
            ("x-one", "1"),
            ("x-two", "2"),
            ("x-three", "3"),
        ]
        lean_curl.reset()  # as the pool's release does
        assert _perform(lean_curl, recorder.url("/page")) == PAGE
        assert not [h for h in recorder.seen[-1][2] if h[0].lower().startswith("x-")]
    finally:
        lean_curl.close()
        plain.close()
