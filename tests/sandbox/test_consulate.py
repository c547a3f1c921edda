"""The sandbox consulate (scenario 1): login, scan, hold, one-time code, payment, confirm."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from parsel import Selector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portwright.sandbox import (
    ChaosKnobs,
    SandboxWorld,
    ServiceContext,
    ServiceSpec,
    captcha,
    consulate,
    inbox,
)
from portwright.sandbox.consulate import SlotCalendar

FAST = {"take_mean_s": 1e6, "payment_delay_s": 0.1, "webhook_backoff_s": 0.05}


def _receiver(ctx: ServiceContext) -> Starlette:
    """A webhook receiver that fails its first delivery, then keeps what it is sent."""
    received: list[dict[str, Any]] = ctx.options.setdefault("received", [])

    async def hook(request: Request) -> Response:
        received.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(status_code=503 if len(received) == 1 else 200)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def _world(seed: int = 5, knobs: ChaosKnobs | None = None, **options: Any) -> SandboxWorld:
    specs = [
        *inbox.specs(),
        *captcha.specs(),
        *consulate.specs(FAST | options, knobs=knobs),
        ServiceSpec("receiver", _receiver),
    ]
    world = SandboxWorld(specs, seed=seed)
    world.context("captcha-solver").options["solve_time_s"] = 0.2
    world.context("consulate").options["payment_webhook_url"] = world.url("receiver") + "/hook"
    return world


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with _world() as running:
        yield running


def _solve(world: SandboxWorld, sitekey: str) -> str:
    """Solve a captcha through the solver's 2captcha API, as a client would."""
    with httpx.Client(base_url=world.url("captcha-solver")) as solver:
        task = solver.post(
            "/in.php",
            data={
                "key": "sandbox-key",
                "method": "userrecaptcha",
                "googlekey": sitekey,
                "pageurl": world.url("consulate") + "/login",
                "json": "1",
            },
        ).json()
        for _ in range(50):
            answer = solver.get(
                "/res.php",
                params={"key": "sandbox-key", "action": "get", "id": task["request"], "json": 1},
            ).json()
            if answer["request"] != "CAPCHA_NOT_READY":
                assert answer["status"] == 1, answer
                return str(answer["request"])
            time.sleep(0.05)
    raise AssertionError("captcha never solved")


def _login(world: SandboxWorld, client: httpx.Client, n: int = 7) -> httpx.Response:
    page = Selector(client.get("/login").text)
    form = {
        "email": f"user{n}@example.test",
        "password": f"pw-{n}",
        "csrf": page.css("input[name=csrf]::attr(value)").get()
        or page.css("meta[name=csrf-token]::attr(content)").get(),
    }
    sitekey = page.css("div.captcha::attr(data-sitekey)").get()
    if sitekey:
        form["captcha_id"] = page.css("input[name=captcha_id]::attr(value)").get()
        form["captcha_answer"] = _solve(world, sitekey)
    return client.post("/login", data=form)


def _scan(client: httpx.Client, center: str = "LON", visa: str = "tourist") -> Selector:
    return Selector(client.get("/appointments", params={"center": center, "visa": visa}).text)


def _hold(client: httpx.Client, slot_id: str, csrf: str, reference: str) -> httpx.Response:
    data = {"slot_id": slot_id, "csrf": csrf, "client_reference": reference}
    return client.post("/appointments/hold", data=data)


def _code(world: SandboxWorld, email: str) -> str:
    messages = httpx.get(world.url("inbox") + "/messages", params={"to": email}).json()
    return str(messages[-1]["code"])


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_full_booking_flow_books_once_with_a_verified_webhook() -> None:
    """Captcha login, hold, inbox code, pay, signed retried webhook; two confirms, one booking."""
    with (
        _world(knobs=ChaosKnobs(captcha_rate=1.0)) as world,
        httpx.Client(base_url=world.url("consulate")) as client,
    ):
        login = _login(world, client)
        assert login.status_code == 303
        assert login.headers["location"] == "/appointments"

        page = _scan(client)
        slot_ids = page.css("table#slots tr.slot::attr(data-slot-id)").getall()
        assert len(slot_ids) == 10
        assert page.css("table#slots tr.slot td.date::text").get()
        csrf = page.css("form#hold-form input[name=csrf]::attr(value)").get()
        assert csrf

        held = _hold(client, slot_ids[0], csrf, "req-1")
        assert held.status_code == 200
        hold = Selector(held.text)
        hold_id = hold.css("#hold::attr(data-hold-id)").get()
        assert hold_id
        assert int(hold.css("#hold-expires::attr(data-expires-in)").get() or 0) > 100
        assert slot_ids[0] not in _scan(client).css("tr.slot::attr(data-slot-id)").getall()

        wrong = client.post(
            f"/appointments/hold/{hold_id}/otp", data={"code": "000000", "csrf": csrf}
        )
        assert wrong.status_code == 400
        assert Selector(wrong.text).css(".error::text").get() == "wrong code"
        code = _code(world, "user7@example.test")
        paying = Selector(
            client.post(f"/appointments/hold/{hold_id}/otp", data={"code": code, "csrf": csrf}).text
        )
        payment_id = paying.css("#payment::attr(data-payment-id)").get()
        assert paying.css("#payment::attr(data-amount)").get() == "8000"

        early = client.post("/appointments/confirm", data={"hold_id": hold_id, "csrf": csrf})
        assert early.status_code == 402
        paid = client.post(
            f"/payments/{payment_id}/pay", data={"card_number": "4242 4242 4242 4242"}
        )
        assert paid.status_code == 202
        assert Selector(paid.text).css("#payment-status::text").get() == "pending"

        received = world.context("receiver").options["received"]
        _wait_for(lambda: len(received) >= 2)
        delivery = received[-1]
        stamp, signature = (
            p.split("=", 1)[1] for p in delivery["headers"]["stripe-signature"].split(",")
        )
        secret = str(world.context("consulate").options["payment_webhook_secret"])
        assert secret.startswith("whsec_")
        assert secret != "whsec_sandbox"
        expected = hmac.new(
            secret.encode(), stamp.encode() + b"." + delivery["body"], hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signature, expected)
        event = json.loads(delivery["body"])
        assert event["type"] == "payment_intent.succeeded"
        assert event["data"]["object"]["id"] == payment_id
        assert event["data"]["object"]["metadata"] == {
            "hold_id": hold_id,
            "client_reference": "req-1",
        }
        assert json.loads(received[0]["body"])["id"] == event["id"]  # a retry, same event

        status = Selector(client.get(f"/payments/{payment_id}").text)
        assert status.css("#payment-status::text").get() == "succeeded"
        first = client.post("/appointments/confirm", data={"hold_id": hold_id, "csrf": csrf})
        again = client.post("/appointments/confirm", data={"hold_id": hold_id, "csrf": csrf})
        reference = Selector(first.text).css("#confirmation::attr(data-reference)").get()
        assert reference
        assert reference.startswith("CNS-")
        assert Selector(again.text).css("#confirmation::attr(data-reference)").get() == reference

        listed = Selector(client.get("/bookings", params={"client_reference": "req-1"}).text)
        assert listed.css(".booking::attr(data-reference)").getall() == [reference]
        assert not Selector(client.get("/bookings", params={"client_reference": "x"}).text).css(
            ".booking"
        )
        ledger = world.ledger("consulate")
        assert ledger.count("booking", "req-1") == 1
        assert ledger.duplicates("booking") == {}
        assert len(ledger.entries("payment")) == 1
        assert [e.data["outcome"] for e in world.ledger("captcha-solver").entries("solve")] == [
            "solved"
        ]


def test_login_errors_are_named(world: SandboxWorld) -> None:
    """Unknown account, wrong password, missing and wrong captcha each show their own error."""
    with httpx.Client(base_url=world.url("consulate")) as client:

        def attempt(email: str, password: str, **extra: str) -> tuple[int, str | None]:
            page = Selector(client.get("/login").text)
            csrf = page.css("form#login-form input[name=csrf]::attr(value)").get() or ""
            form = {"email": email, "password": password, "csrf": csrf, **extra}
            r = client.post("/login", data=form)
            return r.status_code, Selector(r.text).css(".error::text").get()

        assert attempt("nobody@example.test", "x") == (200, "unknown account")
        assert attempt("user3@example.test", "pw-4") == (200, "invalid credentials")
        world.chaos("consulate").update({"captcha_rate": 1.0})
        assert attempt("user3@example.test", "pw-3") == (200, "captcha required")
        assert attempt("user3@example.test", "pw-3", captcha_answer="AAAAA") == (
            200,
            "captcha wrong",
        )
        stale = client.post("/login", data={"email": "user3@example.test", "password": "pw-3"})
        assert stale.status_code == 400
        assert client.get("/appointments").status_code == 303


def test_registered_account_can_sign_in(world: SandboxWorld) -> None:
    """POST /register creates an account once; the new account then signs in."""
    with httpx.Client(base_url=world.url("consulate")) as client:
        created = client.post("/register", data={"email": "new@example.test", "password": "pw-new"})
        assert created.status_code == 201
        assert (
            Selector(created.text).css("#registered::attr(data-email)").get() == "new@example.test"
        )
        dup = client.post("/register", data={"email": "new@example.test", "password": "pw-new"})
        assert (dup.status_code, Selector(dup.text).css(".error::text").get()) == (
            409,
            "account exists",
        )
        page = Selector(client.get("/login").text)
        csrf = page.css("input[name=csrf]::attr(value)").get()
        r = client.post(
            "/login", data={"email": "new@example.test", "password": "pw-new", "csrf": csrf}
        )
        assert r.status_code == 303


def test_a_held_slot_is_taken_for_others_and_an_expired_hold_frees_it() -> None:
    """A held slot is 409 for others; once the hold expires its code is refused, the slot back."""
    with (
        _world(hold_ttl_s=0.4) as world,
        httpx.Client(base_url=world.url("consulate")) as alice,
        httpx.Client(base_url=world.url("consulate")) as bob,
    ):
        _login(world, alice, 1)
        _login(world, bob, 2)
        # The portal's clock, frozen and moved by hand: a loaded machine's pauses between
        # requests must not expire the hold early (it did, with the wall clock, in CI).
        portal = world.target("consulate").state.portal
        now = [portal.calendar._clock()]
        portal.calendar._clock = lambda: now[0]
        page = _scan(alice, "MAN", "work")
        slot_id = page.css("tr.slot::attr(data-slot-id)").get() or ""
        csrf = page.css("form#hold-form input[name=csrf]::attr(value)").get() or ""
        hold_id = (
            Selector(_hold(alice, slot_id, csrf, "a-1").text).css("#hold::attr(data-hold-id)").get()
        )

        bob_csrf = _scan(bob, "MAN", "work").css("input[name=csrf]::attr(value)").get() or ""
        taken = _hold(bob, slot_id, bob_csrf, "b-1")
        assert (taken.status_code, Selector(taken.text).css(".error::text").get()) == (
            409,
            "slot taken",
        )

        now[0] += 0.5  # past the 0.4 s hold
        code = _code(world, "user1@example.test")
        late = alice.post(f"/appointments/hold/{hold_id}/otp", data={"code": code, "csrf": csrf})
        assert (late.status_code, Selector(late.text).css(".error::text").get()) == (
            410,
            "hold expired",
        )
        assert slot_id in _scan(bob, "MAN", "work").css("tr.slot::attr(data-slot-id)").getall()
        assert _hold(bob, slot_id, bob_csrf, "b-1").status_code == 200
        assert [e.key for e in world.ledger("consulate").entries("hold_expired")] == [hold_id]


def test_a_declined_card_can_be_retried_and_only_then_confirms(world: SandboxWorld) -> None:
    """A declined payment fails (webhook payment_failed) and a second card succeeds."""
    with httpx.Client(base_url=world.url("consulate")) as client:
        _login(world, client, 9)
        page = _scan(client, "EDI", "study")
        csrf = page.css("input[name=csrf]::attr(value)").get() or ""
        slot_id = page.css("tr.slot::attr(data-slot-id)").get() or ""
        hold_id = (
            Selector(_hold(client, slot_id, csrf, "r-9").text)
            .css("#hold::attr(data-hold-id)")
            .get()
        )
        code = _code(world, "user9@example.test")
        paying = client.post(f"/appointments/hold/{hold_id}/otp", data={"code": code, "csrf": csrf})
        payment_id = Selector(paying.text).css("#payment::attr(data-payment-id)").get()

        def status() -> str | None:
            return (
                Selector(client.get(f"/payments/{payment_id}").text)
                .css("#payment-status::text")
                .get()
            )

        assert (
            client.post(f"/payments/{payment_id}/pay", data={"card_number": "1234"}).status_code
            == 400
        )
        client.post(f"/payments/{payment_id}/pay", data={"card_number": "4000000000000002"})
        _wait_for(lambda: status() == "failed")
        declined = client.post("/appointments/confirm", data={"hold_id": hold_id, "csrf": csrf})
        assert declined.status_code == 402
        client.post(f"/payments/{payment_id}/pay", data={"card_number": "4242424242424242"})
        _wait_for(lambda: status() == "succeeded")
        done = client.post("/appointments/confirm", data={"hold_id": hold_id, "csrf": csrf})
        assert Selector(done.text).css("#confirmation::attr(data-reference)").get()
        received = world.context("receiver").options["received"]
        _wait_for(lambda: len(received) >= 3)
        types = {json.loads(r["body"])["type"] for r in received}
        assert types == {"payment_intent.payment_failed", "payment_intent.succeeded"}


def test_dom_version_2_changes_the_selectors(world: SandboxWorld) -> None:
    """With dom_version 2 the v1 selectors find nothing and the v2 ones (meta CSRF) work."""
    with httpx.Client(base_url=world.url("consulate")) as client:
        _login(world, client)
        assert _scan(client).css("table#slots tr.slot")
        r = httpx.patch(f"{world.admin_url}/services/consulate/chaos", json={"dom_version": 2})
        assert r.status_code == 200
        page = _scan(client)
        assert not page.css("table#slots tr.slot")
        assert not page.css("form#hold-form")
        assert page.css("input[name=csrf]::attr(value)").get() == ""
        items = page.css("ul.slot-list li.slot-item")
        assert len(items) == 10
        assert items[0].css("span.when::text").get()
        csrf = page.css("meta[name=csrf-token]::attr(content)").get() or ""
        slot_id = items[0].attrib["data-id"]
        assert page.css("form#slot-reservation")
        assert _hold(client, slot_id, "", "v2").status_code == 400
        held = _hold(client, slot_id, csrf, "v2")
        assert Selector(held.text).css("#hold::attr(data-hold-id)").get()
        login = Selector(httpx.get(world.url("consulate") + "/login").text)
        assert not login.css("form#login-form")
        assert login.css("form#auth-form")


def test_an_empty_calendar_says_so(world: SandboxWorld) -> None:
    """A pair with no open slots shows p.no-slots and no slot rows."""
    world.context("consulate").options["initial_slots"] = 0
    with httpx.Client(base_url=world.url("consulate")) as client:
        _login(world, client)
        page = _scan(client, "EDI", "work")
        assert page.css("p.no-slots")
        assert not page.css("tr.slot")


def _schedule(seed: int) -> tuple[list[Any], list[tuple[str, str]]]:
    with _world(seed=seed) as world, httpx.Client(base_url=world.url("consulate")) as client:
        _login(world, client)
        page = _scan(client)
        seen = list(
            zip(
                page.css("tr.slot::attr(data-slot-id)").getall(),
                page.css("td.date::text").getall(),
                strict=True,
            )
        )
        portal = world.target("consulate").state.portal
        return portal.calendar.schedule("LON", "tourist", 300.0), seen


def test_same_seed_gives_the_same_release_schedule() -> None:
    """Two worlds with one seed release the same slots at the same times; another seed differs."""
    first, seen = _schedule(21)
    again, seen_again = _schedule(21)
    other, seen_other = _schedule(22)
    assert first == again
    assert seen == seen_again
    assert first != other
    assert seen != seen_other
    assert 15 <= len(first) <= 25


def test_calendar_releases_in_jittered_windows_and_others_take_slots() -> None:
    """Releases come every release_every_s ± jitter; slots are open until others take them."""
    now = [0.0]
    options = {
        "release_every_s": 10.0,
        "release_jitter_s": 2.0,
        "release_size": 4,
        "take_mean_s": 5.0,
        "initial_slots": 3,
    }
    draws = iter([(i * 0.6180339887) % 1.0 for i in range(1, 10_000)])
    calendar = SlotCalendar(lambda _key: next(draws), options, clock=lambda: now[0], started_at=0.0)
    releases = calendar.schedule("LON", "work", 100.0)
    assert [len(r.slot_ids) for r in releases] == [3] + [4] * (len(releases) - 1)
    for k, release in enumerate(releases[1:], start=1):
        assert 10.0 * k - 2.0 <= release.at <= 10.0 * k + 2.0
    all_ids = [slot_id for r in releases for slot_id in r.slot_ids]
    for t in (0.0, 4.0, 25.0, 60.0, 99.0):
        released = [s for i in all_ids if (s := calendar.slot(i, t)) is not None]
        expected = {s.id for s in released if t < s.taken_at}
        assert {s.id for s in calendar.open_slots("LON", "work", t)} == expected
    assert 0 < len(expected) < len(released)


@pytest.mark.browser
async def test_chromium_logs_in_and_holds_a_slot_through_real_forms() -> None:
    """A real Chromium signs in through form#login-form and holds a slot via form#hold-form."""
    from playwright.async_api import async_playwright

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    with _world() as world:
        base = world.url("consulate")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True
            )
            try:
                page = await browser.new_page()
                await page.goto(base + "/login")
                await page.fill("form#login-form input[name=email]", "user5@example.test")
                await page.fill("form#login-form input[name=password]", "pw-5")
                await page.click("form#login-form button[type=submit]")
                await page.wait_for_url("**/appointments")
                await page.goto(base + "/appointments?center=LON&visa=study")
                await page.fill("form#hold-form input[name=client_reference]", "browser-1")
                slot_id = await page.get_attribute("table#slots tr.slot", "data-slot-id")
                await page.click(f"tr.slot[data-slot-id='{slot_id}'] button")
                await page.wait_for_selector("#hold")
                assert await page.get_attribute("#hold", "data-slot-id") == slot_id
                assert await page.get_attribute("#hold", "data-client-reference") == "browser-1"
                assert await page.is_visible("form#otp-form")
            finally:
                await browser.close()
        holds = world.ledger("consulate").entries("hold")
        assert [(e.actor, e.data["client_reference"]) for e in holds] == [
            ("user5@example.test", "browser-1")
        ]
