"""A job's input URLs pass the SSRF guard where the bytes leave, whatever adapter runs them.

A tenant naming a loopback port in `portal_url` (consulate) or `directories_url`
(directories) gets a failed job whose reason names the URL and why; the listener on that
port sees no request, and no evidence of it is stored. The same port on the operator's
allowlist (`Settings.url_allowlist`) is reached: the refusal is the guard's, not chance.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portwright.adapters import default_registry
from portwright.apps.directories.demo import PROFILE
from portwright.engines import find_chromium
from portwright.orchestrator import JobService
from portwright.settings import Settings
from portwright.testing import wait_until, wait_until_sync
from tests.support import Listener

ServiceFor = Callable[..., JobService]
MARKER = "internal-admin-secret"
PAGE = f"<html><body><h1>{MARKER}</h1></body></html>"


@pytest.fixture
def target() -> Iterator[Listener]:
    """An internal service on loopback that a tenant would like to read."""
    with Listener("127.0.0.1", 0, body=PAGE) as listener:
        yield listener


@pytest.fixture
def decoy() -> Iterator[Listener]:
    """Another loopback service the operator did allowlist (so the list is not empty)."""
    with Listener("127.0.0.1", 0, body="decoy") as listener:
        yield listener


def _inputs(url: str) -> dict[str, dict[str, Any]]:
    return {
        "consulate": {
            "portal_url": url,
            "account_email": "ada@example.com",
            "center": "LON",
            "visa_type": "tourist",
        },
        "directory-submission": {"profile": PROFILE, "plan": 50, "directories_url": url},
    }


async def _settled(svc: JobService, job_id: str) -> Any:
    async def done() -> Any:
        job = await svc.get(job_id)
        return job if job.status in ("succeeded", "failed", "needs_attention") else None

    return await wait_until(done, timeout=60)


def _stored(svc: JobService, job_id: str) -> list[bytes]:
    return [svc.rt.blobs.get(e.blob_key) for e in svc.store.jobs.evidence(job_id)]


@pytest.mark.parametrize("adapter", ["consulate", "directory-submission"])
async def test_an_input_url_on_a_loopback_port_fails_the_job_and_reaches_nothing(
    service_for: ServiceFor,
    settings: Settings,
    target: Listener,
    decoy: Listener,
    adapter: str,
) -> None:
    allow = [f"127.0.0.1:{decoy.port}"]
    svc = service_for(
        default_registry(), settings=settings.model_copy(update={"url_allowlist": allow})
    )
    tenant = svc.store.tenants.ensure("acme")
    url = f"http://127.0.0.1:{target.port}/x"
    job = await svc.submit(tenant_id=tenant.id, adapter=adapter, input=_inputs(url)[adapter])
    settled = await _settled(svc, job.id)
    assert settled.status == "failed", (settled.status, settled.reason)
    reason = settled.reason or ""
    assert "SSRF guard" in reason, reason
    assert f"127.0.0.1:{target.port}" in reason, reason
    assert "loopback" in reason, reason
    assert target.hits == []
    assert decoy.hits == []
    assert all(MARKER.encode() not in blob for blob in _stored(svc, job.id))
    assert settled.error_class == "permanent"  # not retried


async def test_the_same_port_on_the_allowlist_is_reached(
    service_for: ServiceFor, settings: Settings, target: Listener
) -> None:
    """Control: allowlisted by the operator, the consulate job does reach the listener
    (and, the page not being a consulate's, stores it as evidence: the leak the guard
    stops for ports nobody listed)."""
    allow = [f"127.0.0.1:{target.port}"]
    svc = service_for(
        default_registry(), settings=settings.model_copy(update={"url_allowlist": allow})
    )
    tenant = svc.store.tenants.ensure("acme")
    url = f"http://127.0.0.1:{target.port}/x"
    job = await svc.submit(
        tenant_id=tenant.id, adapter="consulate", input=_inputs(url)["consulate"]
    )

    def leaked() -> bool:
        return any(MARKER.encode() in blob for blob in _stored(svc, job.id))

    await wait_until(leaked, timeout=60)
    assert target.hits[0].startswith("GET /login")


@pytest.mark.browser
async def test_a_board_url_on_a_loopback_port_fails_the_browser_job(
    service_for: ServiceFor, settings: Settings, target: Listener, decoy: Listener
) -> None:
    """The job board adapter drives the step's browser (`sc.browser()`): its navigation to
    the loopback port is refused by the step's guard proxy, and the job fails for it."""
    from portwright.engines import Fleet
    from portwright.engines.browser import BrowserPool, PoolConfig
    from tests.adapters.test_jobboard import applicant

    allow = [f"127.0.0.1:{decoy.port}"]
    fleet = Fleet(browsers=BrowserPool(config=PoolConfig(max_browsers=1, idle_close_s=30)))
    mine = settings.model_copy(update={"url_allowlist": allow})
    svc = service_for(default_registry(), settings=mine, fleet=fleet)
    tenant = svc.store.tenants.ensure("acme")
    url = f"http://127.0.0.1:{target.port}"
    data = {"board_url": url, "job_id": 1, "applicant": applicant(), "live": False}
    job = await svc.submit(tenant_id=tenant.id, adapter="jobboard", input=data)
    settled = await _settled(svc, job.id)
    assert settled.status == "failed", (settled.status, settled.reason)
    assert "SSRF guard" in (settled.reason or ""), settled.reason
    assert f"127.0.0.1:{target.port}" in (settled.reason or "")
    assert settled.error_class == "permanent"
    assert target.hits == []
    assert all(MARKER.encode() not in blob for blob in _stored(svc, job.id))


@pytest.fixture
def remote_cdp(tmp_path: Path) -> Iterator[str]:
    """A Chromium listening for CDP on a loopback port, reached as a remote provider."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [find_chromium(None), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={tmp_path / 'remote-profile'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/json/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until_sync(up, timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_a_board_url_on_a_loopback_port_fails_the_browser_job_on_a_remote_browser(
    service_for: ServiceFor, settings: Settings, target: Listener, decoy: Listener,
    remote_cdp: str,
) -> None:  # fmt: skip
    """The same job on a remote (CDP) browser, which gets no loopback guard proxy: the
    step's route guard refuses the navigation, the job fails for it, nothing is reached."""
    from portwright.engines import Fleet
    from portwright.engines.browser import BrowserPool, PoolConfig, RemoteCdp
    from tests.adapters.test_jobboard import applicant

    allow = [f"127.0.0.1:{decoy.port}"]
    pool = BrowserPool(RemoteCdp(remote_cdp), config=PoolConfig(max_browsers=1, idle_close_s=30))
    mine = settings.model_copy(update={"url_allowlist": allow})
    svc = service_for(default_registry(), settings=mine, fleet=Fleet(browsers=pool))
    tenant = svc.store.tenants.ensure("acme")
    url = f"http://127.0.0.1:{target.port}"
    data = {"board_url": url, "job_id": 1, "applicant": applicant(), "live": False}
    job = await svc.submit(tenant_id=tenant.id, adapter="jobboard", input=data)
    settled = await _settled(svc, job.id)
    assert settled.status == "failed", (settled.status, settled.reason)
    assert "SSRF guard" in (settled.reason or ""), settled.reason
    assert f"127.0.0.1:{target.port}" in (settled.reason or "")
    assert settled.error_class == "permanent"
    assert target.hits == []
    assert pool.stats().launched == 1  # the job's browser was the remote one
