"""Per-key concurrency caps (issue 16): a key whose unfinished jobs would pass its plan's cap
is refused at submission with a 429 naming the cap; another key of the same tenant is not;
once jobs end, the key submits again. On SQLite and PostgreSQL, through the real gateway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.gateway import create_app, issue_key
from portwright.gateway._plans import plan_of
from portwright.orchestrator import JobService
from portwright.resources.ssrf import UrlGuard
from portwright.sandbox import SandboxWorld
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.settings import Settings
from tests.conftest import RuntimeFactory
from tests.gateway._support import ServerThread
from tests.support import reaching


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    specs = [
        dataclasses.replace(s, options={**s.options, "rate_per_s": 0})
        for s in scrape_specs()
        if s.name == "scrape-static"
    ]
    with SandboxWorld(specs, seed=16) as w:
        yield w


@pytest.mark.timeout(300)
def test_a_key_over_its_plans_cap_is_refused_with_a_429_naming_it(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """Starter allows 200 unfinished jobs per key: two 100-item batches fill it (no worker
    runs them here), the next scrape is 429 `concurrency_limit` naming 200 and takes no
    quota; a second key of the tenant still submits; after jobs end the first key does too."""
    settings = reaching(settings, world).model_copy(
        update={
            "master_key": SecretStr("test-master-key-" + "x" * 32),
            "rate_limit_default": "100000/minute",
            "rate_limit_write": "100000/minute",
            "api_key_cache_s": 0.0,
        }
    )
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    runtime = make_runtime(registry, settings=settings, run_workers=False)
    service = JobService(runtime)
    first = issue_key(runtime.store, tenant="acme", plan="starter").key
    second = issue_key(runtime.store, tenant="acme", plan="starter").key
    cap = plan_of("starter").concurrent_jobs_per_key
    assert cap == 200
    server = ServerThread(create_app(service, settings)).start()
    site = world.url("scrape-static")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as api:
            mine = {"authorization": f"Bearer {first}"}
            ids: list[str] = []
            for batch in range(2):
                items = [{"url": f"{site}/product/{batch * 100 + i + 1}"} for i in range(100)]
                reply = api.post("/v1/batch", json={"items": items}, headers=mine)
                assert reply.status_code == 202, reply.text
                ids += [j["id"] for j in reply.json()["jobs"]]
            used = api.get("/v1/usage", headers=mine).json()["jobs"]

            refused = api.post("/v1/scrape", json={"url": f"{site}/product/999"}, headers=mine)
            assert refused.status_code == 429, refused.text
            body = refused.json()
            assert body["code"] == "concurrency_limit"
            assert "cap of 200 unfinished jobs per API key" in body["message"]
            assert "starter" in body["message"]
            assert refused.headers["retry-after"]
            assert api.get("/v1/usage", headers=mine).json()["jobs"] == used  # no quota taken

            theirs = {"authorization": f"Bearer {second}"}
            other = api.post("/v1/scrape", json={"url": f"{site}/product/1"}, headers=theirs)
            assert other.status_code == 202, other.text

            for job_id in ids[:5]:  # five end (cancelled): room for five more
                assert api.post(f"/v1/jobs/{job_id}/cancel", headers=mine).status_code < 300
            again = api.post("/v1/scrape", json={"url": f"{site}/product/998"}, headers=mine)
            assert again.status_code == 202, again.text
    finally:
        server.stop()
