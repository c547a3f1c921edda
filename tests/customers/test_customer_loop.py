"""The customer in the loop: `job.ask_customer` notifies the tenant's users (email, and SMS
where they chose it), shows the question in the portal, and resumes the job with the
answer given there or through the API; on timeout the customer is told and the adapter's
own way back (or an operator) takes over. The consulate asks for its one-time code so."""

from __future__ import annotations

import re
import secrets
from typing import Any

from portwright.testing import wait_until_sync
from tests.customers._support import Portal, run


def _job(portal: Portal, job_id: str) -> Any:
    return portal.service.store.jobs.get(job_id)


def _submit(portal: Portal, email: str, adapter: str, data: dict[str, Any]) -> str:
    token = portal.client().post(
        "/v1/auth/token", json={"email": email, "password": "a long enough secret"}
    )
    api = portal.client(authorization=f"Bearer {token.json()['access_token']}")
    created = api.post("/v1/jobs", json={"adapter": adapter, "input": data})
    assert created.status_code in (200, 201, 202), created.text
    job_id: str = created.json()["id"]
    return job_id


def _waiting(portal: Portal, job_id: str) -> bool:
    job = _job(portal, job_id)
    return bool(job.status == "waiting" and job.waiting_for)


def test_customer_answers_in_the_portal_and_the_job_submits_once(portal: Portal) -> None:
    """Owner and member are told (the member by SMS too, as they chose); the member answers
    in the portal; the job resumes with that answer and submits exactly once."""
    owner, _ = portal.owner()
    owner_http, owner_csrf = portal.login(owner)
    member = portal.member(owner_http, owner_csrf)
    phone = f"+4915{secrets.randbelow(10**8):08d}"
    http, csrf = portal.login(member)
    saved = http.post(
        "/app/preferences",
        data={
            "csrf_token": csrf,
            "phone": phone,
            "answer_needed:email": "on",
            "answer_needed:sms": "on",
        },
    )
    assert saved.status_code == 303

    job_id = _submit(portal, owner, "asking", {"question": "Submit to Nimbus Labs?"})
    wait_until_sync(lambda: _waiting(portal, job_id), timeout=60)
    for to in (owner, member):
        mail = portal.wait_message(to, contains=f"Job {job_id} needs your answer", channel="email")
        assert "Submit to Nimbus Labs?" in mail["body"]
        assert f"{portal.url}/app/jobs/{job_id}" in mail["body"]
    sms = portal.wait_message(phone, contains="Submit to Nimbus Labs?", channel="sms")
    assert job_id in sms["body"]
    assert portal.messages(owner, "sms") == []  # the owner gave no phone

    page = http.get(f"/app/jobs/{job_id}")
    assert page.status_code == 200
    assert 'id="prompt"' in page.text
    assert "Submit to Nimbus Labs?" in page.text
    sent = http.post(
        f"/app/jobs/{job_id}/answer", data={"name": "approval", "value": "yes", "csrf_token": csrf}
    )
    assert sent.status_code == 303
    wait_until_sync(lambda: _job(portal, job_id).status == "succeeded", timeout=60)
    assert _job(portal, job_id).output == {"approved": "yes"}
    events = run(portal.service.events(job_id))
    assert [e.to_state for e in events].count("SUBMITTED") == 1
    # a second answer to a finished job is refused, nothing runs twice
    late = http.post(
        f"/app/jobs/{job_id}/answer",
        data={"name": "approval", "value": "again", "csrf_token": csrf},
    )
    assert late.status_code == 409
    assert 'id="prompt"' not in http.get(f"/app/jobs/{job_id}").text


def test_customer_answers_through_the_api(portal: Portal) -> None:
    """The same question answered with an access token on `POST /v1/jobs/{id}/input`."""
    owner, _ = portal.owner()
    job_id = _submit(portal, owner, "asking", {})
    wait_until_sync(lambda: _waiting(portal, job_id), timeout=60)
    token = portal.client().post(
        "/v1/auth/token", json={"email": owner, "password": "a long enough secret"}
    )
    api = portal.client(authorization=f"Bearer {token.json()['access_token']}")
    answer = api.post(f"/v1/jobs/{job_id}/input", json={"name": "approval", "value": "ok"})
    assert answer.status_code == 202, answer.text
    wait_until_sync(lambda: _job(portal, job_id).status == "succeeded", timeout=60)
    assert _job(portal, job_id).output == {"approved": "ok"}
    events = run(portal.service.events(job_id))
    assert any(e.to_state == "SUBMITTED" for e in events)


def test_no_answer_in_time_tells_the_customer_and_takes_the_adapters_path(portal: Portal) -> None:
    """A question left unanswered: the customer gets an 'expired' email and the adapter's
    own way back runs (here: the job fails naming why)."""
    owner, _ = portal.owner()
    job_id = _submit(portal, owner, "asking", {"timeout_s": 1.5})
    wait_until_sync(lambda: _job(portal, job_id).status == "failed", timeout=60)
    assert "did not approve in time" in (_job(portal, job_id).reason or "")
    mail = portal.wait_message(owner, contains="the time to answer is over")
    assert job_id in mail["subject"]


def test_no_answer_in_time_can_go_to_an_operator(portal: Portal) -> None:
    """With fallback "operator", the unanswered question becomes an escalation; the
    operator's value resumes the job."""
    owner, tenant_id = portal.owner()
    job_id = _submit(portal, owner, "asking", {"timeout_s": 1.0, "fallback": "operator"})

    def escalation() -> Any:
        found = run(portal.service.escalations(tenant_id=tenant_id))
        return next((e for e in found if e.job_id == job_id and e.status == "open"), None)

    esc = wait_until_sync(escalation, timeout=60)
    assert esc.kind == "customer_timeout"  # type: ignore[attr-defined]
    run(portal.service.decide(esc.id, "resume", actor="op:test", value="operator-ok"))  # type: ignore[attr-defined]
    wait_until_sync(lambda: _job(portal, job_id).status == "succeeded", timeout=60)
    assert _job(portal, job_id).output == {"approved": "operator-ok"}


def _booking(portal: Portal, n: int, otp_timeout_s: float) -> dict[str, Any]:
    return {
        "portal_url": portal.world.url("consulate"),
        "account_email": f"user{n}@example.test",
        "credential": "consulate-login",
        "center": "LON",
        "visa_type": "tourist",
        "otp_source": "user",
        "otp_timeout_s": otp_timeout_s,
        "scan_interval_s": 0.3,
        "deadline_s": 300.0,
        "payment_wait_s": 0.5,
    }


def test_consulate_code_entered_by_the_customer_within_the_hold(portal: Portal) -> None:
    """A booking whose hold needs a code: the customer is told by SMS, reads the portal's
    code, types it in our portal within the hold; the booking confirms. A second booking
    whose code never comes goes back to scanning, with the customer's webhook and email."""
    owner, tenant_id = portal.owner()
    http, csrf = portal.login(owner)
    phone = f"+4916{secrets.randbelow(10**8):08d}"
    assert (
        http.post(
            "/app/preferences",
            data={
                "csrf_token": csrf,
                "phone": phone,
                "answer_needed:sms": "on",
                "answer_expired:email": "on",
            },
        ).status_code
        == 303
    )
    assert (
        http.post(
            "/app/credentials",
            data={"name": "consulate-login", "value": "pw-31", "csrf_token": csrf},
        ).status_code
        == 303
    )
    token = portal.client().post(
        "/v1/auth/token", json={"email": owner, "password": "a long enough secret"}
    )
    api = portal.client(authorization=f"Bearer {token.json()['access_token']}")
    hook = api.post("/v1/webhook-endpoints", json={"url": portal.receiver.url, "topics": ["job.*"]})
    assert hook.status_code == 201, hook.text

    job_id = _submit(portal, owner, "consulate", _booking(portal, 31, 30.0))
    sms = portal.wait_message(phone, contains="one-time code", channel="sms", timeout=90)
    assert job_id in sms["body"]
    portal_code = portal.wait_message("user31@example.test", channel="email", contains="")
    code = portal_code["code"]
    assert re.fullmatch(r"\d{6}", code)
    page = http.get(f"/app/jobs/{job_id}")
    assert 'inputmode="numeric"' in page.text  # the prompt asks for a code
    sent = http.post(
        f"/app/jobs/{job_id}/answer", data={"name": "otp", "value": code, "csrf_token": csrf}
    )
    assert sent.status_code == 303
    wait_until_sync(lambda: _job(portal, job_id).status == "succeeded", timeout=90)
    assert _job(portal, job_id).output["reference"]

    second = _submit(portal, owner, "consulate", _booking(portal, 31, 2.0))

    def back_to_scanning() -> bool:
        events = run(portal.service.events(second))
        return any(
            e.to_state == "SCANNING" and "no code before the hold expired" in e.reason
            for e in events
        )

    wait_until_sync(back_to_scanning, timeout=90)
    mail = portal.wait_message(owner, contains="the time to answer is over")
    assert second in mail["subject"]

    def webhook() -> bool:
        return any(
            body.get("data", {}).get("job_id") == second
            and "no code before the hold expired" in body["data"].get("reason", "")
            for body in portal.receiver.received
        )

    wait_until_sync(webhook, timeout=60)
    run(portal.service.cancel(second, actor="test", tenant_id=tenant_id))
