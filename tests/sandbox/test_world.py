"""The sandbox world runner: services on loopback, one admin endpoint, runtime knobs."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from portwright.sandbox import ChaosKnobs, SandboxWorld, ServiceContext, ServiceSpec


def _echo(ctx: ServiceContext) -> Starlette:
    async def hello(_: Request) -> PlainTextResponse:
        ctx.ledger.record("hello", "k", "tester")
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/", hello)])


def test_world_serves_each_service_and_flips_knobs_at_runtime() -> None:
    """A knob changed through the admin endpoint takes effect on the very next request."""
    specs = [ServiceSpec("a", _echo), ServiceSpec("b", _echo, knobs=ChaosKnobs(rate_429=1.0))]
    with SandboxWorld(specs, seed=3) as world:
        assert httpx.get(world.url("a")).text == "hi"
        limited = httpx.get(world.url("b"))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2.0"
        r = httpx.patch(f"{world.admin_url}/services/b/chaos", json={"rate_429": 0})
        assert r.status_code == 200
        assert httpx.get(world.url("b")).status_code == 200
        ledger = httpx.get(f"{world.admin_url}/services/a/ledger").json()["entries"]
        assert [e["kind"] for e in ledger] == ["hello"]


def test_admin_rejects_a_bad_knob_naming_the_field() -> None:
    """An out-of-range knob is refused with 422 naming the field, and the old value stays."""
    with SandboxWorld([ServiceSpec("a", _echo)], seed=3) as world:
        r = httpx.patch(f"{world.admin_url}/services/a/chaos", json={"rate_5xx": 3})
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "rate_5xx"
        assert world.chaos("a").knobs.rate_5xx == 0.0
        missing = httpx.get(f"{world.admin_url}/services/nope/chaos")
        assert missing.status_code == 404
        assert missing.json()["known"] == ["a"]


def test_same_seed_reproduces_the_same_faults() -> None:
    """Two worlds with one seed fault the same requests; another seed faults others."""

    def statuses(seed: int) -> list[int]:
        spec = ServiceSpec("a", _echo, knobs=ChaosKnobs(rate_5xx=0.5))
        with SandboxWorld([spec], seed=seed) as world, httpx.Client() as client:
            return [client.get(world.url("a")).status_code for _ in range(40)]

    first = statuses(11)
    assert first == statuses(11)
    assert first != statuses(12)
    assert 5 < first.count(503) < 35
