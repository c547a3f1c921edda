"""Sign-in to the portal through an OpenID Connect provider (authorization code + PKCE).

`GET /app/login/oidc/<name>` sends the browser to the provider with a fresh state, nonce
and PKCE verifier, kept in a short-lived signed cookie; `…/callback` checks the state,
exchanges the code (authlib's OAuth 2 client), verifies the ID token (RS256/ES256 from the
provider's JWKS: issuer, audience, expiry, nonce) and signs in the customer user whose
email the provider says it has **verified**. No user with that email: refused (sign up or
be invited first); the provider is trusted for who, never for which tenant or role.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.customers._accounts import Accounts
from portwright.customers._render import PREFIX, page
from portwright.customers._session import open_session
from portwright.resources.tls import client_context
from portwright.settings import OidcProvider
from portwright.webauth import safe_next

__all__ = ["OidcError", "OidcSignIn", "StateCookie", "oidc_router"]

STATE_COOKIE = "pw_app_oidc"

STATE_TTL_S = 600
DISCOVERY_TTL_S = 3600.0
_TIMEOUT = httpx.Timeout(10.0)
_ALGORITHMS = ["RS256", "ES256"]


class OidcError(Exception):
    """The sign-in cannot go on; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class StateCookie:
    """What the browser carries between the redirect and the callback, signed."""

    provider: str
    state: str
    nonce: str
    verifier: str
    next: str


class OidcSignIn:
    """One configured provider: the redirect, and the callback's checks."""

    def __init__(self, name: str, provider: OidcProvider, state_key: bytes) -> None:
        self.name = name
        self.provider = provider
        self._state_key = state_key
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: jwt.PyJWKSet | None = None

    @property
    def label(self) -> str:
        return self.provider.label or self.name

    # -- the provider's documents ----------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL_S:
            url = f"{self.provider.issuer}/.well-known/openid-configuration"
            found = await self._get_json(url, "discovery document")
            if found.get("issuer", "").rstrip("/") != self.provider.issuer:
                raise OidcError("the provider's discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                self._endpoint(found.get(key), key)
            self._metadata, self._metadata_at, self._jwks = found, time.monotonic(), None
        return self._metadata

    def _endpoint(self, value: Any, what: str) -> str:
        """An endpoint the discovery document gives: https, or http only where the issuer
        itself is http on loopback (a development provider)."""
        if not isinstance(value, str) or not value:
            raise OidcError(f"the provider's discovery document has no {what}")
        parts = urlsplit(value)
        issuer = urlsplit(self.provider.issuer)
        insecure_ok = issuer.scheme == "http" and parts.hostname == issuer.hostname
        if parts.scheme != "https" and not (parts.scheme == "http" and insecure_ok):
            raise OidcError(f"the provider's {what} is not https")
        return value

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(
                timeout=_TIMEOUT, follow_redirects=False, verify=client_context()
            ) as client:
                response = await client.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider is unreachable ({what})") from exc
        if response.status_code != 200:
            raise OidcError(f"the identity provider answered {response.status_code} ({what})")
        try:
            body = response.json()
        except ValueError as exc:
            raise OidcError(f"the identity provider's {what} is not JSON") from exc
        if not isinstance(body, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object")
        return body

    async def _keys(self, *, refresh: bool = False) -> jwt.PyJWKSet:
        if self._jwks is None or refresh:
            meta = await self.metadata()
            found = await self._get_json(self._endpoint(meta["jwks_uri"], "jwks_uri"), "keys")
            try:
                self._jwks = jwt.PyJWKSet.from_dict(found)
            except jwt.PyJWTError as exc:
                raise OidcError("the identity provider's keys cannot be read") from exc
        return self._jwks

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.provider.client_id,
            client_secret=self.provider.client_secret.get_secret_value(),
            scope=" ".join(self.provider.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            timeout=10.0,  # a number: authlib may run on httpx or its successor httpx2
        )

    # -- the two legs ------------------------------------------------------------------

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL and the signed state cookie's value."""
        meta = await self.metadata()
        state = StateCookie(
            self.name,
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
            next_path,
        )
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"],
                state=state.state,
                nonce=state.nonce,
                code_verifier=state.verifier,
            )
        return url, self._seal(state)

    async def finish(
        self, *, code: str, state: str, cookie: str, redirect_uri: str
    ) -> tuple[dict[str, Any], str]:
        """The verified ID token's claims (with a verified `email`) and the portal path the
        sign-in started from; or OidcError."""
        kept = self._read_state(cookie)
        if kept is None or kept.provider != self.name:
            raise OidcError("the sign-in expired or came from another browser: start again")
        if not code or not secrets.compare_digest(state, kept.state):
            raise OidcError("the sign-in's state does not match: start again")
        meta = await self.metadata()
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    self._endpoint(meta["token_endpoint"], "token_endpoint"),
                    code=code,
                    code_verifier=kept.verifier,
                    redirect_uri=redirect_uri,
                )
            except Exception as exc:
                raise OidcError("the identity provider refused the sign-in code") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        claims = await self._verify(id_token, kept.nonce)
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OidcError("the identity provider did not share an email address")
        if claims.get("email_verified") is not True:
            raise OidcError("the identity provider has not verified this email address")
        return claims, kept.next

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError as exc:
            raise OidcError("the ID token is malformed") from exc
        keys = await self._keys()
        key = _pick(keys, kid)
        if key is None:  # the provider rotated its keys since we read them
            key = _pick(await self._keys(refresh=True), kid)
        if key is None:
            raise OidcError("the ID token is signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=_ALGORITHMS,
                audience=self.provider.client_id,
                issuer=self.provider.issuer,
                leeway=60,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is not valid ({exc})") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token's nonce does not match: start again")
        return claims

    # -- the state cookie ------------------------------------------------------------------

    def _seal(self, state: StateCookie) -> str:
        now = int(time.time())
        body = {
            "prv": state.provider,
            "st": state.state,
            "non": state.nonce,
            "ver": state.verifier,
            "nxt": state.next,
            "aud": "portwright-oidc-state",
            "iat": now,
            "exp": now + STATE_TTL_S,
        }
        return jwt.encode(body, self._state_key, algorithm="HS256")

    def _read_state(self, cookie: str) -> StateCookie | None:
        try:
            body = jwt.decode(
                cookie, self._state_key, algorithms=["HS256"], audience="portwright-oidc-state"
            )
        except jwt.PyJWTError:
            return None
        values = [body.get(k) for k in ("prv", "st", "non", "ver", "nxt")]
        texts = [v for v in values if isinstance(v, str)]
        if len(texts) != len(values):
            return None
        return StateCookie(*texts)


def _pick(keys: jwt.PyJWKSet, kid: Any) -> jwt.PyJWK | None:
    for key in keys.keys:
        if kid is None or key.key_id == kid:
            return key
    return None


def oidc_router(
    accounts: Accounts, sign_ins: dict[str, OidcSignIn], public_url: str | None
) -> APIRouter:
    router = APIRouter()

    def callback_url(request: Request, name: str) -> str:
        base = public_url.rstrip("/") if public_url else str(request.base_url).rstrip("/")
        if not base.endswith(PREFIX):  # request.base_url of the mounted portal ends with it
            base += PREFIX
        return f"{base}/login/oidc/{name}/callback"

    def refused(request: Request, message: str, status: int) -> Response:
        response = page(request, "error.html", None, status_code=status, message=message)
        response.delete_cookie(STATE_COOKIE, path=f"{PREFIX}/login/oidc")
        return response

    def provider(name: str) -> OidcSignIn:
        found = sign_ins.get(name)
        if found is None:
            raise HTTPException(404, f"No identity provider named {name!r} here.")
        return found

    @router.get("/login/oidc/{name}")
    async def begin(request: Request, name: str, next: str = "") -> Response:
        sign_in = provider(name)
        try:
            url, cookie = await sign_in.begin(callback_url(request, name), safe_next(next, PREFIX))
        except OidcError as exc:
            return refused(request, f"Signing in with {sign_in.label} is unavailable: {exc}.", 502)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE,
            cookie,
            max_age=STATE_TTL_S,
            httponly=True,
            samesite="lax",  # it must come back on the provider's top-level redirect
            secure=request.url.scheme == "https",
            path=f"{PREFIX}/login/oidc",
        )
        return response

    @router.get("/login/oidc/{name}/callback")
    async def callback(
        request: Request, name: str, code: str = "", state: str = "", error: str = ""
    ) -> Response:
        sign_in = provider(name)
        if error:
            return refused(request, f"{sign_in.label} did not sign you in ({error[:80]}).", 401)
        try:
            claims, next_path = await sign_in.finish(
                code=code[:2000],
                state=state[:200],
                cookie=request.cookies.get(STATE_COOKIE, ""),
                redirect_uri=callback_url(request, name),
            )
        except OidcError as exc:
            return refused(request, f"Signing in with {sign_in.label} failed: {exc}.", 401)
        user = await asyncio.to_thread(accounts.store.customers.user_by_email, claims["email"])
        if user is None or user.disabled_at is not None:
            return refused(
                request,
                "No account here uses that email address: sign up first, or ask your "
                "organisation's owner to invite you.",
                403,
            )
        if user.verified_at is None:  # the provider vouches for the address
            await asyncio.to_thread(
                accounts.store.customers.update_user, user.id, verified_at=time.time()
            )
        response = await open_session(request, accounts, user, next_path, via=f"oidc:{name}")
        response.delete_cookie(STATE_COOKIE, path=f"{PREFIX}/login/oidc")
        return response

    return router
