"""Captcha solving: the 2captcha-compatible client, the fallback chain, breakers, budgets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portwright.resources import (
    BreakerConfig,
    CaptchaBudget,
    OperatorSolver,
    SolverChain,
    TwoCaptchaSolver,
)
from portwright.sandbox import SandboxWorld, ServiceSpec, captcha
from portwright.sdk import ChallengeError

OPTIONS = {"solve_time_s": 0.0, "api_key": "sandbox-key"}


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    backup = ServiceSpec("captcha-backup", captcha.build_solver, options=dict(OPTIONS))
    with SandboxWorld([*captcha.specs(OPTIONS), backup], seed=9) as w:
        yield w


def _challenge(world: SandboxWorld) -> captcha.Challenge:
    return captcha.new_challenge(world.context("captcha-solver"), key="test")


def _solver(world: SandboxWorld, name: str, key: str = "sandbox-key") -> TwoCaptchaSolver:
    return TwoCaptchaSolver(world.url(name), key, poll_s=0.01, timeout_s=5)


async def test_the_2captcha_client_solves_a_sandbox_challenge(world: SandboxWorld) -> None:
    """in.php / res.php return the text that verifies the challenge."""
    challenge = _challenge(world)
    answer = await _solver(world, "captcha-solver").solve(
        sitekey=challenge.sitekey, url="http://portal/login"
    )
    assert captcha.verify(world.context("captcha-solver"), challenge.id, answer)


async def test_a_bad_key_and_a_dead_service_are_provider_failures(world: SandboxWorld) -> None:
    """A refused key and an unreachable service raise ChallengeError marked provider_down."""
    challenge = _challenge(world)
    with pytest.raises(ChallengeError) as refused:
        await _solver(world, "captcha-solver", key="wrong").solve(
            sitekey=challenge.sitekey, url="http://portal/"
        )
    assert refused.value.details == {"provider_down": True, "code": "ERROR_WRONG_USER_KEY"}
    dead = TwoCaptchaSolver("http://127.0.0.1:9", "k", poll_s=0.01)
    with pytest.raises(ChallengeError) as unreachable:
        await dead.solve(sitekey=challenge.sitekey, url="http://portal/")
    assert unreachable.value.details["provider_down"] is True
    unsolvable = _solver(world, "captcha-solver")
    with pytest.raises(ChallengeError) as foreign:
        await unsolvable.solve(sitekey="not-a-sandbox-key", url="http://portal/")
    assert foreign.value.details["provider_down"] is False


async def test_the_chain_falls_back_in_order_and_opens_a_breaker_on_a_dead_provider(
    world: SandboxWorld,
) -> None:
    """With the first provider down the second answers; then the first one's breaker opens."""
    world.chaos("captcha-solver").update({"down": True})
    try:
        chain = SolverChain(
            {
                "primary": _solver(world, "captcha-solver"),
                "backup": _solver(world, "captcha-backup"),
            },
            breaker=BreakerConfig(min_calls=2, failure_rate=0.5, open_s=60),
        )
        for _ in range(3):
            challenge = _challenge(world)
            answer = await chain.solve(sitekey=challenge.sitekey, url="http://portal/")
            assert captcha.verify(world.context("captcha-solver"), challenge.id, answer)
        assert chain.breakers["primary"].state == "open"
        assert [a.provider for a in chain.history] == [
            "primary",
            "backup",
            "primary",
            "backup",
            "backup",
        ]
    finally:
        world.chaos("captcha-solver").update({"down": False})


async def test_with_every_provider_down_a_person_is_the_last_solver(world: SandboxWorld) -> None:
    """When no provider answers, the chain raises ChallengeError asking for an operator."""
    world.chaos("captcha-solver").update({"down": True})
    try:
        chain = SolverChain({"only": _solver(world, "captcha-solver")})
        with pytest.raises(ChallengeError, match="operator") as caught:
            await chain.solve(sitekey=_challenge(world).sitekey, url="http://portal/")
        assert caught.value.details["needs_operator"] is True
    finally:
        world.chaos("captcha-solver").update({"down": False})
    with pytest.raises(ChallengeError, match="needs a person"):
        await OperatorSolver().solve(sitekey="k", url="http://portal/")


async def test_a_tenant_budget_caps_solves_and_refunds_failures(world: SandboxWorld) -> None:
    """Each tenant gets its own budget; a failed solve gives its reservation back."""
    budget = CaptchaBudget(2, per_tenant={"big": 5})
    chain = SolverChain({"sandbox": _solver(world, "captcha-solver")}, budget=budget)
    for _ in range(2):
        await chain.solve(sitekey=_challenge(world).sitekey, url="http://p/", tenant_id="small")
    with pytest.raises(ChallengeError) as spent:
        await chain.solve(sitekey=_challenge(world).sitekey, url="http://p/", tenant_id="small")
    assert spent.value.details["budget_exhausted"] is True
    await chain.solve(sitekey=_challenge(world).sitekey, url="http://p/", tenant_id="big")
    with pytest.raises(ChallengeError):
        await chain.solve(sitekey="foreign", url="http://p/", tenant_id="big")
    assert budget.spent("big") == 1
