"""Rate limits per key and route, tighter on input submission, shared through Redis."""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portwright.testing import wait_until_sync
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


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a spare loopback port (stopped at the end)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def up() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        wait_until_sync(up, timeout=20)
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=20)


def _fallbacks(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(r"^portwright_ratelimit_fallback_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_redis_stopped_mid_run_fails_open_to_per_process_limits(
    stack: Stack,
    serve_variant: Any,
    own_redis: tuple[str, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Requests counted in Redis; Redis is stopped; requests keep flowing (no 5xx), now
    limited by this process's own buckets (the 7th of 6/minute is 429 again), with the
    fallback metric moving and one warning saying so."""
    redis_url, server = own_redis
    url = serve_variant(redis_url=redis_url, rate_limit_default="6/minute")
    key = stack.new_key(new_tenant_name(f"redis-down-{secrets.token_hex(2)}"))
    clear_of_window_edge(margin_s=20.0)
    shared = [httpx.get(f"{url}/v1/usage", headers=_auth(key)) for _ in range(2)]
    assert [r.status_code for r in shared] == [200, 200]
    assert shared[1].headers["ratelimit-remaining"] == "4"  # counted in Redis
    before = _fallbacks(url)

    server.terminate()  # Redis goes away mid-run
    server.wait(timeout=20)

    answers = [httpx.get(f"{url}/v1/usage", headers=_auth(key)) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 6 + [429], [a.text for a in answers]
    assert answers[0].headers["ratelimit-remaining"] == "5"  # a fresh per-process bucket
    assert _fallbacks(url) >= before + 7
    assert re.search(r"^portwright_ratelimit_degraded 1\.0$", httpx.get(f"{url}/metrics").text,
                     re.MULTILINE)  # fmt: skip
    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert logs.count("redis unreachable: rate limits fail open to per-process limits") == 1
