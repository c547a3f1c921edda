"""The engines' edge (foreign errors onto the SDK tree) and politeness per site."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from curl_cffi.requests import exceptions as curl
from playwright._impl._errors import Error as PlaywrightError
from playwright._impl._errors import TargetClosedError
from playwright._impl._errors import TimeoutError as PlaywrightTimeout

from portwright.engines import Politeness, PolitenessRule, classify_status, translate_exception
from portwright.resources.tls import client_context
from portwright.sandbox import SandboxWorld
from portwright.sdk import (
    BlockedError,
    PageChangedError,
    RateLimitedError,
    TransientError,
)
from tests.engines._sites import account_site


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectTimeout("slow"), TransientError),
        (httpx.ProxyError("407"), BlockedError),
        (httpx.ConnectError("refused"), TransientError),
        (curl.ProxyError("CONNECT refused"), BlockedError),
        (curl.Timeout("28"), TransientError),
        (curl.ConnectionError("7"), TransientError),
        (PlaywrightTimeout("Timeout 30000ms exceeded."), TransientError),
        (TargetClosedError(), TransientError),
        (PlaywrightError("net::ERR_PROXY_CONNECTION_FAILED at http://x/"), BlockedError),
        (PlaywrightError("net::ERR_CONNECTION_RESET at http://x/"), TransientError),
        (PlaywrightError("Unexpected token in selector"), PageChangedError),
    ],
)
def test_foreign_exceptions_become_the_sdk_error_tree(exc: Exception, expected: type) -> None:
    """httpx, curl_cffi and Playwright failures map onto the retry policy's classes."""
    assert type(translate_exception(exc)) is expected
    assert translate_exception(ValueError("mine")) is None


def test_status_codes_map_to_error_classes() -> None:
    """429 is rate limited with Retry-After, 5xx transient, 403 and 407 blocked, others pass."""
    with pytest.raises(RateLimitedError) as limited:
        classify_status(429, "GET /", retry_after="7")
    assert limited.value.retry_after == 7
    for status, error in ((503, TransientError), (403, BlockedError), (407, BlockedError)):
        with pytest.raises(error):
            classify_status(status, "GET /")
    for status in (200, 301, 401, 404):
        classify_status(status, "GET /")


async def test_min_delay_spaces_requests_and_concurrency_is_capped() -> None:
    """Starts to one site are min_delay apart; no more than max_concurrency run at once."""
    polite = Politeness(
        PolitenessRule(),
        per_site={"http://slow": PolitenessRule(min_delay_s=0.1, max_concurrency=2)},
    )
    starts: list[float] = []
    running = peak = 0

    async def hit(site: str) -> None:
        nonlocal running, peak
        async with polite.slot(site):
            starts.append(time.monotonic())
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.05)
            running -= 1

    await asyncio.gather(*(hit("http://slow") for _ in range(5)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.09
    assert peak <= 2
    starts.clear()
    peak = 0
    await asyncio.gather(*(hit("http://fast") for _ in range(5)))
    assert peak == 5  # no spacing and no cap: all five were inside at once


async def test_a_slot_is_given_back_when_its_holder_fails_or_is_cancelled() -> None:
    """A slot is released when the body raises and when its holder is cancelled while it
    waits for the site's spacing: the site's cap is never lost to a failed request."""
    polite = Politeness(per_site={"http://one": PolitenessRule(min_delay_s=30, max_concurrency=1)})
    with pytest.raises(RuntimeError):
        async with polite.slot("http://one"):
            raise RuntimeError("the request failed")
    # the next start must wait 30 s for the spacing: cancel it while it waits
    entered = asyncio.Event()

    async def hold() -> None:
        entered.set()
        async with polite.slot("http://one"):
            raise AssertionError("the spacing should have held it back")

    waiter = asyncio.create_task(hold())
    await entered.wait()
    for _ in range(100):  # a few turns of the loop: the waiter takes the gate, then sleeps
        if polite._sites["http://one"].gate.locked():
            break
        await asyncio.sleep(0)
    assert polite._sites["http://one"].gate.locked()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not polite._sites["http://one"].gate.locked()  # given back
    fast = Politeness(per_site={"http://two": PolitenessRule(max_concurrency=1)})
    for _ in range(3):  # one slot, taken and given back in turn
        async with fast.slot("http://two"):
            assert fast._sites["http://two"].gate.locked()
    assert not fast._sites["http://two"].gate.locked()


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([account_site()], seed=4) as w:
        yield w


async def test_robots_txt_is_respected_and_cached(world: SandboxWorld) -> None:
    """Disallowed paths are refused, others allowed, robots.txt fetched once per site."""
    polite = Politeness()
    site = world.url("account")
    assert await polite.allowed(f"{site}/whoami")
    assert not await polite.allowed(f"{site}/private/x")
    assert await polite.allowed(f"{site}/private/x", respect=False)
    assert len(world.ledger("account").entries("robots")) == 1


async def test_robots_txt_fetches_share_one_tls_context(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each site's robots.txt is fetched by a client of its own; building a TLS context
    for each (loading the CA bundle, ~25 ms of CPU) made a crawl over many sites pay it
    per site. They share the process's one context: built once, however many sites."""
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        built.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    client_context.cache_clear()
    port = world.url("account").rsplit(":", 1)[1]

    async def check(url: str) -> list[str] | None:
        return None  # nothing to pin: connect as asked

    polite = Politeness()
    for host in ("127.0.0.1", "localhost"):  # two sites
        assert await polite.allowed(f"http://{host}:{port}/whoami")
        assert not await polite.allowed(f"http://{host}:{port}/private/x", guard=check)
    guarded = Politeness()
    assert await guarded.allowed(f"http://127.0.0.1:{port}/whoami", guard=check)
    assert len(built) == 1
    client_context.cache_clear()  # the next user builds a real one again


async def test_missing_and_failing_robots_txt_follow_rfc_9309() -> None:
    """A 404 robots.txt allows everything; a 5xx or unreachable one allows nothing."""

    async def answer(status: int) -> Politeness:
        async def fetch(url: str) -> tuple[int, str]:
            return status, ""

        return Politeness(robots_fetch=fetch)

    assert await (await answer(404)).allowed("http://a/x")
    assert not await (await answer(503)).allowed("http://a/x")

    async def unreachable(url: str) -> tuple[int, str]:
        raise httpx.ConnectError("down")

    assert not await Politeness(robots_fetch=unreachable).allowed("http://a/x")


async def test_robots_rules_are_matched_as_rfc_9309_says() -> None:
    """The most specific rule wins (not the first listed), Allow wins a tie, `*` and `$`
    patterns match; a group naming our user agent replaces the `*` group."""

    def serving(robots: str) -> Politeness:
        async def fetch(url: str) -> tuple[int, str]:
            return 200, robots

        return Politeness(robots_fetch=fetch)

    polite = serving(
        "User-agent: *\n"
        "Disallow: /private/\n"
        "Allow: /private/public\n"
        "Disallow: /*.pdf$\n"
        "Disallow: /tie\n"
        "Allow: /tie\n"
    )
    assert await polite.allowed("http://a/private/public/page")  # longer Allow beats Disallow
    assert not await polite.allowed("http://a/private/secret")
    assert not await polite.allowed("http://a/docs/file.pdf")
    assert await polite.allowed("http://a/docs/file.pdf?download=1")  # `$` anchors the end
    assert await polite.allowed("http://a/tie")
    assert await polite.allowed("http://a/private/secret", respect=False)

    ours = serving("User-agent: *\nDisallow: /\n\nUser-agent: portwright\nDisallow: /only-us/\n")
    assert await ours.allowed("http://a/anything")  # our group, matched case-blind, applies
    assert not await ours.allowed("http://a/only-us/x")
