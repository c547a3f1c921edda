"""Access tokens on the API beside API keys, and the portal's tenant and role boundaries:
another tenant's job, key or credential is a 404; a member may not manage keys,
credentials or members (403); credentials are write-only."""

from __future__ import annotations

import re
import secrets
import time

import httpx
import pytest

from portwright.customers import access_tokens
from portwright.gateway import issue_key
from portwright.resources.vault import Vault
from portwright.webauth import AccessTokens
from tests.customers._support import PASSWORD, Portal, form_csrf


def _token(portal: Portal, email: str, password: str = PASSWORD) -> httpx.Response:
    return portal.client().post("/v1/auth/token", json={"email": email, "password": password})


def _asking_job(portal: Portal, bearer: str) -> str:
    api = portal.client(authorization=f"Bearer {bearer}")
    created = api.post("/v1/jobs", json={"adapter": "asking", "input": {"timeout_s": 120}})
    assert created.status_code in (200, 201, 202), created.text
    job_id: str = created.json()["id"]
    return job_id


def test_access_token_is_accepted_beside_api_keys(portal: Portal) -> None:
    """A verified user's token authenticates /v1 as that user of their tenant; jobs it
    submits are the tenant's (the portal lists them)."""
    email, tenant_id = portal.owner()
    answer = _token(portal, email)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 900
    assert body["tenant_id"] == tenant_id
    api = portal.client(authorization=f"Bearer {body['access_token']}")
    me = api.get("/v1/me").json()
    assert (me["tenant_id"], me["role"], me["user_id"]) == (tenant_id, "owner", body["user_id"])
    assert me["key_prefix"] == f"user:{body['user_id']}"
    job_id = _asking_job(portal, body["access_token"])
    assert portal.service.store.jobs.get(job_id).tenant_id == tenant_id
    http, _ = portal.login(email)
    assert job_id in http.get("/app/").text


@pytest.mark.parametrize(
    "case", ["wrong-password", "unknown-email", "expired", "tampered", "foreign-key"]
)
def test_bad_credentials_and_tokens_are_refused(portal: Portal, case: str) -> None:
    """Wrong credentials are a 401 at the token route; an expired, altered or foreign-signed
    token is a 401 on the API."""
    email, tenant_id = portal.owner()
    user = portal.service.store.customers.user_by_email(email)
    assert user is not None
    if case in ("wrong-password", "unknown-email"):
        who = email if case == "wrong-password" else f"nobody-{secrets.token_hex(2)}@x.test"
        answer = _token(portal, who, "not the password")
        assert answer.status_code == 401
        assert "wrong email or password" in answer.json()["message"]
        return
    signer = access_tokens(Vault.from_settings(portal.settings))
    if case == "expired":
        token = signer.issue(
            user_id=user.id, tenant_id=tenant_id, role="owner", now=time.time() - 3600
        )
    elif case == "tampered":
        good = signer.issue(user_id=user.id, tenant_id=tenant_id, role="owner")
        head, claims, sig = good.split(".")
        token = f"{head}.{claims}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    else:
        token = AccessTokens(secrets.token_bytes(32)).issue(
            user_id=user.id, tenant_id=tenant_id, role="owner"
        )
    assert signer.verify(token) is None
    answer = portal.client(authorization=f"Bearer {token}").get("/v1/me")
    assert answer.status_code == 401
    assert "access token" in answer.json()["message"]


def test_unverified_and_disabled_users_get_no_access(portal: Portal) -> None:
    """An unverified user gets a 403 naming the email; a disabled user's token stops working."""
    email = f"new-{secrets.token_hex(3)}@example.test"
    assert portal.signup(f"org-{secrets.token_hex(3)}", email).status_code == 200
    refused = _token(portal, email)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("email: not verified")
    owner, _ = portal.owner()
    token = _token(portal, owner).json()["access_token"]
    api = portal.client(authorization=f"Bearer {token}")
    assert api.get("/v1/me").status_code == 200
    user = portal.service.store.customers.user_by_email(owner)
    assert user is not None
    portal.service.store.customers.update_user(user.id, disabled_at=time.time())
    assert api.get("/v1/me").status_code == 401


def test_another_tenants_things_are_not_found(portal: Portal) -> None:
    """Tenant A's user cannot see or act on tenant B's job, key or credential: 404 in the
    portal and on the API, the same as for something that does not exist."""
    a_email, _ = portal.owner()
    b_email, b_tenant = portal.owner()
    b_job = _asking_job(portal, _token(portal, b_email).json()["access_token"])
    b_key = issue_key(portal.service.store, tenant=portal.service.store.tenants.get(b_tenant).name)
    vault = Vault.from_settings(portal.settings)
    try:
        vault.put(b_tenant, "b-login", "b-secret")
    finally:
        vault.close()

    http, csrf = portal.login(a_email)
    assert http.get(f"/app/jobs/{b_job}").status_code == 404
    answer = http.post(
        f"/app/jobs/{b_job}/answer", data={"name": "approval", "value": "yes", "csrf_token": csrf}
    )
    assert answer.status_code == 404
    assert (
        http.post(f"/app/keys/{b_key.record.prefix}/revoke", data={"csrf_token": csrf}).status_code
        == 404
    )
    assert (
        http.post("/app/credentials/b-login/delete", data={"csrf_token": csrf}).status_code == 404
    )
    assert b_job not in http.get("/app/").text
    a_api = portal.client(authorization=f"Bearer {_token(portal, a_email).json()['access_token']}")
    assert a_api.get(f"/v1/jobs/{b_job}").status_code == 404
    refused = a_api.post(f"/v1/jobs/{b_job}/input", json={"name": "approval", "value": "yes"})
    assert refused.status_code == 404
    # B's things are untouched
    assert portal.service.store.accounts.key_by_prefix(b_key.record.prefix).revoked_at is None  # type: ignore[union-attr]
    assert portal.service.store.jobs.get(b_job).status == "waiting"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/app/keys"),
        ("POST", "/app/keys"),
        ("GET", "/app/credentials"),
        ("POST", "/app/credentials"),
        ("GET", "/app/members"),
        ("POST", "/app/members"),
    ],
    ids=["keys", "create-key", "credentials", "save-credential", "members", "invite"],
)
def test_members_may_not_manage_the_account(portal: Portal, method: str, path: str) -> None:
    """A member sees jobs and their preferences, but keys, credentials and members are the
    owners' (403); the owner may."""
    owner, _ = portal.owner()
    owner_http, owner_csrf = portal.login(owner)
    member = portal.member(owner_http, owner_csrf)
    http, csrf = portal.login(member)
    assert http.get("/app/").status_code == 200
    assert http.get("/app/preferences").status_code == 200
    data = {"csrf_token": csrf, "name": "n", "value": "v", "email": "z@example.test"}
    refused = http.request(method, path, data=data if method == "POST" else None)
    assert refused.status_code == 403
    assert "needs the owner role" in refused.text
    assert owner_http.get(path).status_code == 200


def test_credentials_are_write_only(portal: Portal) -> None:
    """A saved credential is sealed for the tenant: the jobs' vault reads it, the portal
    lists its name and revision but never shows the value again, nor does the audit log."""
    owner, tenant_id = portal.owner()
    http, csrf = portal.login(owner)
    value = f"hunter-{secrets.token_hex(8)}"
    saved = http.post(
        "/app/credentials", data={"name": "consulate-login", "value": value, "csrf_token": csrf}
    )
    assert saved.status_code == 303
    listing = http.get("/app/credentials").text
    assert "consulate-login" in listing
    assert value not in listing
    vault = Vault.from_settings(portal.settings)
    try:
        assert vault.get(tenant_id, "consulate-login") == value
    finally:
        vault.close()
    audit = portal.service.store.audit.search(target_id="consulate-login")
    assert [row.action for row in audit] == ["portal.credential_saved"]
    assert all(value not in repr(row) for row in audit)
    bad = http.post(
        "/app/credentials", data={"name": "bad name!", "value": "x", "csrf_token": csrf}
    )
    assert bad.status_code == 422
    assert "name: " in bad.text


def test_api_keys_are_shown_once_and_can_be_revoked(portal: Portal) -> None:
    """A key made in the portal is shown once, works on the API, and stops when revoked."""
    owner, tenant_id = portal.owner()
    http, csrf = portal.login(owner)
    made = http.post("/app/keys", data={"name": "ci", "csrf_token": csrf})
    assert made.status_code == 200
    key = re.search(r'id="new-key">(pw_[\w-]+)<', made.text)
    assert key, made.text
    api = portal.client(authorization=f"Bearer {key.group(1)}")
    assert api.get("/v1/me").json()["tenant_id"] == tenant_id
    assert key.group(1) not in http.get("/app/keys").text
    prefix = key.group(1).split("_")[1]
    assert http.post(f"/app/keys/{prefix}/revoke", data={"csrf_token": csrf}).status_code == 303
    assert api.get("/v1/me").status_code == 401


def test_logout_needs_the_session_csrf_token(portal: Portal) -> None:
    """Sign-out is a POST with the session's token; then the pages ask to sign in."""
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    assert http.post("/app/logout", data={"csrf_token": "nope"}).status_code == 403
    assert http.post("/app/logout", data={"csrf_token": csrf}).status_code == 303
    again = http.get("/app/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/app/login")
    assert form_csrf(http.get("/app/login").text)
