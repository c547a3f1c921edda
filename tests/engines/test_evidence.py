"""Evidence of browser steps: screenshot, DOM, timings, one trace per job, secrets masked."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from parsel import Selector

from portwright.engines.browser import (
    MASK,
    BrowserPool,
    JobArtifacts,
    Masker,
    PoolConfig,
    StepBrowser,
    capture_page,
    merge_trace,
    trace_ordinals,
)
from portwright.engines.ladder import Rule, find_challenge, unrendered
from portwright.engines.ladder._http import CurlFetcher, FetchRequest
from portwright.engines.ladder._session import Session
from portwright.resources import ProfilePool
from portwright.resources.vault import MasterKey, Vault
from portwright.sandbox import SandboxWorld, scrape
from portwright.sdk import BlockedError
from portwright.store import Store
from portwright.testing import InMemoryBlobStore
from tests.engines._sites import account_site

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
SECRET = "correct-horse-battery"


class ListSink:
    """An evidence sink keeping what it was given."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes | str, str, dict[str, Any]]] = []

    async def attach(self, kind: str, data: bytes | str, *, content_type: str, **meta: Any) -> str:
        self.items.append((kind, data, content_type, meta))
        return f"ev-{len(self.items)}"

    def kinds(self) -> list[str]:
        return [kind for kind, *_ in self.items]


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([account_site(), *scrape.specs()], seed=6) as w:
        yield w


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[BrowserPool]:
    async with BrowserPool(config=PoolConfig(max_browsers=1)) as shared:
        yield shared


async def test_a_page_capture_masks_secrets_in_dom_and_screenshot(
    pool: BrowserPool, world: SandboxWorld
) -> None:
    """The DOM has the secret replaced; the screenshot is a PNG; timings and URL are kept."""
    async with pool.context() as lease:
        page = await lease.new_page()
        await page.goto(f"{world.url('account')}/form")
        await page.fill("#email", SECRET)
        await page.evaluate(f"document.title = 'hello {SECRET}'")
        await page.evaluate(f"document.body.setAttribute('data-x', '{SECRET}')")
        evidence = await capture_page(page, Masker.of([SECRET]))
    assert SECRET not in evidence.html
    assert MASK in evidence.html
    assert evidence.title == f"hello {MASK}"
    assert evidence.screenshot is not None
    assert evidence.screenshot.startswith(b"\x89PNG")
    assert evidence.url.endswith("/form")
    assert "load_ms" in evidence.timings


async def test_traces_merge_into_one_job_trace_with_secrets_masked() -> None:
    """Each chunk becomes the next ordinal; shared resources are stored once; secrets masked."""

    def chunk(n: int) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("trace.trace", json.dumps({"step": n, "typed": SECRET}))
            zf.writestr("trace.network", "{}")
            zf.writestr("resources/abc.html", f"<p>{SECRET}</p>")
            zf.writestr(f"screencast/page@{n}.jpeg", b"\xff\xd8")
        return out.getvalue()

    masker = Masker.of([SECRET])
    job = merge_trace(None, chunk(1), masker)
    job = merge_trace(job, chunk(2), masker)
    assert trace_ordinals(job) == [1, 2]
    with zipfile.ZipFile(io.BytesIO(job)) as zf:
        names = zf.namelist()
        assert names.count("resources/abc.html") == 1
        assert {"1-trace.trace", "2-trace.network", "screencast/page@2.jpeg"} <= set(names)
        for name in names:
            assert SECRET.encode() not in zf.read(name), name


async def test_a_step_browser_records_evidence_keeps_state_and_extends_the_trace(
    pool: BrowserPool, world: SandboxWorld
) -> None:
    """Two steps of one job: evidence per step, cookies carried, one trace with two ordinals."""
    blobs = InMemoryBlobStore()
    created: list[tuple[str, int]] = []
    artifacts = JobArtifacts(blobs, "acme/job-1", on_new_trace=lambda k, n: created.append((k, n)))
    site = world.url("account")
    sinks = []
    for step in ("one", "two"):
        sink = ListSink()
        sinks.append(sink)
        browser = StepBrowser(
            pool,
            seed="job-1",
            proxy=None,
            sink=sink,
            artifacts=artifacts,
            masker=lambda: Masker.of([SECRET]),
        )
        page = await browser.page()
        if step == "one":
            await page.goto(f"{site}/set?v=kept")
            await page.goto(f"{site}/form")
            await page.fill("#password", SECRET)
        else:
            await page.goto(f"{site}/whoami")
            assert await page.inner_text("#who") == "kept"
        ids = await browser.aclose()
        assert ids == ["ev-1", "ev-2", "ev-3"]
        assert sink.kinds() == ["screenshot", "dom", "step-log"]
        log = json.loads(sinks[-1].items[2][1])
        assert log["url"].startswith(site)
        assert log["duration_ms"] > 0
    assert created == [("acme/job-1/trace.zip", created[0][1])]
    trace = blobs.get("acme/job-1/trace.zip")
    assert trace_ordinals(trace) == [1, 2]
    assert SECRET.encode() not in trace
    assert b"kept" in blobs.get("acme/job-1/browser-state.json")


async def test_a_sealed_browser_state_carries_the_session_and_is_not_readable_at_rest(
    pool: BrowserPool, world: SandboxWorld, tmp_path: Any
) -> None:
    """With the vault as sealer, the state between steps is stored sealed under the
    tenant's key (no cookie value in the blob) and still carries the session; a blob moved
    to another job does not open there (a fresh session, not a failure); a state written
    before sealing (plain JSON) still loads."""
    store = Store.open(f"sqlite:///{tmp_path / 'vault.sqlite'}")
    try:
        tenant = store.tenants.ensure("acme").id
        vault = Vault(MasterKey(MasterKey.generate()), store=store)
        blobs = InMemoryBlobStore()
        site = world.url("account")

        def step_browser(job: str) -> StepBrowser:
            artifacts = JobArtifacts(blobs, f"{tenant}/{job}", sealer=vault)
            return StepBrowser(
                pool, seed=job, proxy=None, sink=ListSink(), artifacts=artifacts, trace=False
            )

        first = step_browser("job-1")
        page = await first.page()
        await page.goto(f"{site}/set?v=kept-secretly")
        await first.aclose()
        stored = blobs.get(f"{tenant}/job-1/browser-state.json")
        assert stored.startswith(b"pwseal1:")
        assert b"kept-secretly" not in stored
        assert b"cookies" not in stored

        second = step_browser("job-1")
        page = await second.page()
        await page.goto(f"{site}/whoami")
        assert await page.inner_text("#who") == "kept-secretly"
        await second.aclose()

        moved = f"{tenant}/job-2/browser-state.json"  # the same blob under another job
        blobs.put(moved, stored, content_type="application/octet-stream")
        assert await JobArtifacts(blobs, f"{tenant}/job-2", sealer=vault).load_state() is None
        legacy = {"cookies": [], "origins": [{"origin": site, "localStorage": []}]}
        plain = json.dumps(legacy).encode()
        blobs.put(f"{tenant}/job-3/browser-state.json", plain, content_type="application/json")
        assert await JobArtifacts(blobs, f"{tenant}/job-3", sealer=vault).load_state() == legacy
    finally:
        store.close()


async def test_a_profile_that_meets_a_block_is_returned_burned(
    pool: BrowserPool, world: SandboxWorld, tmp_path: Any
) -> None:
    """A 403 on a persistent profile's navigation burns that profile."""
    profiles = ProfilePool(tmp_path, per_user=1, cooldown_s=0)
    world.chaos("scrape-static").update({"banned_identities": ["direct"]})
    try:
        browser = StepBrowser(
            pool, seed="j", proxy=None, sink=ListSink(), profiles=profiles, trace=False
        )
        page = await browser.page(profile="frank")
        response = await page.goto(f"{world.url('scrape-static')}/product/1")
        assert response is not None
        assert response.status == 403
        await browser.aclose()
    finally:
        world.chaos("scrape-static").update({"banned_identities": []})
    assert profiles.status("frank")[0]["burned"] is True


async def test_the_tls_rung_looks_like_a_browser_but_cannot_run_scripts(
    world: SandboxWorld,
) -> None:
    """curl_cffi as Chrome sends a browser's headers; the plain rung says who it is; neither
    gets past the guard's script challenge."""

    async def no_solver(sitekey: str, url: str) -> str:
        raise AssertionError("no captcha expected")

    async def who(fetcher: CurlFetcher) -> Selector:
        exchange = await fetcher.fetch(
            FetchRequest(f"{world.url('account')}/who"),
            proxy=None,
            session=Session(None),
            solve=no_solver,
        )
        return Selector(text=exchange.html)

    chrome, plain = CurlFetcher(impersonate="chrome"), CurlFetcher()
    try:
        as_chrome, as_us = await who(chrome), await who(plain)
        assert "Chrome/" in (as_chrome.css("#agent::text").get() or "")
        assert as_chrome.css("#fetch-mode::text").get() == "navigate"
        assert (as_us.css("#agent::text").get() or "").startswith("Portwright/")
        for fetcher in (chrome, plain):
            with pytest.raises(BlockedError):
                await fetcher.fetch(
                    FetchRequest(f"{world.url('scrape-guarded')}/product/1"),
                    proxy=None,
                    session=Session(None),
                    solve=no_solver,
                )
    finally:
        await chrome.aclose()
        await plain.aclose()


async def test_a_captcha_form_and_missing_content_are_recognised() -> None:
    """The sandbox wall yields its sitekey, action and answer field; a JS shell lacks content."""
    wall = (
        '<form id="captcha-form" method="post" action="/captcha/verify">'
        '<input type="hidden" name="next" value="/product/9">'
        '<div class="captcha" data-sitekey="sbx-123">'
        '<input type="hidden" name="captcha_id" value="123">'
        '<input type="text" name="captcha_answer"></div></form>'
    )
    form = find_challenge(wall, "http://shop/product/9")
    assert form is not None
    assert (form.sitekey, form.action, form.method) == (
        "sbx-123",
        "http://shop/captcha/verify",
        "POST",
    )
    assert form.answer_field == "captcha_answer"
    assert dict(form.fields) == {"next": "/product/9", "captcha_id": "123"}
    assert find_challenge("<p>hello</p>", "http://shop/") is None
    shell = '<main id="app" data-state="loading"></main>'
    assert unrendered(shell, wait_for="h1.title", rules=None) == "'h1.title' not in the page"
    assert (
        unrendered(shell, wait_for=None, rules={"t": Rule("h1.title")})
        == "no extraction rule matched"
    )
    assert unrendered("<h1 class='title'>x</h1>", wait_for="h1.title", rules=None) is None
    assert unrendered(shell, wait_for="text=Hello", rules=None) is not None
