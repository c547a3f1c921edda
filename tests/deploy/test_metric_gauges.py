"""The gauges the alert rules added: the queue's and the escalations' oldest ages (read from
the database, on SQLite and PostgreSQL), and a process's proxy pool and captcha budget."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from portwright.observability import PROCESS, Metrics
from portwright.resources import CaptchaBudget
from portwright.resources.proxies import GLOBAL, Proxy, ProxyPool, StaticProxyList
from portwright.store import Store
from portwright.store._schema import escalations, jobs


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def _job(store: Store, tenant: str, job_id: str, status: str) -> None:
    store.jobs.insert(
        job_id=job_id, tenant_id=tenant, adapter="consulate", adapter_version="1",
        portal="consulate", state="QUEUED", status=status, input={}, lock_key=None,
        priority=0, actor="test",
    )  # fmt: skip


def test_oldest_queued_job_and_oldest_open_escalation_ages(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        metrics = Metrics(store)
        tenant = store.tenants.ensure("acme").id
        store.portals.ensure("consulate", max_concurrency=1)
        for job_id in ("j-old", "j-new", "j-running"):
            _job(store, tenant, job_id, "running" if job_id == "j-running" else "queued")
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(jobs).where(jobs.c.id.in_(["j-old", "j-running"]))
                .values(updated_at=jobs.c.updated_at - 600)
            )  # fmt: skip
        ages = _samples(metrics.render().decode(), "portwright_queue_oldest_age_seconds")
        [(labels, age)] = ages.items()
        assert labels == (("queue", "consulate"),)
        assert 600 <= age < 900  # the oldest queued one; the running one is not waiting
        job = store.jobs.get("j-old", tenant_id=tenant)
        assert job is not None
        with store.engine.begin() as conn:
            opened = store.jobs.open_escalation(
                conn, job, kind="captcha", step="login", reason="test", details={}
            )
            conn.execute(
                sa.update(escalations).where(escalations.c.id == opened)
                .values(created_at=escalations.c.created_at - 1200)
            )  # fmt: skip
        text = metrics.render().decode()
        [(labels, age)] = _samples(text, "portwright_escalation_oldest_age_seconds").items()
        assert labels == (("portal", "consulate"),)
        assert 1200 <= age < 1500
        with store.engine.begin() as conn:
            conn.execute(sa.update(escalations).values(status="resolved"))
        text = metrics.render().decode()
        assert _samples(text, "portwright_escalation_oldest_age_seconds") == {}
    finally:
        store.engine.dispose()


def test_proxy_pool_usable_and_captcha_budget_spent_are_exported() -> None:
    provider = f"gauge-{uuid.uuid4().hex[:8]}"  # this test's rows among the process's pools
    proxies = [
        Proxy(name=f"{provider}-{i}", server=f"http://10.0.0.{i}:8080", tier="datacenter",
              country="DE", provider=provider)
        for i in range(4)
    ]  # fmt: skip
    pool = ProxyPool([StaticProxyList(provider, proxies)])
    pool.burn(proxies[0], site=GLOBAL, reason="banned everywhere", forever=True)
    pool.burn(proxies[1], site="portal.example", reason="banned by one site")
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    budget = CaptchaBudget(5, per_tenant={f"{tenant}-big": 10})
    for _ in range(4):
        assert budget.try_spend(tenant)
    text = generate_latest(PROCESS.registry).decode()
    key = (("provider", provider),)
    assert _samples(text, "portwright_proxy_pool_size")[key] == 4
    assert _samples(text, "portwright_proxy_pool_usable")[key] == 3  # one site's ban: usable
    spent = _samples(text, "portwright_captcha_budget_spent")
    limit = _samples(text, "portwright_captcha_budget_limit")
    assert spent[(("tenant", tenant),)] == 4
    assert limit[(("tenant", tenant),)] == 5
    assert spent[(("tenant", f"{tenant}-big"),)] == 0
    assert limit[(("tenant", f"{tenant}-big"),)] == 10
    del pool, budget  # tracked weakly: gone with them
    import gc

    gc.collect()
    text = generate_latest(PROCESS.registry).decode()
    assert key not in _samples(text, "portwright_proxy_pool_size")
    assert (("tenant", tenant),) not in _samples(text, "portwright_captcha_budget_spent")
