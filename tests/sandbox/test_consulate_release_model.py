"""The consulate's calendar driven by the release model, on a simulated clock."""

from __future__ import annotations

import httpx
from parsel import Selector

from portwright.sandbox import SandboxWorld, consulate
from portwright.sandbox.consulate import SlotCalendar
from portwright.sandbox.consulate._calendar import SIM_START
from portwright.sandbox.consulate.releases import DAY_S, ReleasePattern, generate_releases

MODEL = {"speed": 3600.0, "seed": 11, "pattern": {"hour": 9.0, "bursts_per_day": 2.0}}


def _calendar(now: list[float], **model: object) -> SlotCalendar:
    options = {"take_mean_s": 1e9, "release_model": MODEL | model}
    return SlotCalendar(lambda key: 0.5, options, clock=lambda: now[0], started_at=0.0, seed=3)


def test_the_calendar_releases_what_the_model_schedules() -> None:
    """After 3 simulated days every scheduled release (and no other) is on the calendar,
    at the elapsed time its simulated time maps to, with its number of slots."""
    now = [0.0]
    calendar = _calendar(now)
    assert calendar.open_slots("LON", "tourist") == []  # no initial batch under the model
    now[0] = 3 * DAY_S / 3600.0  # three simulated days at one simulated hour per second
    assert calendar.sim_time() == SIM_START + 3 * DAY_S
    expected = generate_releases(
        "LON", "tourist", ReleasePattern(hour=9.0, bursts_per_day=2.0), seed=11,
        start=SIM_START, end=SIM_START + 3 * DAY_S,
    )  # fmt: skip
    got = calendar.schedule("LON", "tourist", now[0])
    assert [len(r.slot_ids) for r in got] == [r.slots for r in expected]
    for release, model in zip(got, expected, strict=True):
        assert abs(release.at - (model.at - SIM_START) / 3600.0) < 1e-6
    assert len(calendar.open_slots("LON", "tourist")) == sum(r.slots for r in expected)


def test_patterns_are_per_pair_and_seeded() -> None:
    """A pair's own pattern applies to it alone; the same seed gives the same schedule."""
    now = [2 * DAY_S / 3600.0]
    weekend = {"weekdays": [5, 6], "hour": 12.0, "bursts_per_day": 0.0, "holiday_chance": 0.0}
    one = _calendar(now, patterns={"LON/work": weekend})
    two = _calendar(now, patterns={"LON/work": weekend})
    assert one.schedule("LON", "work", now[0]) == []  # Monday and Tuesday: no weekend release
    a = [(r.at, len(r.slot_ids)) for r in one.schedule("MAN", "study", now[0])]
    b = [(r.at, len(r.slot_ids)) for r in two.schedule("MAN", "study", now[0])]
    assert a == b
    assert a


def _scan_page(options: dict[str, object]) -> Selector:
    with (
        SandboxWorld(consulate.specs(options), seed=2) as world,
        httpx.Client(base_url=world.url("consulate")) as client,
    ):
        csrf = Selector(client.get("/login").text).css("input[name=csrf]::attr(value)").get()
        form = {"email": "user1@example.test", "password": "pw-1", "csrf": csrf or ""}
        assert client.post("/login", data=form).status_code in (200, 303)
        return Selector(client.get("/appointments", params={"center": "LON"}).text)


def test_the_appointments_page_shows_the_portal_clock() -> None:
    """With the model on, the page carries the simulated time; without it, no clock."""
    start = SIM_START + 9 * 3600
    scan = _scan_page({"release_model": {"speed": 1.0, "sim_start": start}})
    now = float(scan.css("#portal-clock::attr(data-now)").get() or "nan")
    assert start <= now < start + 3600  # simulated seconds pass at the real rate here
    plain = _scan_page({})
    assert plain.css("table#slots, p.no-slots")
    assert plain.css("#portal-clock") == []
