"""Signing in to the portal through an OpenID Connect provider: the sandbox identity
provider (discovery, a sign-in form, code + PKCE, RS256 ID tokens), the portal's redirect,
state and nonce checks, and who may come in (a verified email of an existing user)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from portwright.sandbox import SandboxWorld, idp, inbox, mail
from portwright.sandbox.plugin import connect, sandbox_oidc
from portwright.settings import OidcProvider, Settings
from tests.customers._support import Portal
from tests.customers.conftest import SHOTS
from tests.support import headless_chromium

ADA, ADA_PASSWORD = "ada@idp.example", "analytical-engine"
EVE, EVE_PASSWORD = "eve@idp.example", "unverified-mail"
ALAN, ALAN_PASSWORD = "alan@idp.example", "turing-machine"  # known to the provider only


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    users = {**idp.USERS, ALAN: {"password": ALAN_PASSWORD, "name": "Alan", "email_verified": True}}
    specs = [*inbox.specs(), *mail.specs(), *idp.specs()]
    with SandboxWorld(specs, seed=5) as w:
        w.context("idp").options["users"] = users
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    return settings.model_copy(update={"oidc": {"sandbox": OidcProvider(**sandbox_oidc(world))}})


@pytest.fixture
def oidc(portal: Portal) -> Portal:
    connect(portal.world, portal.url)  # the provider learns the portal's callback
    return portal


def _verified_user(portal: Portal, email: str) -> None:
    assert portal.signup(f"org-{secrets.token_hex(3)}", email).status_code == 200
    link = portal.link_in(portal.wait_message(email, contains="/app/verify"))
    assert portal.client().get(link.removeprefix(portal.url)).status_code == 200


def _to_provider(portal: Portal, http: httpx.Client, next_path: str = "") -> str:
    """The portal's redirect to the provider's sign-in form (its URL)."""
    query = f"?next={next_path}" if next_path else ""
    started = http.get(f"/app/login/oidc/sandbox{query}")
    assert started.status_code == 303, started.text
    target = started.headers["location"]
    assert target.startswith(portal.world.url("idp") + "/authorize?")
    params = parse_qs(urlsplit(target).query)
    assert params["code_challenge_method"] == ["S256"]
    assert params["redirect_uri"] == [f"{portal.url}/app/login/oidc/sandbox/callback"]
    return target


def _sign_in_at_provider(target: str, email: str, password: str) -> httpx.Response:
    form_page = httpx.get(target, timeout=10)
    assert form_page.status_code == 200
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form_page.text))
    hidden = {k: unescape(v) for k, v in hidden.items()}
    return httpx.post(
        target.split("?", maxsplit=1)[0],
        data={**hidden, "email": email, "password": password},
        timeout=10,
    )


def _callback(portal: Portal, answer: httpx.Response) -> str:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{portal.url}/app/login/oidc/sandbox/callback?")
    return location.removeprefix(portal.url)


@pytest.mark.postgres
def test_a_verified_provider_email_signs_the_user_in_once(oidc: Portal) -> None:
    """The provider vouches for Ada's verified email: the portal opens her session (audited
    as an OIDC login) and lands her where she was going; the same code cannot be used twice."""
    portal = oidc
    _verified_user(portal, ADA)
    http = portal.client()
    back = _callback(portal, _sign_in_at_provider(_to_provider(portal, http, "/app/keys"), ADA,
                                                  ADA_PASSWORD))  # fmt: skip
    state_cookie = http.cookies.get("pw_app_oidc")
    assert state_cookie
    done = http.get(back)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/app/keys"
    home = http.get("/app/")
    assert home.status_code == 200
    assert ADA in home.text
    ada = portal.service.store.customers.user_by_email(ADA)
    assert ada is not None
    rows = portal.service.store.audit.search(target_id=ada.id)
    assert any(r.action == "portal.login" and (r.after or {}).get("via") == "oidc:sandbox"
               for r in rows)  # fmt: skip

    # The provider took the code once: replayed with a copy of the state cookie, refused.
    replay = portal.client()
    replay.cookies.set("pw_app_oidc", state_cookie, path="/app/login/oidc")
    again = replay.get(back)
    assert again.status_code == 401, again.text
    assert "refused the sign-in code" in again.text


@pytest.mark.parametrize(
    ("who", "password", "status", "says"),
    [
        (EVE, EVE_PASSWORD, 401, "not verified"),
        (ALAN, ALAN_PASSWORD, 403, "No account here uses that email"),
    ],
    ids=["unverified-at-provider", "unknown-here"],
)
def test_who_the_provider_vouches_for_must_be_verified_and_known(
    oidc: Portal, who: str, password: str, status: int, says: str
) -> None:
    portal = oidc
    if who == EVE:
        _verified_user(portal, EVE)  # verified here; the provider has not verified it
    http = portal.client()
    answer = http.get(_callback(portal, _sign_in_at_provider(_to_provider(portal, http), who,
                                                             password)))  # fmt: skip
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert http.get("/app/").status_code == 303  # still signed out: to the login form


def test_a_callback_without_its_state_or_from_another_browser_is_refused(oidc: Portal) -> None:
    portal = oidc
    _verified_user(portal, ADA)
    http = portal.client()
    back = _callback(portal, _sign_in_at_provider(_to_provider(portal, http), ADA, ADA_PASSWORD))
    stranger = portal.client()  # no state cookie: a link sent to someone else
    refused = stranger.get(back)
    assert refused.status_code == 401
    assert "another browser" in refused.text
    tampered = re.sub(r"state=[^&]+", "state=forged", back)
    assert http.get(tampered).status_code == 401
    assert http.get("/app/login/oidc/nowhere").status_code == 404
    assert http.get("/app/").status_code == 303


@pytest.mark.browser
def test_sign_in_with_the_sandbox_provider_in_chromium(oidc: Portal) -> None:
    """The button on the login page, the provider's form, back to the portal signed in; the
    login page at desktop and phone widths is screenshotted for a person to look at."""
    portal = oidc
    _verified_user(portal, ADA)
    SHOTS.mkdir(exist_ok=True)
    with headless_chromium() as browser:
        for width, size in {"desktop": (1440, 900), "phone": (390, 844)}.items():
            context = browser.new_context(viewport={"width": size[0], "height": size[1]})
            page = context.new_page()
            page.goto(f"{portal.url}/app/login")
            page.screenshot(path=str(SHOTS / f"login-oidc-{width}.png"), full_page=True)
            context.close()
        page = browser.new_page()
        page.goto(f"{portal.url}/app/login")
        page.click("text=Sign in with Sandbox ID")
        expect(page.locator("h1")).to_have_text("Sandbox ID", timeout=30_000)
        page.fill("input[name=email]", ADA)
        page.fill("input[name=password]", ADA_PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{portal.url}/app/", timeout=30_000)
        expect(page.locator("body")).to_contain_text(ADA)
