"""The scrape sites: a catalogue, JS rendering, a browser check, a captcha wall, rate limits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from parsel import Selector
from playwright.sync_api import Browser, sync_playwright

from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium
from portwright.sandbox import SandboxWorld, captcha, scrape

SEED = 21
BROWSER_HEADERS = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.9",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "sec-fetch-site": "none",
}


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(scrape.specs() + captcha.specs(), seed=SEED) as w:
        yield w


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True
        )
        yield chromium
        chromium.close()


def test_catalogue_paginates_by_next_links(world: SandboxWorld) -> None:
    """Following `a.next` walks distinct 50-product pages, and the last page has no `a.next`."""
    base = world.url("scrape-static")
    seen: list[str] = []
    url: str | None = f"{base}/catalog"
    with httpx.Client(headers={"x-sandbox-proxy-identity": "pager"}) as client:
        for _ in range(3):
            assert url is not None
            page = Selector(client.get(url).text)
            seen += page.css("li.product-card::attr(data-product-id)").getall()
            href = page.css("nav.pagination a.next::attr(href)").get()
            url = None if href is None else base + href
        assert seen == [str(i) for i in range(1, 151)]
        last = Selector(client.get(f"{base}/catalog?page=100").text)
        assert last.css("ul.products::attr(data-pages)").get() == "100"
        assert last.css("a.next").get() is None
        assert last.css("a.prev::attr(href)").get() == "/catalog?page=99"
        assert client.get(f"{base}/catalog?page=101").status_code == 404
        assert client.get(f"{base}/catalog?page=zero").status_code == 400


def test_product_extracts_by_css_and_xpath(world: SandboxWorld) -> None:
    """CSS and XPath rules read the same fields from a product page, matching its listing card."""
    base = world.url("scrape-static")
    headers = {"x-sandbox-proxy-identity": "extractor"}
    page = Selector(httpx.get(f"{base}/product/17", headers=headers).text)
    title = page.css("h1.title::text").get()
    assert title
    assert title == page.xpath("//h1[@class='title']/text()").get()
    price = page.css("span.price::text").get()
    assert price
    assert price.startswith("£")
    assert page.xpath("//span[@class='price']/@data-amount").get() == price.removeprefix("£")
    assert 2 <= len(page.css("ul.tags li::text").getall()) <= 4
    specs = dict(
        zip(
            page.css("table.specs th::text").getall(),
            page.css("table.specs td::text").getall(),
            strict=True,
        )
    )
    assert specs["SKU"] == "SKU-00017"
    assert page.xpath("//table[@class='specs']//tr[th='SKU']/td/text()").get() == "SKU-00017"
    card = Selector(httpx.get(f"{base}/catalog?page=1", headers=headers).text)
    assert card.css("li.product-card[data-product-id='17'] a.product-link::text").get() == title
    assert httpx.get(f"{base}/product/5001", headers=headers).status_code == 404


def test_catalogue_is_deterministic_under_the_seed(world: SandboxWorld) -> None:
    """Another world with the same seed serves the same product; another seed a different one."""

    def title(w: SandboxWorld) -> str | None:
        return (
            Selector(httpx.get(f"{w.url('scrape-static')}/product/4321").text)
            .css("h1.title::text")
            .get()
        )

    with SandboxWorld(scrape.specs()[:1], seed=SEED) as same:
        assert title(same) == title(world)
    with SandboxWorld(scrape.specs()[:1], seed=SEED + 1) as other:
        assert title(other) != title(world)


def test_rate_limit_is_per_identity(world: SandboxWorld) -> None:
    """An identity past its burst gets 429 with Retry-After while another identity still passes."""
    admin = f"{world.admin_url}/services/scrape-static/options"
    before = httpx.get(admin).json()
    httpx.patch(admin, json={"rate_per_s": 0.2, "burst": 3}).raise_for_status()
    try:
        url = f"{world.url('scrape-static')}/product/1"
        busy = {"x-sandbox-proxy-identity": "dc-busy"}
        assert [httpx.get(url, headers=busy).status_code for _ in range(3)] == [200, 200, 200]
        limited = httpx.get(url, headers=busy)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 5
        assert Selector(limited.text).css("#rate-limited").get() is not None
        fresh = httpx.get(url, headers={"x-sandbox-proxy-identity": "dc-fresh"})
        assert fresh.status_code == 200
    finally:
        httpx.patch(admin, json=before).raise_for_status()


def test_js_page_is_empty_to_a_plain_http_client(world: SandboxWorld) -> None:
    """A plain HTTP client gets the JS site's shell with no product data; only the API has it."""
    base = world.url("scrape-js")
    product = httpx.get(f"{base}/api/product/42").json()
    shell = httpx.get(f"{base}/product/42")
    assert shell.status_code == 200
    page = Selector(shell.text)
    assert page.css("#app[data-state=loading]").get() is not None
    assert page.css("h1.title").get() is None
    assert product["title"] not in shell.text
    assert product["price_text"] not in shell.text


@pytest.mark.browser
def test_js_page_renders_in_chromium(world: SandboxWorld, browser: Browser) -> None:
    """Chromium runs the JS site's script and shows the product and listing the API describes."""
    base = world.url("scrape-js")
    product = httpx.get(f"{base}/api/product/42").json()
    page = browser.new_page()
    try:
        page.goto(f"{base}/product/42")
        page.wait_for_selector("#app[data-state=ready] h1.title")
        assert page.inner_text("h1.title") == product["title"]
        assert page.inner_text("span.price") == product["price_text"]
        assert page.locator("ul.tags li").all_inner_texts() == product["tags"]
        page.goto(f"{base}/catalog?page=2")
        page.wait_for_selector("#app[data-state=ready]")
        assert page.locator("li.product-card").count() == 50
        assert page.get_attribute("a.next", "href") == "/catalog?page=3"
    finally:
        page.close()


def test_guarded_page_refuses_plain_http_clients(world: SandboxWorld) -> None:
    """Plain httpx is blocked (403 `#blocked`); browser-like headers alone meet the challenge."""
    url = f"{world.url('scrape-guarded')}/product/3"
    plain = httpx.get(url)
    assert plain.status_code == 403
    assert Selector(plain.text).css("#blocked::attr(data-reason)").get() == "headers"
    dressed = httpx.get(url, headers=BROWSER_HEADERS)
    assert dressed.status_code == 403
    page = Selector(dressed.text)
    assert page.css("#challenge").get() is not None
    assert page.css("h1.title").get() is None
    forged = httpx.get(url, headers=BROWSER_HEADERS | {"cookie": "pw_guard=1-abc.2.0"})
    assert forged.status_code == 403


@pytest.mark.browser
def test_guarded_page_renders_in_chromium(world: SandboxWorld, browser: Browser) -> None:
    """Chromium passes the check by running the challenge script; strict mode blocks automation."""
    base = world.url("scrape-guarded")
    context = browser.new_context()
    try:
        page = context.new_page()
        first = page.goto(f"{base}/product/3")
        assert first is not None
        assert first.status == 403
        page.wait_for_selector("h1.title")
        assert page.inner_text("h1.title")
        assert any(c["name"] == scrape.GUARD_COOKIE for c in context.cookies())
        page.goto(f"{base}/catalog?page=2")
        assert page.locator("li.product-card").count() == 50
    finally:
        context.close()
    options = f"{world.admin_url}/services/scrape-guarded/options"
    httpx.patch(options, json={"reject_automation": True}).raise_for_status()
    try:
        page = browser.new_page()
        page.goto(f"{base}/product/3")
        assert page.get_attribute("#blocked", "data-reason") == "automation"
        page.close()
    finally:
        httpx.patch(options, json={"reject_automation": False}).raise_for_status()


def _solve(world: SandboxWorld, sitekey: str, pageurl: str) -> str:
    """Ask the sandbox solver for the answer, as a scraper would (2captcha protocol)."""
    solver = world.url("captcha-solver")
    params = {"key": "sandbox-key", "json": "1"}
    task = httpx.post(
        f"{solver}/in.php",
        data=params | {"method": "userrecaptcha", "googlekey": sitekey, "pageurl": pageurl},
    ).json()
    assert task["status"] == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        res = httpx.get(
            f"{solver}/res.php", params=params | {"action": "get", "id": task["request"]}
        )
        body = res.json()
        if body["status"] == 1:
            return str(body["request"])
        assert body["request"] == "CAPCHA_NOT_READY"
        time.sleep(0.05)
    raise AssertionError("solver never answered")


def test_captcha_wall_opens_after_a_correct_answer_only(world: SandboxWorld) -> None:
    """A wrong answer gets the wall again; a solved captcha sets a pass and opens the pages."""
    world.context("captcha-solver").options["solve_time_s"] = 0.0
    base = world.url("scrape-captcha")
    with httpx.Client(base_url=base) as client:
        wall = client.get("/product/9")
        assert wall.status_code == 403
        page = Selector(wall.text)
        assert page.css("div.captcha[data-sitekey]").get() is not None
        form = {
            "next": page.css("input[name=next]::attr(value)").get(),
            "captcha_id": page.css("input[name=captcha_id]::attr(value)").get(),
            "captcha_answer": "WRONG",
        }
        again = client.post("/captcha/verify", data=form)
        assert again.status_code == 403
        assert Selector(again.text).css("p.error.captcha-wrong").get() is not None
        assert scrape.PASS_COOKIE not in client.cookies
        page = Selector(again.text)
        sitekey = page.css("div.captcha::attr(data-sitekey)").get()
        assert sitekey
        form["captcha_id"] = page.css("input[name=captcha_id]::attr(value)").get()
        form["captcha_answer"] = _solve(world, sitekey, f"{base}/product/9")
        opened = client.post("/captcha/verify", data=form)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/product/9"
        assert scrape.PASS_COOKIE in client.cookies
        product = client.get("/product/9")
        assert product.status_code == 200
        assert Selector(product.text).css("h1.title::text").get()
        assert client.get("/catalog?page=3").status_code == 200
        replay = httpx.post(f"{base}/captcha/verify", data=form)
        assert replay.status_code == 403
