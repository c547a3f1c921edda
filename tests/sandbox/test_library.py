"""The tutorial's library portal: statuses, redirects, the taken slot, the DOM switch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from portwright.sandbox import SandboxWorld, library

SLOT = {"room": "A", "date": "2027-01-15", "slot": "10:00"}


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(library.specs(), seed=1) as started:
        started.chaos("library").update({"rate_429": 0.0})
        yield started


@contextlib.contextmanager
def _reader(
    world: SandboxWorld, user: str = "reader", password: str = "open-sesame"
) -> Iterator[httpx.Client]:
    """A logged-in reader: the login's 303 was followed to /rooms."""
    with httpx.Client(base_url=world.url("library"), follow_redirects=True, timeout=10) as c:
        answer = c.post("/login", data={"user": user, "password": password})
        assert (answer.status_code, answer.url.path, len(answer.history)) == (200, "/rooms", 1)
        yield c


def test_login_statuses_and_pages_behind_it(world: SandboxWorld) -> None:
    with httpx.Client(base_url=world.url("library"), follow_redirects=True, timeout=10) as c:
        assert c.post("/login", data={"user": "reader", "password": "no"}).status_code == 401
        missing = c.post("/login", data={"user": "reader"})
        assert missing.status_code == 400
        assert 'data-field="password"' in missing.text
        assert c.post("/bookings", data=SLOT).url.path == "/login"  # no session: to the login


def test_a_booking_its_repeat_and_a_taken_slot(world: SandboxWorld) -> None:
    with _reader(world) as reader:
        first = reader.post("/bookings", data=SLOT)
        assert first.status_code == 200
        assert '<span id="booking-ref">LIB-0001</span>' in first.text
        again = reader.post("/bookings", data=SLOT)  # the holder is sent to their booking
        assert again.url == first.url
        assert reader.post("/bookings", data={**SLOT, "room": "Z"}).status_code == 404
        assert reader.post("/bookings", data={**SLOT, "date": "2027-13-01"}).status_code == 400
        assert reader.post("/bookings", data={**SLOT, "slot": "23:00"}).status_code == 400
    with _reader(world, "other", "letmein") as other:
        taken = other.post("/bookings", data=SLOT)
        assert taken.status_code == 409
        assert 'class="error taken"' in taken.text
        assert other.get(str(first.url.path)).status_code == 404  # not theirs
    ledger = world.ledger("library")
    assert [e.key for e in ledger.entries("booking")] == ["A|2027-01-15|10:00"]
    assert [e.actor for e in ledger.entries("taken")] == ["other"]


def test_dom_version_two_moves_the_reference(world: SandboxWorld) -> None:
    world.chaos("library").update({"dom_version": 2})
    with _reader(world) as reader:
        page = reader.post("/bookings", data=SLOT).text
    assert '<strong class="ref">LIB-0001</strong>' in page
    assert "booking-ref" not in page


def test_the_default_knobs_answer_some_429s_with_retry_after() -> None:
    with (
        SandboxWorld(library.specs(), seed=1) as world,
        httpx.Client(base_url=world.url("library"), timeout=10) as client,
    ):
        answers = [client.get("/login") for _ in range(100)]
    limited = [a for a in answers if a.status_code == 429]
    assert 0 < len(limited) < 20
    assert {a.headers["retry-after"] for a in limited} == {"1.0"}
