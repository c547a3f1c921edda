"""Slot observations and release predictions through the API (`/v1/portals/{portal}/...`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx

from portwright.sandbox.consulate.releases import DAY_S, ReleasePattern, generate_releases
from portwright.store import Store
from tests.gateway._support import Stack

MONDAY = datetime(2030, 1, 7, tzinfo=UTC).timestamp()


def _get(stack: Stack, key: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(
        f"{stack.base_url}{path}", headers={"authorization": f"Bearer {key}"}, params=params
    )


def _scan_history(store: Store, portal: str, days: int, every_s: float = 600.0) -> int:
    """Scans of ACC/tourist every `every_s` over `days` of a weekday 09:00 release pattern;
    each released slot stays open 20 minutes. Returns the number of scans."""
    pattern = ReleasePattern(hour=9.0, jitter_s=300, bursts_per_day=0.3, holiday_chance=0.0)
    end = MONDAY + days * DAY_S
    releases = generate_releases("ACC", "tourist", pattern, seed=4, start=MONDAY, end=end)
    t, scans = MONDAY, 0
    while t < end:
        ids = [
            f"{r.at:.0f}-{j}" for r in releases if r.at <= t < r.at + 1200 for j in range(r.slots)
        ]
        store.intel.slots.record(
            portal=portal, center="ACC", visa_type="tourist", at=t, open_slots=len(ids),
            slot_ids=ids,
        )  # fmt: skip
        t += every_s
        scans += 1
    return scans


def test_predictions_find_the_release_window_of_stored_observations(
    stack: Stack, api_key: str
) -> None:
    """Two weeks of stored scans predict the next weekday's 09:00 window with confidence."""
    portal = f"cns-{secrets.token_hex(3)}"
    _scan_history(stack.store, portal, 14)
    response = _get(stack, api_key, f"/v1/portals/{portal}/predictions", horizon_h=30)
    assert response.status_code == 200, response.text
    [prediction] = response.json()["data"]
    assert (prediction["center"], prediction["visa_type"]) == ("ACC", "tourist")
    assert not prediction["fallback"]
    assert prediction["observed_days"] > 13
    windows = prediction["windows"]
    assert windows, prediction
    start = datetime.fromtimestamp(windows[0]["start"], UTC)
    assert start.date().isoformat() == "2030-01-21"  # the Monday after the history
    assert 8 * 60 + 30 <= start.hour * 60 + start.minute <= 9 * 60
    assert windows[0]["confidence"] >= 0.9


def test_predictions_show_the_explored_spans_apart_from_the_windows(
    stack: Stack, api_key: str
) -> None:
    """A week ahead of a weekday 09:00 pattern: on the days with no predicted window (the
    weekend, and weekdays whose own two sightings fell short of a window's chance),
    `explore` names the span a watcher tests (around 09:00, the likeliest time of day),
    never on a day that has a predicted window."""
    portal = f"cns-{secrets.token_hex(3)}"
    _scan_history(stack.store, portal, 14)
    response = _get(stack, api_key, f"/v1/portals/{portal}/predictions", horizon_h=168)
    assert response.status_code == 200, response.text
    [prediction] = response.json()["data"]

    def day(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).date().isoformat()

    window_days = {day(w["start"]) for w in prediction["windows"]}
    assert "2030-01-21" in window_days, window_days
    explore = prediction["explore"]
    assert explore, prediction
    explore_days = {day(s["start"]) for s in explore}
    assert explore_days.isdisjoint(window_days)
    assert {"2030-01-26", "2030-01-27"} <= explore_days, explore_days  # the weekend
    assert len(window_days | explore_days) == 7  # every day is watched one way or the other
    for span in explore:
        start = datetime.fromtimestamp(span["start"], UTC)
        assert 8 * 60 <= start.hour * 60 + start.minute <= 9 * 60, span
        assert span["end"] > span["start"]
        assert 0.0 < span["confidence"] <= 1.0
        assert set(span) == {"start", "end", "confidence"}  # no chance: not a prediction


def test_thin_history_is_the_humble_fallback(stack: Stack, api_key: str) -> None:
    """Two days of scans are too few: no windows, fallback true."""
    portal = f"cns-{secrets.token_hex(3)}"
    _scan_history(stack.store, portal, 2, every_s=1200.0)
    body = _get(stack, api_key, f"/v1/portals/{portal}/predictions").json()
    assert body["data"][0]["fallback"] is True
    assert body["data"][0]["windows"] == []


def test_observations_are_filtered_and_paged(stack: Stack, api_key: str) -> None:
    """Runs come newest first, filtered by key, in pages that neither overlap nor skip."""
    portal = f"cns-{secrets.token_hex(3)}"
    store = stack.store
    for i in range(7):
        store.intel.slots.record(portal=portal, center="ACC", visa_type="tourist",
                                 at=MONDAY + i * 60, open_slots=i % 2)  # fmt: skip
    store.intel.slots.record(portal=portal, center="LOS", visa_type="work", at=MONDAY, open_slots=0)
    path = f"/v1/portals/{portal}/observations"
    first = _get(stack, api_key, path, center="ACC", limit=4).json()
    assert len(first["data"]) == 4
    assert first["next_cursor"]
    rest = _get(stack, api_key, path, center="ACC", limit=4, cursor=first["next_cursor"]).json()
    seen = [o["first_at"] - MONDAY for o in first["data"] + rest["data"]]
    assert seen == [360, 300, 240, 180, 120, 60, 0]
    assert rest["next_cursor"] is None
    nothing_open = [o for o in first["data"] if o["open"] == 0]
    assert nothing_open
    assert all(o["slot_ids"] == [] for o in nothing_open)
    spanned = _get(stack, api_key, path, since=MONDAY + 100, until=MONDAY + 200).json()
    assert [o["first_at"] - MONDAY for o in spanned["data"]] == [180, 120]


def test_bad_queries_are_clear_errors(stack: Stack, api_key: str) -> None:
    """Unknown portal 404; a bad cursor, limit or span 422 naming the field."""
    portal = f"cns-{secrets.token_hex(3)}"
    assert _get(stack, api_key, f"/v1/portals/{portal}/observations").status_code == 404
    stack.store.intel.slots.record(portal=portal, center="A", visa_type="v", at=1.0, open_slots=0)
    path = f"/v1/portals/{portal}/observations"
    bad_cursor = _get(stack, api_key, path, cursor="x1")
    assert bad_cursor.status_code == 422
    assert "cursor" in bad_cursor.json()["message"]
    assert _get(stack, api_key, path, limit=0).status_code == 422
    span = _get(stack, api_key, path, since=10, until=5)
    assert span.status_code == 422
    assert "until" in span.json()["message"]
    assert _get(stack, api_key, f"/v1/portals/{portal}/predictions", horizon_h=0).status_code == 422
    assert httpx.get(f"{stack.base_url}{path}").status_code == 401
