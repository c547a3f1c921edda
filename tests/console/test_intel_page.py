"""The Releases pages: observed slot runs beside predicted windows, as a chart and tables,
readable in Chromium at desktop and phone width."""

from __future__ import annotations

import secrets
from contextlib import closing
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect

from portwright.sandbox.consulate.releases import DAY_S, ReleasePattern, generate_releases
from portwright.store import Store
from tests.console._support import Console, signed_in
from tests.console.conftest import SHOTS

pytestmark = pytest.mark.browser

MONDAY = datetime(2030, 1, 7, tzinfo=UTC).timestamp()


def _history(store: Store, portal: str, center: str, days: int) -> None:
    """Scans every 10 minutes of a weekday 09:00 pattern with some cancellations."""
    pattern = ReleasePattern(hour=9.0, jitter_s=300, bursts_per_day=1.0, holiday_chance=0.0)
    end = MONDAY + days * DAY_S
    releases = generate_releases(center, "tourist", pattern, seed=8, start=MONDAY, end=end)
    t = MONDAY
    while t < end:
        ids = [f"{r.at:.0f}-{j}" for r in releases if r.at <= t < r.at + 1500
               for j in range(r.slots)]  # fmt: skip
        store.intel.slots.record(portal=portal, center=center, visa_type="tourist", at=t,
                                 open_slots=len(ids), slot_ids=ids)  # fmt: skip
        t += 600


def test_the_releases_page_charts_observations_beside_predictions(
    console: Console, browser: Browser
) -> None:
    """A portal with two weeks of observations shows its predicted 09:00 window in the chart
    and the table, the runs (including "nothing open") paged; a thin key says it is learning;
    the page fits a phone's width (only the chart scrolls sideways)."""
    store = console.service.store
    portal = f"cns-{secrets.token_hex(3)}"
    _history(store, portal, "ACC", 14)
    _history(store, portal, "LOS", 2)
    _history(store, portal, "KUM", 12)  # ends on a Friday: the weekend ahead has no window
    http, _ = console.client(console.operator("viewer"))
    with closing(http):
        listing = http.get("/console/intel").text
        assert f'data-portal="{portal}"' in listing
        html = http.get(f"/console/intel/{portal}").text
        assert 'data-key="ACC/tourist"' in html
        assert html.count('class="window"') >= 1
        assert "data-fallback" in html  # LOS: two days are too few
        assert "nothing open" in html
        assert http.get(f"/console/intel/{portal}", params={"cursor": "x"}).status_code == 422
        assert http.get("/console/intel/no-such-portal").status_code == 404
        only = http.get(f"/console/intel/{portal}", params={"center": "LOS"}).text
        assert 'data-key="ACC/tourist"' not in only
        kum = http.get(f"/console/intel/{portal}", params={"center": "KUM"}).text
        assert 'class="explore"' in kum
        assert 'class="explore-row"' in kum
        assert 'class="window"' not in kum  # explored, not predicted
        assert "explored (no forecast)" in kum
        assert "not a prediction" in kum
        acc = http.get(f"/console/intel/{portal}", params={"center": "ACC"}).text
        assert 'class="explore-row"' not in acc  # Monday and Tuesday ahead: windows

        context = signed_in(browser, console, http)
        try:
            page = context.new_page()
            page.goto(f"{console.url}/console/intel/{portal}")
            acc = page.locator("section[data-key='ACC/tourist']")
            expect(acc.locator("svg.release-chart rect.window").first).to_be_visible()
            expect(acc.locator("tr.window-row").first).to_contain_text("09:")
            expect(page.locator("tr.run").first).to_be_visible()
            kum = page.locator("section[data-key='KUM/tourist']")
            expect(kum.locator("svg.release-chart rect.explore").first).to_be_visible()
            expect(kum.locator("tr.explore-row").first).to_contain_text("Sat")
            expect(kum.locator("tr.explore-row").first).to_contain_text("08:45")
            page.screenshot(path=SHOTS / "releases-desktop.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.reload()
            expect(acc.locator("svg.release-chart")).to_be_visible()
            page_width = page.evaluate("document.documentElement.scrollWidth")
            assert page_width <= 390, f"the page is {page_width}px wide on a 390px phone"
            page.screenshot(path=SHOTS / "releases-phone.png", full_page=True)
        finally:
            context.close()
