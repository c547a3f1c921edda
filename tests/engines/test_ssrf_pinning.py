"""Every rung connects to the address the SSRF guard checked, never to a second lookup's.

The name is `localhost`: the test resolver answers 127.0.0.2 (allowlisted on one port,
where the "checked" listener is), while the system resolver every unpinned client would
ask answers 127.0.0.1 (where a "forbidden" listener waits on the same port). A rung that
looked the name up again would reach the forbidden listener; a pinned one reaches the
checked one. A resolver that flips to 127.0.0.1 after its first answer (DNS rebinding
between the route's check and the fetch) makes the rung's own check refuse, with the
guard's reason, before any byte leaves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator

import pytest

from portwright.engines import Politeness
from portwright.engines.browser import BrowserPool, PoolConfig
from portwright.engines.http import new_client
from portwright.engines.ladder import Ladder, LadderConfig, Session
from portwright.engines.ladder._browser import BrowserFetcher
from portwright.engines.ladder._http import CurlFetcher, FetchRequest
from portwright.resources import TwoCaptchaSolver
from portwright.resources.ssrf import UrlGuard, parse_allowlist, refusing
from portwright.sdk import ChallengeError, PermanentError
from tests.support import Listener

PAGE = '<html><head><title>checked</title></head><body><h1 class="t">checked</h1></body></html>'
ROBOTS = "User-agent: *\nDisallow: /private\n"


class FlipResolver:
    """Answers `first` once, then `then` for ever: a rebinding name."""

    def __init__(self, first: Iterable[str], then: Iterable[str]) -> None:
        self.answers = [list(first)]
        self.then = list(then)
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return self.answers.pop() if self.answers else list(self.then)


class Pair:
    """The listener the guard checked (127.0.0.2:P) and the forbidden one (127.0.0.1:P)."""

    def __init__(self, checked: Listener, forbidden: Listener) -> None:
        self.checked, self.forbidden = checked, forbidden
        self.port = checked.port
        self.url = f"http://localhost:{self.port}/page"

    def guard(self, *, flip: bool = False) -> UrlGuard:
        allow = parse_allowlist([f"127.0.0.2:{self.port}"])
        if flip:
            return UrlGuard(allow, FlipResolver(["127.0.0.2"], ["127.0.0.1"]))
        return UrlGuard(allow, FlipResolver(["127.0.0.2"], ["127.0.0.2"]))


def _pair(body: str) -> Iterator[Pair]:
    for _ in range(20):  # the port must be free on both addresses
        checked = Listener("127.0.0.2", 0, body=body, robots=ROBOTS)
        try:
            forbidden = Listener("127.0.0.1", checked.port, body="forbidden", robots="")
        except OSError:
            checked.server.server_close()
            continue
        with checked, forbidden:
            yield Pair(checked, forbidden)
        return
    pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
def pair() -> Iterator[Pair]:
    yield from _pair(PAGE)


@pytest.fixture
def solver_pair() -> Iterator[Pair]:
    """The checked listener answers like a 2captcha service (task accepted, then solved)."""
    yield from _pair('{"status": 1, "request": "answer-1"}')


def test_the_system_resolver_would_reach_the_forbidden_listener(pair: Pair) -> None:
    """The premise: an unpinned client asking the system for `localhost` gets 127.0.0.1."""
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", pair.port)}
    assert "127.0.0.1" in addresses
    assert "127.0.0.2" not in addresses


async def _no_solve(sitekey: str, url: str) -> str:
    raise AssertionError("no captcha here")


async def _route_check(guard: UrlGuard, url: str) -> None:
    """What the gateway's route check does first (it takes the resolver's first answer)."""
    assert await guard.check(url) == ["127.0.0.2"]


# -- the step's httpx client (sc.http) ---------------------------------------------------------


async def test_step_http_client_is_pinned(pair: Pair) -> None:
    async with new_client(guard=refusing(pair.guard())) as http:
        response = await http.get(pair.url)
    assert response.text == PAGE
    assert pair.checked.hits == [f"GET /page host=localhost:{pair.port}"]
    assert pair.forbidden.hits == []


async def test_step_http_client_refuses_a_rebound_name(pair: Pair) -> None:
    guard = pair.guard(flip=True)
    await _route_check(guard, pair.url)
    async with new_client(guard=refusing(guard)) as http:
        with pytest.raises(PermanentError, match=r"SSRF guard.*127\.0\.0\.1, a loopback"):
            await http.get(pair.url)
    assert pair.checked.hits == pair.forbidden.hits == []


# -- the curl rungs ----------------------------------------------------------------------------


@pytest.mark.parametrize("impersonate", [None, "chrome"])
async def test_curl_rung_is_pinned(pair: Pair, impersonate: str | None) -> None:
    fetcher = CurlFetcher(impersonate=impersonate, guard=refusing(pair.guard()))
    try:
        exchange = await fetcher.fetch(
            FetchRequest(pair.url), proxy=None, session=Session(None), solve=_no_solve
        )
    finally:
        await fetcher.aclose()
    assert "checked" in exchange.html
    assert pair.checked.hits == [f"GET /page host=localhost:{pair.port}"]
    assert pair.forbidden.hits == []


@pytest.mark.parametrize("impersonate", [None, "chrome"])
async def test_curl_rung_refuses_a_rebound_name(pair: Pair, impersonate: str | None) -> None:
    guard = pair.guard(flip=True)
    await _route_check(guard, pair.url)
    fetcher = CurlFetcher(impersonate=impersonate, guard=refusing(guard))
    try:
        with pytest.raises(PermanentError, match=r"SSRF guard.*127\.0\.0\.1"):
            await fetcher.fetch(
                FetchRequest(pair.url), proxy=None, session=Session(None), solve=_no_solve
            )
    finally:
        await fetcher.aclose()
    assert pair.checked.hits == pair.forbidden.hits == []


# -- robots.txt --------------------------------------------------------------------------------


async def test_robots_fetch_is_pinned(pair: Pair) -> None:
    """The checked site's robots.txt decides (the forbidden one would allow everything)."""
    politeness, check = Politeness(), refusing(pair.guard())
    assert await politeness.allowed(pair.url, guard=check)
    assert not await politeness.allowed(f"http://localhost:{pair.port}/private/x", guard=check)
    assert pair.checked.hits == [f"GET /robots.txt host=localhost:{pair.port}"]
    assert pair.forbidden.hits == []


async def test_robots_fetch_refuses_a_rebound_name_with_the_guards_reason(pair: Pair) -> None:
    """Through the ladder: the URL's own check passes, robots.txt's lookup flips, and the
    fetch fails with the guard's reason (not a robots verdict, not a retry)."""
    guard = pair.guard(flip=True)
    ladder = Ladder(guard=refusing(guard), config=LadderConfig(timeout_s=5.0))
    async with ladder:
        with pytest.raises(PermanentError, match=r"SSRF guard.*robots\.txt.*127\.0\.0\.1"):
            await ladder.fetch(pair.url, respect_robots=True)
    assert pair.checked.hits == pair.forbidden.hits == []


async def test_ladder_http_rung_after_robots_is_pinned(pair: Pair) -> None:
    async with Ladder(guard=refusing(pair.guard()), config=LadderConfig(timeout_s=5.0)) as ladder:
        result = await ladder.fetch(pair.url, engine="http", respect_robots=True)
    assert "checked" in result.html
    assert pair.checked.hits == [
        f"GET /robots.txt host=localhost:{pair.port}",
        f"GET /page host=localhost:{pair.port}",
    ]
    assert pair.forbidden.hits == []


# -- the browser, through its guard proxy ------------------------------------------------------


@pytest.fixture
async def browsers() -> BrowserPool:
    pool = BrowserPool(config=PoolConfig(max_browsers=1, idle_close_s=30))
    yield pool
    await pool.aclose()


async def test_browser_rung_is_pinned_by_its_guard_proxy(pair: Pair, browsers: BrowserPool) -> None:
    fetcher = BrowserFetcher(browsers, hardened=False, guard=refusing(pair.guard()))
    request = FetchRequest(pair.url, timeout_s=15.0)
    exchange = await fetcher.fetch(request, proxy=None, session=Session(None), solve=_no_solve)
    assert "checked" in exchange.html
    assert f"GET /page host=localhost:{pair.port}" in pair.checked.hits
    assert pair.forbidden.hits == []


async def test_browser_rung_refuses_a_rebound_name(pair: Pair, browsers: BrowserPool) -> None:
    guard = pair.guard(flip=True)
    await _route_check(guard, pair.url)
    fetcher = BrowserFetcher(browsers, hardened=False, guard=refusing(guard))
    request = FetchRequest(pair.url, timeout_s=15.0)
    with pytest.raises(PermanentError, match=r"SSRF guard.*127\.0\.0\.1"):
        await fetcher.fetch(request, proxy=None, session=Session(None), solve=_no_solve)
    assert pair.checked.hits == pair.forbidden.hits == []


# -- the captcha solver ------------------------------------------------------------------------


async def test_captcha_solver_calls_are_pinned(solver_pair: Pair) -> None:
    base = f"http://localhost:{solver_pair.port}"
    solver = TwoCaptchaSolver(base, "key", poll_s=0.01, guard=solver_pair.guard())
    assert await solver.solve(sitekey="sk", url="https://example.com/") == "answer-1"
    host = f"host=localhost:{solver_pair.port}"
    assert solver_pair.checked.hits == [f"POST /in.php {host}", f"GET /res.php?{_RES} {host}"]
    assert solver_pair.forbidden.hits == []


async def test_captcha_solver_refuses_a_rebound_name(solver_pair: Pair) -> None:
    """The service's name flips between the first call and the poll: the poll is refused
    (a provider failure the chain counts), and never sent."""
    guard = solver_pair.guard(flip=True)
    solver = TwoCaptchaSolver(
        f"http://localhost:{solver_pair.port}", "key", poll_s=0.01, guard=guard
    )
    with pytest.raises(ChallengeError, match=r"SSRF guard.*127\.0\.0\.1") as refused:
        await solver.solve(sitekey="sk", url="https://example.com/")
    assert refused.value.details["provider_down"] is True
    assert [hit.split(" ")[0] for hit in solver_pair.checked.hits] == ["POST"]
    assert solver_pair.forbidden.hits == []


_RES = "key=key&action=get&id=answer-1&json=1"


async def test_two_checks_pin_only_an_address_both_allowed() -> None:
    """The ladder's guard and a request's own each resolve: the pin is an address both
    answered, and answers with nothing in common are refused."""
    from portwright.resources.ssrf import all_checks

    async def first(url: str) -> list[str]:
        return ["93.184.216.34", "93.184.216.35"]

    async def same(url: str) -> list[str]:
        return ["93.184.216.35"]

    async def other(url: str) -> list[str]:
        return ["127.0.0.1"]

    async def silent(url: str) -> None:
        return None

    both = all_checks(first, silent, same)
    assert both is not None
    assert await both("http://example.test/") == ["93.184.216.35"]
    apart = all_checks(first, other)
    assert apart is not None
    with pytest.raises(PermanentError, match="resolved differently"):
        await apart("http://example.test/")
    assert all_checks(None, None) is None
