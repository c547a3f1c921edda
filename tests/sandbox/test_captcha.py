"""The shared sandbox captcha and the 2captcha-compatible solver service."""

from __future__ import annotations

import httpx
from parsel import Selector

from portwright.sandbox import SandboxWorld
from portwright.sandbox.captcha import (
    answer_for,
    captcha_id_of,
    new_challenge,
    render_challenge_html,
    specs,
    verify,
    world_secret,
)
from portwright.testing import wait_until_sync


def _solver_world(**options: object) -> SandboxWorld:
    spec = specs()[0]
    world = SandboxWorld([spec], seed=4)
    world.context("captcha-solver").options.update({"solve_time_s": 0.0} | options)
    return world


def _submit(client: httpx.Client, sitekey: str, key: str = "sandbox-key") -> dict[str, object]:
    params = {
        "key": key,
        "method": "userrecaptcha",
        "googlekey": sitekey,
        "pageurl": "http://127.0.0.1/login",
        "json": "1",
    }
    result: dict[str, object] = client.post("/in.php", data=params).json()
    return result


def _result(client: httpx.Client, task_id: object) -> dict[str, object]:
    params = {"key": "sandbox-key", "action": "get", "id": str(task_id), "json": "1"}
    result: dict[str, object] = client.get("/res.php", params=params).json()
    return result


def test_challenge_answer_is_derived_from_the_seed_and_verified() -> None:
    """The answer is an HMAC of the id under the world secret; verify accepts only that text."""
    secret = world_secret(9)
    challenge = new_challenge(secret)
    assert challenge.text == answer_for(world_secret(9), challenge.id)
    assert captcha_id_of(challenge.sitekey) == challenge.id
    assert verify(secret, challenge.id, f" {challenge.text.lower()} ")
    assert not verify(secret, challenge.id, "WRONG")
    assert not verify(world_secret(10), challenge.id, challenge.text)


def test_rendered_challenge_carries_the_inputs_but_not_the_text_in_reading_order() -> None:
    """The block has the sitekey and both inputs; its glyphs read right only by position."""
    challenge = new_challenge(world_secret(1))
    page = Selector(render_challenge_html(challenge))
    assert page.css("div.captcha::attr(data-sitekey)").get() == challenge.sitekey
    assert page.css("input[name=captcha_id]::attr(value)").get() == challenge.id
    assert page.css("input[name=captcha_answer]")
    glyphs = [
        (int(x), text)
        for x, text in zip(
            page.css("svg text::attr(x)").getall(), page.css("svg text::text").getall(), strict=True
        )
    ]
    assert "".join(t for _, t in sorted(glyphs)) == challenge.text


def test_solver_answers_after_the_solve_time_and_charges_the_balance() -> None:
    """in.php queues a task, res.php says not ready, then returns the answer; balance drops."""
    with (
        _solver_world(solve_time_s=0.3) as world,
        httpx.Client(base_url=world.url("captcha-solver")) as client,
    ):
        challenge = new_challenge(world_secret(world.seed))
        task = _submit(client, challenge.sitekey)
        assert task["status"] == 1
        assert _result(client, task["request"]) == {"status": 0, "request": "CAPCHA_NOT_READY"}
        ready = wait_until_sync(
            lambda: (r := _result(client, task["request"]))["status"] == 1 and r, timeout=10
        )
        assert ready == {"status": 1, "request": challenge.text}
        balance = client.get("/res.php", params={"key": "sandbox-key", "action": "getbalance"})
        assert balance.text == "9.997"
        plain = client.get(
            "/in.php",
            params={
                "key": "sandbox-key",
                "method": "userrecaptcha",
                "googlekey": challenge.sitekey,
                "pageurl": "http://x/",
            },
        )
        assert plain.text.startswith("OK|")
        assert [e.data["outcome"] for e in world.ledger("captcha-solver").entries("solve")] == [
            "solved"
        ]


def test_solver_refuses_a_wrong_key_an_empty_balance_and_fails_at_the_configured_rate() -> None:
    """Wrong key and zero balance are refused at submit; fail_rate 1 makes every task unsolvable."""
    with (
        _solver_world(fail_rate=1.0) as world,
        httpx.Client(base_url=world.url("captcha-solver")) as client,
    ):
        sitekey = new_challenge(world_secret(world.seed)).sitekey
        assert _submit(client, sitekey, key="nope")["request"] == "ERROR_WRONG_USER_KEY"
        task = _submit(client, sitekey)
        assert _result(client, task["request"])["request"] == "ERROR_CAPTCHA_UNSOLVABLE"
        world.context("captcha-solver").options["balance"] = 0.0
        assert _submit(client, sitekey)["request"] == "ERROR_ZERO_BALANCE"


def test_reportbad_refunds_a_solved_task() -> None:
    """Reporting a delivered answer as bad gives the price back once."""
    with _solver_world() as world, httpx.Client(base_url=world.url("captcha-solver")) as client:
        task = _submit(client, new_challenge(world_secret(world.seed)).sitekey)
        _result(client, task["request"])
        report = {"key": "sandbox-key", "action": "reportbad", "id": task["request"], "json": "1"}
        assert client.get("/res.php", params=report).json()["request"] == "OK_REPORT_RECORDED"
        client.get("/res.php", params=report)
        assert world.context("captcha-solver").options["balance"] == 10.0
