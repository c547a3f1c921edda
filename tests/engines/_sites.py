"""Small loopback sites for the engine tests: a form, a cookie, robots.txt, an identity echo."""

from __future__ import annotations

from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from portwright.sandbox import ServiceContext, ServiceSpec, identity_of_scope

ROBOTS = "User-agent: *\nDisallow: /private\n"


def _page(body: str, title: str = "Account") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    )


def account_site(name: str = "account") -> ServiceSpec:
    """`/form` (email + password), `/set?v=[&persist=1]` (cookie `sid`), `/whoami` (shows it),
    `/who` (the caller's identity and languages), `/robots.txt`, `/private`."""

    def build(ctx: ServiceContext) -> Starlette:
        async def form(_: Request) -> HTMLResponse:
            return _page(
                '<form id="login"><input id="email" name="email" type="text">'
                '<input id="password" name="password" type="password">'
                '<button type="submit">Sign in</button></form>'
            )

        async def set_cookie(request: Request) -> RedirectResponse:
            response = RedirectResponse("/whoami", status_code=303)
            max_age = 3600 if request.query_params.get("persist") else None
            response.set_cookie("sid", request.query_params.get("v", ""), path="/", max_age=max_age)
            return response

        async def whoami(request: Request) -> HTMLResponse:
            sid = escape(request.cookies.get("sid", "nobody"))
            return _page(f'<p id="who">{sid}</p>')

        async def who(request: Request) -> HTMLResponse:
            identity = escape(identity_of_scope(request.scope))
            langs = escape(request.headers.get("accept-language", ""))
            agent = escape(request.headers.get("user-agent", ""))
            mode = escape(request.headers.get("sec-fetch-mode", ""))
            return _page(
                f'<p id="identity">{identity}</p><p id="langs">{langs}</p>'
                f'<p id="agent">{agent}</p><p id="fetch-mode">{mode}</p>'
            )

        async def robots(_: Request) -> PlainTextResponse:
            ctx.ledger.record("robots", "robots.txt", "client")
            return PlainTextResponse(ROBOTS)

        async def private(_: Request) -> HTMLResponse:
            return _page('<p id="secret-area">private</p>')

        return Starlette(
            routes=[
                Route("/form", form),
                Route("/set", set_cookie),
                Route("/whoami", whoami),
                Route("/who", who),
                Route("/robots.txt", robots),
                Route("/private", private),
            ]
        )

    return ServiceSpec(name, build)


def embed_site(name: str = "embedder") -> ServiceSpec:
    """`/to?u=URL` (302 to URL), `/embed?src=URL` (a page with an image from URL) and
    `/hits` (how many requests reached this site): for the SSRF guard's browser tests."""

    def build(ctx: ServiceContext) -> Starlette:
        hits = {"n": 0}

        async def to(request: Request) -> RedirectResponse:
            hits["n"] += 1
            return RedirectResponse(request.query_params["u"], status_code=302)

        async def embed(request: Request) -> HTMLResponse:
            hits["n"] += 1
            src = escape(request.query_params["src"])
            return _page(f'<h1 class="title">Embed</h1><img id="pic" src="{src}">', "Embed")

        async def count(_: Request) -> PlainTextResponse:
            return PlainTextResponse(str(hits["n"]))

        return Starlette(routes=[Route("/to", to), Route("/embed", embed), Route("/hits", count)])

    return ServiceSpec(name, build)
