"""Rate limits per key and route, tighter on input submission, shared through Redis."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.gateway._support import Stack, clear_of_window_edge, new_tenant_name


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_write_limit_per_key_and_route(stack: Stack, serve_variant: Any) -> None:
    """The fourth POST within the window is 429 with Retry-After; reads keep their own budget."""
    url = serve_variant(rate_limit_write="3/minute")
    key = stack.new_key(new_tenant_name())
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "r"}}
    clear_of_window_edge()
    answers = [httpx.post(f"{url}/v1/jobs", json=body, headers=_auth(key)) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert answers[0].headers["ratelimit-remaining"] == "2"
    assert answers[0].headers["ratelimit-policy"] == "3;w=60"
    assert int(answers[3].headers["retry-after"]) >= 1
    assert answers[3].json()["code"] == "rate_limited"
    assert httpx.get(f"{url}/v1/jobs", headers=_auth(key)).status_code == 200
    other = stack.new_key(new_tenant_name())
    assert httpx.post(f"{url}/v1/jobs", json=body, headers=_auth(other)).status_code == 202


def test_input_route_is_tighter(stack: Stack, serve_variant: Any) -> None:
    """Code submission has its own small budget: the third try in a window is 429."""
    url = serve_variant(rate_limit_sensitive="2/minute")
    key = stack.new_key(new_tenant_name())
    job = httpx.post(
        f"{url}/v1/jobs", json={"adapter": "booking-stub", "input": {}}, headers=_auth(key)
    ).json()
    clear_of_window_edge()
    statuses = [
        httpx.post(
            f"{url}/v1/jobs/{job['id']}/input",
            json={"name": "otp", "value": f"{n:06d}"},
            headers=_auth(key),
        ).status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_redis_buckets_are_shared_between_gateways(stack: Stack, serve_variant: Any) -> None:
    """Two gateway processes on one Redis draw from one bucket per key and route."""
    redis = {"redis_url": "redis://127.0.0.1:6379/0", "rate_limit_default": "4/minute"}
    first, second = serve_variant(**redis), serve_variant(**redis)
    key = stack.new_key(new_tenant_name(f"redis-{secrets.token_hex(2)}"))
    clear_of_window_edge()
    statuses = [
        httpx.get(f"{url}/v1/usage", headers=_auth(key)).status_code
        for url in (first, second, first, second, first)
    ]
    assert statuses == [200, 200, 200, 200, 429]
