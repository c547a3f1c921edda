"""The sandbox OpenID Connect identity provider: what the customer portal's "Sign in with …"
talks to in tests and the demo, the way it would talk to a real one.

    <idp>/.well-known/openid-configuration   discovery
    <idp>/authorize                          a sign-in form (GET), then the code (POST)
    <idp>/token                              authorization code (+ PKCE S256) → tokens
    <idp>/jwks                               the RS256 signing key
    <idp>/userinfo                           the signed-in user's claims (Bearer)

Options: `users` (email → {"password", "name", "email_verified"}), `clients`
(client id → {"secret", "redirect_uris"}); each code is single-use and lives 60 s.
Ledger kinds "code" (issued) and "token" (exchanged), keyed by the user's email.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from portwright.sandbox._world import ServiceContext, ServiceSpec

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "USERS", "specs"]

CLIENT_ID = "portwright-portal"
CLIENT_SECRET = "sandbox-oidc-client-secret"
USERS: dict[str, dict[str, Any]] = {
    "ada@idp.example": {"password": "analytical-engine", "name": "Ada", "email_verified": True},
    "eve@idp.example": {"password": "unverified-mail", "name": "Eve", "email_verified": False},
}
CODE_TTL_S = 60.0
TOKEN_TTL_S = 300


def _form(params: dict[str, str], error: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
    )
    problem = f'<p role="alert" class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox ID — sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input[type=email],input[type=password]{{width:100%;
padding:.5rem;box-sizing:border-box}}button{{margin-top:1rem;padding:.5rem 1rem}}
.error{{color:#a00}}</style></head><body>
<h1>Sandbox ID</h1><p>Sign in to continue to the application.</p>{problem}
<form method="post" action="authorize">{hidden}
<label for="email">Email</label><input id="email" name="email" type="email" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form></body></html>"""


def _subject(email: str) -> str:
    return "sbx-" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]


def _build(ctx: ServiceContext) -> Starlette:  # noqa: PLR0915 - one closure per endpoint
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(8)
    public_jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public_jwk.update(kid=kid, use="sig", alg="RS256")
    codes: dict[str, dict[str, Any]] = {}
    access: dict[str, str] = {}  # access token → email

    def issuer() -> str:
        return ctx.url(ctx.name)

    def users() -> dict[str, dict[str, Any]]:
        return dict(ctx.options.get("users", USERS))

    def clients() -> dict[str, dict[str, Any]]:
        return dict(ctx.options.get("clients", {}))

    async def discovery(request: Request) -> Response:
        base = issuer()
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "userinfo_endpoint": f"{base}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [public_jwk]})

    def bad(message: str, status: int = 400) -> Response:
        return JSONResponse({"error": "invalid_request", "error_description": message}, status)

    def authorize_params(source: Any) -> tuple[dict[str, str], str]:
        names = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                 "code_challenge", "code_challenge_method")  # fmt: skip
        params = {n: str(source.get(n, "")) for n in names}
        client = clients().get(params["client_id"])
        if client is None:
            return params, "unknown client_id"
        if params["redirect_uri"] not in client.get("redirect_uris", []):
            return params, "redirect_uri is not registered for this client"
        if params["response_type"] != "code" or "openid" not in params["scope"].split():
            return params, "response_type must be code and scope must include openid"
        if params["code_challenge_method"] != "S256" or not params["code_challenge"]:
            return params, "PKCE (S256) is required"
        return params, ""

    async def authorize(request: Request) -> Response:
        if request.method == "GET":
            params, problem = authorize_params(request.query_params)
            if problem:
                return bad(problem)
            return HTMLResponse(_form(params))
        form = await request.form()
        params, problem = authorize_params(form)
        if problem:
            return bad(problem)
        email = str(form.get("email", "")).strip().lower()
        user = users().get(email)
        if user is None or not secrets.compare_digest(
            str(user["password"]), str(form.get("password", ""))
        ):
            return HTMLResponse(_form(params, "Wrong email or password."), status_code=401)
        code = secrets.token_urlsafe(24)
        codes[code] = {**params, "email": email, "at": time.time()}
        ctx.ledger.record("code", email, "user", client_id=params["client_id"])
        query = urlencode({"code": code, "state": params["state"]})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    def client_of(request: Request, form: Any) -> str | None:
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
        client = clients().get(client_id)
        if client is None or not secrets.compare_digest(str(client["secret"]), secret):
            return None
        return client_id

    async def token(request: Request) -> Response:
        form = await request.form()
        client_id = client_of(request, form)
        if client_id is None:
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = codes.pop(str(form.get("code", "")), None)  # single use, whatever follows
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant["client_id"] != client_id
            or grant["redirect_uri"] != form.get("redirect_uri")
            or time.time() - grant["at"] > CODE_TTL_S
        ):
            return JSONResponse({"error": "invalid_grant"}, 400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if not secrets.compare_digest(challenge.rstrip(b"=").decode(), grant["code_challenge"]):
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        email = grant["email"]
        user = users()[email]
        now = int(time.time())
        claims = {
            "iss": issuer(),
            "sub": _subject(email),
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "nonce": grant["nonce"],
            "email": email,
            "email_verified": bool(user.get("email_verified", False)),
            "name": str(user.get("name", "")),
        }
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        bearer = secrets.token_urlsafe(24)
        access[bearer] = email
        ctx.ledger.record("token", email, client_id)
        return JSONResponse(
            {
                "access_token": bearer,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_S,
                "id_token": id_token,
                "scope": grant["scope"],
            },
            headers={"cache-control": "no-store"},
        )

    async def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        email = access.get(header[7:].strip()) if header.lower().startswith("bearer ") else None
        if email is None:
            return JSONResponse({"error": "invalid_token"}, 401)
        user = users()[email]
        return JSONResponse(
            {"sub": _subject(email), "email": email,
             "email_verified": bool(user.get("email_verified")), "name": user.get("name", "")}
        )  # fmt: skip

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
        ]
    )


def specs() -> list[ServiceSpec]:
    """The identity provider, with the portal's client registered by `connect`."""
    return [ServiceSpec("idp", _build, options={"users": USERS, "clients": {}})]
