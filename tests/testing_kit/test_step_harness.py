"""FakeStepContext against a real loopback HTTP server: redirects, cookies, statuses,
secrets, and what the step did recorded."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from portwright.sdk import (
    BlockedError,
    ChallengeError,
    PageChangedError,
    PermanentError,
    RateLimitedError,
    StepContext,
    TransientError,
)
from portwright.testing import FakeStepContext, NotFakedError

SELECTORS = {"price": "span.price::text", "title": "h1::text"}


class _Shop(http.server.BaseHTTPRequestHandler):
    """/login (POST user+password) → 303 to /account with a session cookie; /account shows
    the price to a session; /status/N answers N (429 with Retry-After: 7)."""

    def _send(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for key, value in {"content-type": "text/html", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        if self.path == "/login" and form.get("password") == ["s3cret"]:
            self._send(303, headers={"location": "/account", "set-cookie": "sid=ok; Path=/"})
        else:
            self._send(401, "<p>wrong password</p>")

    def do_GET(self) -> None:
        if self.path == "/account":
            if "sid=ok" in (self.headers.get("cookie") or ""):
                self._send(200, '<h1>Account</h1><span class="price">12.50</span>')
            else:
                self._send(200, "<h1>Please log in</h1>")
        elif self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            self._send(status, "<p>nope</p>", {"retry-after": "7"} if status == 429 else {})
        else:
            self._send(404, "<p>not found</p>")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def shop() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def log_in_and_read(sc: StepContext, shop: str) -> str:
    """A step as an adapter writes it: log in with a credential, then read a page."""
    password = await sc.secret("shop-login")
    response = sc.check(await sc.http.post(f"{shop}/login", data={"password": password}))
    if response.status_code == 401:
        raise PermanentError("login refused")
    price = sc.page(response).value("price")
    await sc.observe("price", shop, {"price": price})
    await sc.remember("logged_in", True)
    await sc.attach("note", "read the price", content_type="text/plain")
    sc.log.info("price read", price=price)
    return price


async def test_a_step_runs_against_a_loopback_server_and_is_recorded(shop: str) -> None:
    async with FakeStepContext(selectors=SELECTORS, secrets={"shop-login": "s3cret"}) as sc:
        assert await log_in_and_read(sc, shop) == "12.50"
    assert sc.record.requests == [
        ("POST", f"{shop}/login", 303),  # the redirect hop is followed and recorded
        ("GET", f"{shop}/account", 200),  # with the cookie the hop set
    ]
    assert sc.record.secrets == ["shop-login"]
    assert sc.record.observations == [("price", shop, {"price": "12.50"})]
    assert sc.record.notes == {"logged_in": True}
    assert sc.record.attachments == [("note", "read the price", "text/plain", {})]
    assert sc.log.lines == [("info", "price read", {"price": "12.50"})]


async def test_a_wrong_credential_and_a_missing_one(shop: str) -> None:
    async with FakeStepContext(selectors=SELECTORS, secrets={"shop-login": "wrong"}) as sc:
        with pytest.raises(PermanentError, match="login refused"):
            await log_in_and_read(sc, shop)
    assert sc.record.requests == [("POST", f"{shop}/login", 401)]
    async with FakeStepContext(selectors=SELECTORS) as sc:
        with pytest.raises(PermanentError, match="no credential named 'shop-login'"):
            await log_in_and_read(sc, shop)
    assert sc.record.requests == []  # it failed before any request


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimitedError),
        (500, TransientError),
        (503, TransientError),
        (522, TransientError),
        (403, BlockedError),
        (407, BlockedError),
    ],
    ids=["429", "500", "503", "522", "403", "407"],
)
async def test_page_and_check_classify_statuses_as_a_worker_does(
    shop: str, status: int, error: type[Exception]
) -> None:
    async with FakeStepContext(selectors=SELECTORS) as sc:
        response = await sc.http.get(f"{shop}/status/{status}")
        with pytest.raises(error) as raised:
            sc.check(response)
        with pytest.raises(error):
            sc.page(response)
    if status == 429:
        assert isinstance(raised.value, RateLimitedError)
        assert raised.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 404, 409, 410], ids=["400", "404", "409", "410"])
async def test_client_errors_pass_through_to_the_step(shop: str, status: int) -> None:
    async with FakeStepContext(selectors=SELECTORS) as sc:
        response = await sc.http.get(f"{shop}/status/{status}")
        assert sc.check(response) is response
        page = sc.page(response)  # read like any page: the selector finds nothing
        with pytest.raises(PageChangedError, match="'price'"):
            page.value("price")


async def test_canned_routes_answer_and_an_unknown_url_is_named() -> None:
    routes = {
        "https://shop.example/a": "<h1>A</h1>",
        "https://shop.example/b": httpx.Response(409, text="<h1>conflict</h1>"),
    }
    async with FakeStepContext(selectors=SELECTORS, routes=routes) as sc:
        assert sc.page(await sc.http.get("https://shop.example/a")).value("title") == "A"
        assert (await sc.http.get("https://shop.example/b?x=1")).status_code == 409
        with pytest.raises(httpx.ConnectError, match=r"no canned answer for GET https://shop"):
            await sc.http.get("https://shop.example/c")
    assert sc.record.requests == [
        ("GET", "https://shop.example/a", 200),
        ("GET", "https://shop.example/b?x=1", 409),
    ]


async def test_what_the_fake_cannot_do_says_so() -> None:
    async with FakeStepContext(captcha_answers={"key-1": "answer"}, notes={"sent": 1}) as sc:
        assert await sc.solve_captcha(sitekey="key-1", url="https://x.example") == "answer"
        with pytest.raises(ChallengeError, match="no solver"):
            await sc.solve_captcha(sitekey="other", url="https://x.example")
        assert sc.record.captchas == [
            ("key-1", "https://x.example"),
            ("other", "https://x.example"),
        ]
        assert await sc.recall("sent") == 1
        assert await sc.recall("absent") is None
        with pytest.raises(NotFakedError, match="no browser"):
            await sc.browser()
        with pytest.raises(NotFakedError, match="engine ladder"):
            await sc.fetch("https://x.example")
    assert (sc.job_id, sc.tenant_id, sc.step, sc.attempt) == ("job-test", "tenant-test", "step", 1)


async def read_status(sc: StepContext, url: str) -> str:
    return sc.page(await sc.http.get(url)).value("price")


async def broken(sc: StepContext) -> None:
    raise ValueError("a bug in the step")


async def test_run_step_says_what_a_worker_would_do(shop: str) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    async with FakeStepContext(selectors=SELECTORS, secrets={"shop-login": "s3cret"}) as sc:
        ok = await sc.run_step(log_in_and_read, shop)
        limited = await sc.run_step(read_status, f"{shop}/status/429")
        down = await sc.run_step(read_status, f"{shop}/status/503")
        blocked = await sc.run_step(read_status, f"{shop}/status/403")
        changed = await sc.run_step(read_status, f"{shop}/status/404")
        refused = await sc.run_step(read_status, f"http://127.0.0.1:{closed}/")
        bug = await sc.run_step(broken)
    assert (ok.value, ok.error, ok.action) == ("12.50", None, "return")
    assert [(o.error_class, o.action) for o in sc.record.outcomes[1:]] == [
        ("rate_limited", "cooldown"),
        ("transient", "retry"),
        ("blocked", "rotate"),
        ("page_changed", "operator"),
        ("transient", "retry"),  # a refused connection is a network error
        ("unexpected", "operator"),
    ]
    assert isinstance(limited.error, RateLimitedError)
    assert isinstance(down.error, TransientError)
    assert isinstance(blocked.error, BlockedError)
    assert isinstance(changed.error, PageChangedError)
    assert changed.error.selector_key == "price"
    assert isinstance(refused.error, TransientError)
    assert isinstance(bug.error, ValueError)
