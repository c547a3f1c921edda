"""What docs/adapters.md says about a worker's `sc.http` and status handling, checked on
the worker's own client (`new_client` with the SSRF guard) against loopback servers."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from portwright.engines.http import classify_response, new_client
from portwright.resources.ssrf import UrlGuard, parse_allowlist, refusing
from portwright.sdk import PermanentError, StepContext
from portwright.testing import FakeStepContext


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Hops(http.server.BaseHTTPRequestHandler):
    """/hop/N redirects to /hop/N-1 until /hop/0, which answers 200; /away redirects to
    the class's `away` URL."""

    away = ""

    def do_GET(self) -> None:
        if self.path == "/away":
            self.send_response(302)
            self.send_header("location", self.away)
        else:
            n = int(self.path.rsplit("/", 1)[1])
            self.send_response(200 if n == 0 else 302)
            if n:
                self.send_header("location", f"/hop/{n - 1}")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hops() -> Iterator[int]:
    with _serve(_Hops) as port:
        yield port


def _guarded(port: int) -> httpx.AsyncClient:
    return new_client(guard=refusing(UrlGuard(parse_allowlist([f"127.0.0.1:{port}"]))))


async def test_sc_http_follows_twenty_redirects_and_not_twenty_one(hops: int) -> None:
    async with _guarded(hops) as client:
        response = await client.get(f"http://127.0.0.1:{hops}/hop/20")
        assert response.status_code == 200
        assert len(response.history) == 20
        with pytest.raises(httpx.TooManyRedirects):
            await client.get(f"http://127.0.0.1:{hops}/hop/21")


async def test_a_step_past_twenty_redirects_parks_the_job_for_an_operator(hops: int) -> None:
    """The guide: past 20 hops the step fails with TooManyRedirects, an unexpected error
    (not a transient one: retrying would loop again), which a worker parks for an operator."""

    async def follow(sc: StepContext, url: str) -> int:
        return (await sc.http.get(url)).status_code

    async with FakeStepContext() as sc:
        fine = await sc.run_step(follow, f"http://127.0.0.1:{hops}/hop/20")
        looped = await sc.run_step(follow, f"http://127.0.0.1:{hops}/hop/21")
    assert (fine.value, fine.action) == (200, "return")
    assert isinstance(looped.error, httpx.TooManyRedirects)
    assert (looped.error_class, looped.action) == ("unexpected", "operator")


async def test_each_redirect_hop_passes_the_ssrf_guard(hops: int) -> None:
    with _serve(_Hops) as other:  # a second loopback server, not on the allowlist
        _Hops.away = f"http://127.0.0.1:{other}/hop/0"
        try:
            async with _guarded(hops) as client:
                with pytest.raises(PermanentError, match=f"127.0.0.1:{other}") as raised:
                    await client.get(f"http://127.0.0.1:{hops}/away")
        finally:
            _Hops.away = ""
    assert "SSRF guard" in str(raised.value)


@pytest.mark.parametrize("status", [400, 401, 404, 409, 410, 501], ids=str)
def test_client_errors_are_not_classified(status: int) -> None:
    request = httpx.Request("GET", "https://shop.example/x")
    classify_response(httpx.Response(status, request=request))  # returns: the step decides


def test_the_guide_states_the_breaker_defaults_and_credential_rules() -> None:
    """If the breaker's defaults or the credential API change, the guide must change too."""
    from pathlib import Path

    from portwright.client._models import NAME_PATTERN, CredentialPut
    from portwright.store import BreakerPolicy

    guide = (Path(__file__).resolve().parents[2] / "docs/adapters.md").read_text()
    policy = BreakerPolicy()
    for knob in ("window_s", "min_calls", "failure_rate", "open_s", "probe_lease_s"):
        assert f"`{knob} = {getattr(policy, knob):g}`" in guide, knob
    assert f"`{NAME_PATTERN}`" in guide
    assert set(CredentialPut.model_fields) == {"value"}
    assert '`{"value": "…"}`' in guide
