"""The portal's usage and webhook-endpoint pages (roles, CSRF, other tenants), the job-end
notifications through the outbox (email and the Telegram-style bot stand-in), and staff
alerts on the chat-webhook stand-in when the proxy pool runs empty or the captcha provider
is down (the sandbox's 2captcha with its balance spent)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portwright.orchestrator import JobService
from portwright.resources import SolverChain, TwoCaptchaSolver
from portwright.resources.proxies import PoolExhaustedError, Proxy, ProxyPool, StaticProxyList
from portwright.sandbox import SandboxWorld, captcha, echo, inbox, mail
from portwright.sdk import ChallengeError
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.customers._orders import STAFF_ROOM, bearer, serve_orders
from tests.customers._support import Portal, form_csrf, run

BOT_CHAT = "424242"


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    specs = [*inbox.specs(), *mail.specs(), *captcha.specs(), echo.echo_service()]
    with SandboxWorld(specs, seed=8) as w:
        yield w


@pytest.fixture
def portal(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    yield from serve_orders(settings, world, service_for)


@pytest.fixture
def alerting(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[tuple[Portal, ProxyPool, SolverChain]]:
    proxy = Proxy(
        name="dc-1", server="http://127.0.0.1:9", tier="datacenter", country="DE", provider="s"
    )
    pool = ProxyPool([StaticProxyList("static", [proxy])])
    # the real 2captcha client against the sandbox solver, its account run dry: every task
    # is refused with ERROR_ZERO_BALANCE, an answer that means the provider is down for us
    world.context("captcha-solver").options["balance"] = 0.0
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    chain = SolverChain({"2captcha": solver})
    for running in serve_orders(settings, world, service_for, identity=pool, captcha=chain):
        yield running, pool, chain


def _echo_job(portal: Portal, api: Any, url: str) -> str:
    created = api.post("/v1/jobs", json={"adapter": "echo", "input": {"url": url, "key": "k"}})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


def test_usage_page_shows_what_the_api_reports(portal: Portal) -> None:
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    member = portal.member(http, csrf)
    member_http, _ = portal.login(member)
    api = portal.client(**bearer(portal, owner))
    store = portal.service.store
    for _ in range(2):
        job_id = _echo_job(portal, api, portal.world.url("echo"))
        wait_until_sync(lambda j=job_id: store.jobs.get(j).status == "succeeded", timeout=60)
    usage = api.get("/v1/usage").json()
    assert usage["jobs"] == 2
    for who in (http, member_http):
        page = who.get("/app/usage")
        assert page.status_code == 200
        shown = re.search(r'id="usage-jobs">(\d+) / (\d+)<', page.text)
        assert shown, page.text
        assert (int(shown.group(1)), int(shown.group(2))) == (2, usage["jobs_limit"])
        assert owner in page.text  # usage by user: the token's user
    # Another tenant starts from zero.
    other, _ = portal.owner()
    other_http, _ = portal.login(other)
    assert 'id="usage-jobs">0 / ' in other_http.get("/app/usage").text


def test_webhook_endpoints_page_adds_lists_and_removes_owner_only(portal: Portal) -> None:
    owner, tenant_id = portal.owner()
    http, csrf = portal.login(owner)
    member = portal.member(http, csrf)
    member_http, member_csrf = portal.login(member)
    store = portal.service.store
    hook = portal.receiver.url

    # Refused input names the field; a private address the guard refuses is refused too.
    bad = http.post("/app/webhooks", data={"url": "ftp://x", "csrf_token": csrf})
    assert bad.status_code == 422
    assert "url: must start with" in bad.text
    private = http.post("/app/webhooks", data={"url": "http://10.1.2.3/h", "csrf_token": csrf})
    assert private.status_code == 422
    assert "url:" in private.text
    assert store.endpoints.search(tenant_id=tenant_id) == []

    added = http.post("/app/webhooks", data={"url": hook, "topics": "job.*", "csrf_token": csrf})
    assert added.status_code == 200, added.text
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', added.text)
    assert secret, "the signing secret is shown once"
    [endpoint] = store.endpoints.search(tenant_id=tenant_id)
    assert (endpoint.url, endpoint.topics) == (hook, ["job.*"])
    listed = http.get("/app/webhooks")
    assert hook in listed.text
    assert secret.group(1) not in listed.text
    api = portal.client(**bearer(portal, owner))
    assert [e["id"] for e in api.get("/v1/webhook-endpoints").json()["data"]] == [endpoint.id]

    # Events reach it, signed.
    job_id = _echo_job(portal, api, portal.world.url("echo"))
    wait_until_sync(
        lambda: any(e.get("data", {}).get("job_id") == job_id for e in portal.receiver.received),
        timeout=60,
    )

    # Members may not see or change endpoints; no CSRF token, no change.
    assert member_http.get("/app/webhooks").status_code == 403
    assert (
        member_http.post("/app/webhooks", data={"url": hook, "csrf_token": member_csrf}).status_code
        == 403
    )
    assert (
        member_http.post(
            f"/app/webhooks/{endpoint.id}/delete", data={"csrf_token": member_csrf}
        ).status_code
        == 403
    )
    assert http.post(f"/app/webhooks/{endpoint.id}/delete").status_code == 403

    # Another tenant's owner gets a 404 for it, page and API.
    other, _ = portal.owner()
    other_http, other_csrf = portal.login(other)
    gone = other_http.post(f"/app/webhooks/{endpoint.id}/delete", data={"csrf_token": other_csrf})
    assert gone.status_code == 404
    other_api = portal.client(**bearer(portal, other))
    assert other_api.delete(f"/v1/webhook-endpoints/{endpoint.id}").status_code == 404
    assert hook not in other_http.get("/app/webhooks").text
    assert len(store.endpoints.search(tenant_id=tenant_id)) == 1

    removed = http.post(f"/app/webhooks/{endpoint.id}/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert store.endpoints.search(tenant_id=tenant_id) == []
    assert hook not in http.get("/app/webhooks").text
    assert api.delete(f"/v1/webhook-endpoints/{endpoint.id}").status_code == 404


def test_job_end_notifications_by_email_and_bot(portal: Portal) -> None:
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    prefs = http.get("/app/preferences")
    assert 'name="chat_id"' in prefs.text
    refused = http.post(
        "/app/preferences", data={"chat_id": "not a chat", "csrf_token": form_csrf(prefs.text)}
    )
    assert refused.status_code == 422
    assert "chat_id" in refused.text
    saved = http.post(
        "/app/preferences",
        data={
            "chat_id": BOT_CHAT,
            "job_failed:email": "on",
            "job_failed:telegram": "on",
            "job_succeeded:email": "on",
            "report_ready:email": "on",
            "answer_needed:email": "on",
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303, saved.text
    api = portal.client(**bearer(portal, owner))
    store = portal.service.store

    ok = _echo_job(portal, api, portal.world.url("echo"))
    failed = _echo_job(portal, api, "http://10.9.9.9/")  # the SSRF guard refuses: it fails
    wait_until_sync(lambda: store.jobs.get(failed).status == "failed", timeout=60)
    wait_until_sync(lambda: store.jobs.get(ok).status == "succeeded", timeout=60)

    mail_ok = portal.wait_message(owner, contains=f"Job {ok} finished", channel="email")
    assert f"/app/jobs/{ok}" in mail_ok["body"]
    mail_failed = portal.wait_message(owner, contains=f"Job {failed} failed", channel="email")
    assert "10.9.9.9" in mail_failed["body"]
    bot = portal.wait_message(BOT_CHAT, contains=f"Job {failed} failed", channel="telegram")
    assert f"/app/jobs/{failed}" in bot["body"]
    # The bot got only what was chosen for it: not the success.
    assert not [m for m in portal.messages(BOT_CHAT, "telegram") if ok in m["body"]]
    # Each end was told once.
    ends = [m for m in portal.messages(owner, "email") if ok in m["subject"]]
    assert len(ends) == 1


def test_staff_alerts_reach_the_chat_webhook(
    alerting: tuple[Portal, ProxyPool, SolverChain],
) -> None:
    portal, pool, chain = alerting
    [proxy] = pool.offered()
    pool.burn(proxy, site="*", reason="banned everywhere", forever=True)
    with pytest.raises(PoolExhaustedError):
        pool.acquire(site="example.test")
    alert = portal.wait_message(STAFF_ROOM, contains="proxy pool empty", channel="chat")
    assert "example.test" in alert["body"]
    assert "[proxy_pool_empty]" in alert["body"]
    # A second empty pool within the quiet period is not a second message: asked before the
    # captcha alert, so a message for it would be queued (and sent) ahead of that one.
    with pytest.raises(PoolExhaustedError):
        pool.acquire(site="other.test")

    with pytest.raises(ChallengeError):
        run(chain.solve(sitekey="k", url="https://portal.example/form", tenant_id="t"))
    down = portal.wait_message(STAFF_ROOM, contains="captcha provider down", channel="chat")
    assert "ERROR_ZERO_BALANCE" in down["body"]
    sent = portal.messages(STAFF_ROOM, "chat")
    assert len(sent) == 2, [m["body"][:80] for m in sent]
    assert not [m for m in sent if "other.test" in m["body"]]
