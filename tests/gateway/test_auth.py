"""API keys: 401 for a missing, wrong or revoked key; 429 for repeated failures."""

from __future__ import annotations

from typing import Any

import httpx

from portwright.gateway.auth import parse_key
from tests.gateway._support import Stack, clear_of_window_edge, new_tenant_name


def test_missing_key_is_401(stack: Stack) -> None:
    """A request without a key is refused with 401 and a Bearer challenge."""
    response = httpx.get(f"{stack.base_url}/v1/jobs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json()["message"]


def test_wrong_and_malformed_keys_are_401(stack: Stack, api_key: str) -> None:
    """A key with the right prefix but a wrong secret, an unknown key and junk are all 401."""
    prefix, _ = parse_key(api_key) or ("", "")
    for key in (f"pw_{prefix}_wrong-secret", "pw_000000000000_nope", "junk", api_key + "x"):
        response = httpx.get(
            f"{stack.base_url}/v1/jobs", headers={"authorization": f"Bearer {key}"}
        )
        assert response.status_code == 401, key


def test_valid_key_by_either_header(stack: Stack, api_key: str) -> None:
    """A valid key is accepted as a Bearer token or in X-API-Key."""
    for headers in ({"authorization": f"Bearer {api_key}"}, {"x-api-key": api_key}):
        assert httpx.get(f"{stack.base_url}/v1/me", headers=headers).status_code == 200


def test_revoked_key_is_401(stack: Stack) -> None:
    """Once revoked, a key that worked is refused."""
    key = stack.new_key(new_tenant_name())
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(f"{stack.base_url}/v1/me", headers=headers).status_code == 200
    prefix, _ = parse_key(key) or ("", "")
    assert stack.store.accounts.revoke(prefix)
    assert httpx.get(f"{stack.base_url}/v1/me", headers=headers).status_code == 401


def test_repeated_auth_failures_are_rate_limited(stack: Stack, serve_variant: Any) -> None:
    """After the failure budget, even a valid key from that address gets 429 + Retry-After."""
    url = serve_variant(rate_limit_auth_failures="3/minute")
    good = stack.new_key(new_tenant_name())
    bad = {"authorization": "Bearer pw_000000000000_guess"}
    clear_of_window_edge()
    statuses = [httpx.get(f"{url}/v1/me", headers=bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = httpx.get(f"{url}/v1/me", headers={"authorization": f"Bearer {good}"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-limit"] == "3"
    assert limited.json()["code"] == "too_many_auth_failures"


def test_public_paths_need_no_key(stack: Stack) -> None:
    """The OpenAPI document and the docs page are served without a key."""
    assert httpx.get(f"{stack.base_url}/openapi.json").status_code == 200
    docs = httpx.get(f"{stack.base_url}/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
