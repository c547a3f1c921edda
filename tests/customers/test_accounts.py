"""Accounts through the real pages: sign up, verify by the emailed link (real SMTP into the
sandbox inbox), sign in, reset a password; with the field errors and CSRF rules."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest

from tests.customers._support import PASSWORD, Portal, form_csrf


def _email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(3)}@example.test"


def test_signup_verify_login(portal: Portal) -> None:
    """A sign-up makes a tenant and its unverified owner, who cannot sign in until they open
    the link emailed over SMTP; then they can, and the page shows their organisation."""
    email, org = _email("ada"), f"acme-{secrets.token_hex(2)}"
    answer = portal.signup(org, email)
    assert answer.status_code == 200
    assert "Check your email" in answer.text
    user = portal.service.store.customers.user_by_email(email)
    assert user is not None
    assert (user.role, user.verified_at) == ("owner", None)
    assert portal.service.store.tenants.get(user.tenant_id).name == org

    http = portal.client()
    early = http.post(
        "/app/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": form_csrf(http.get("/app/login").text),
        },
    )
    assert early.status_code == 403
    assert "Confirm your email first" in early.text

    mail = portal.wait_message(email, contains="/app/verify")
    assert mail["channel"] == "email"
    assert mail["subject"] == "Confirm your email for Portwright"
    link = portal.link_in(mail)
    assert link.startswith(portal.url + "/app/verify?token=")
    assert portal.verify_from_mail(email).status_code == 200
    again = urlsplit(link)  # a link works once
    assert portal.client().get(f"{again.path}?{again.query}").status_code == 400

    http, _ = portal.login(email)
    home = http.get("/app/")
    assert home.status_code == 200
    assert org in home.text
    assert email in home.text


@pytest.mark.parametrize(
    ("form", "field", "problem"),
    [
        ({"organisation": "A"}, "organisation", "lowercase letters"),
        ({"email": "not-an-email"}, "email", "is not an email address"),
        ({"password": "short"}, "password", "at least 10 characters"),
    ],
    ids=["organisation", "email", "password"],
)
def test_signup_refuses_bad_fields_by_name(
    portal: Portal, form: dict[str, str], field: str, problem: str
) -> None:
    """Each bad field is a 422 naming the field and the problem; nothing is created."""
    http = portal.client()
    data = {
        "organisation": f"ok-{secrets.token_hex(2)}",
        "email": _email("x"),
        "password": PASSWORD,
        **form,
    }
    answer = http.post(
        "/app/signup", data={**data, "csrf_token": form_csrf(http.get("/app/signup").text)}
    )
    assert answer.status_code == 422
    assert f"{field}: " in answer.text
    assert problem in answer.text
    assert portal.service.store.customers.user_by_email(data["email"]) is None


def test_signup_refuses_a_taken_email_and_organisation(portal: Portal) -> None:
    """One account per email, one tenant per organisation name."""
    email, tenant_id = portal.owner()
    org = portal.service.store.tenants.get(tenant_id).name
    again = portal.signup(f"other-{secrets.token_hex(2)}", email)
    assert again.status_code == 422
    assert "email: " in again.text
    taken = portal.signup(org, _email("y"))
    assert taken.status_code == 422
    assert "organisation: " in taken.text


def test_forms_without_the_csrf_cookie_are_refused(portal: Portal) -> None:
    """A login or sign-up posted from elsewhere (no double-submit cookie) is a 403."""
    http = portal.client()
    assert (
        http.post(
            "/app/login", data={"email": "a@b.test", "password": "x", "csrf_token": "forged"}
        ).status_code
        == 403
    )
    assert (
        http.post(
            "/app/signup",
            data={
                "organisation": "forged",
                "email": "a@b.test",
                "password": PASSWORD,
                "csrf_token": "x",
            },
        ).status_code
        == 403
    )
    email, _ = portal.owner()
    signed, _ = portal.login(email)
    # a signed-in POST needs the session's token, not any token
    assert signed.post("/app/keys", data={"name": "k", "csrf_token": "wrong"}).status_code == 403


def test_password_reset_by_emailed_link(portal: Portal) -> None:
    """Forgot → a link by email → a new password: the old one stops working, sessions end,
    and the link is spent."""
    email, _ = portal.owner()
    old_session, _ = portal.login(email)
    http = portal.client()
    sent = http.post(
        "/app/forgot", data={"email": email, "csrf_token": form_csrf(http.get("/app/forgot").text)}
    )
    assert sent.status_code == 200
    mail = portal.wait_message(email, contains="/app/reset")
    link = urlsplit(portal.link_in(mail))
    form = http.get(f"{link.path}?{link.query}")
    token = link.query.removeprefix("token=")
    new_password = "another long secret"
    done = http.post(
        "/app/reset",
        data={"token": token, "password": new_password, "csrf_token": form_csrf(form.text)},
    )
    assert done.status_code == 200
    assert old_session.get("/app/").status_code == 303  # signed out: back to the login page
    bad = portal.client()
    assert (
        bad.post(
            "/app/login",
            data={
                "email": email,
                "password": PASSWORD,
                "csrf_token": form_csrf(bad.get("/app/login").text),
            },
        ).status_code
        == 401
    )
    portal.login(email, new_password)
    reused = http.post(
        "/app/reset",
        data={"token": token, "password": "yet another secret", "csrf_token": form_csrf(form.text)},
    )
    assert reused.status_code == 400


def test_forgot_answers_alike_for_unknown_emails(portal: Portal) -> None:
    """Asking a reset for an unknown email says the same and sends nothing."""
    http = portal.client()
    ghost = _email("ghost")
    answer = http.post(
        "/app/forgot", data={"email": ghost, "csrf_token": form_csrf(http.get("/app/forgot").text)}
    )
    assert answer.status_code == 200
    assert "If an account uses that email" in answer.text
    assert portal.messages(ghost) == []
