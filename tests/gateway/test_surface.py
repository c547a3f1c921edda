"""The public surface: curated, sorted `__all__` lists and the client's error mapping."""

from __future__ import annotations

import httpx
import pytest

import portwright
import portwright.client
import portwright.gateway
from portwright.client import APIError, PaymentRequiredError, RateLimitedError
from portwright.client._errors import raise_for_answer


@pytest.mark.parametrize("module", [portwright, portwright.client, portwright.gateway])
def test_public_names_are_sorted_and_importable(module: object) -> None:
    """Each public module lists its names once, sorted, and every one resolves."""
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    for name in names:
        assert getattr(module, name) is not None


def test_client_and_async_client_are_top_level() -> None:
    """`portwright.Client` and `portwright.AsyncClient` are the typed clients."""
    assert portwright.Client is portwright.client.Client
    assert portwright.AsyncClient is portwright.client.AsyncClient


def test_error_answers_map_to_classes() -> None:
    """Status codes map to error classes carrying code, message, fields and Retry-After."""
    body = {"code": "rate_limited", "message": "slow down", "fields": []}
    response = httpx.Response(429, json=body, headers={"retry-after": "7"})
    with pytest.raises(RateLimitedError) as limited:
        raise_for_answer(response)
    assert limited.value.retry_after == 7.0
    with pytest.raises(PaymentRequiredError):
        raise_for_answer(httpx.Response(402, json={"code": "quota_exceeded", "message": "m"}))
    with pytest.raises(APIError) as odd:
        raise_for_answer(httpx.Response(502, text="bad gateway"))
    assert odd.value.code == "http_error"
