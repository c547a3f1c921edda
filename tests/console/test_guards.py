"""Every console POST is guarded: viewers get 403, a missing CSRF token gets 403; logins are
rate limited per address, per account and per process."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from portwright.console._auth import LoginLimiter
from tests.console._support import PASSWORD, Console, csrf_in

PUBLIC_POSTS = {"/login"}  # guarded by its own double-submit cookie (tested below)
SIGNED_IN_ANY_ROLE = {"/logout"}


def post_routes(console: Console) -> list[str]:
    """Every POST path of the console, with path parameters filled in."""
    paths = []
    schema = console.console_app.openapi()["paths"]  # every route, however it was included
    for path, methods in schema.items():
        if "post" in methods:
            filled = re.sub(r"\{action\}", "pause", path)
            filled = re.sub(r"\{portal\}", "echo", filled)
            paths.append(re.sub(r"\{[^}]+\}", "x", filled))
    return sorted(paths)


def test_a_viewer_gets_403_on_every_post_route(console: Console) -> None:
    """A signed-in viewer with a valid CSRF token is refused (403) by every action route."""
    routes = post_routes(console)
    assert {"/dead-letters/replay", "/credentials/reveal", "/escalations/x/patch"} <= set(routes)
    http, csrf = console.client(console.operator("viewer"))
    with closing(http):
        for path in routes:
            if path in PUBLIC_POSTS | SIGNED_IN_ANY_ROLE:
                continue
            answer = http.post(f"/console{path}", data={"csrf_token": csrf, "value": "v"})
            assert answer.status_code == 403, (path, answer.status_code, answer.text[:200])
            assert "role" in answer.text, path
        assert not console.service.store.portals.get("echo").paused


def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(console: Console) -> None:
    """An operator's POST without the session's CSRF token, or with a wrong one, answers 403."""
    http, csrf = console.client(console.operator("admin"))
    with closing(http):
        for path in post_routes(console):
            if path in PUBLIC_POSTS:
                continue
            for data in ({}, {"csrf_token": csrf[:-2] + "xx"}):
                answer = http.post(f"/console{path}", data=data)
                assert answer.status_code == 403, (path, answer.status_code)
                assert "CSRF" in answer.text, path
        assert http.get("/console/").status_code == 200  # logout was refused too
    with httpx.Client(base_url=console.url, timeout=30) as fresh:
        form = {"email": "a@example.test", "password": PASSWORD, "csrf_token": "forged"}
        assert fresh.post("/console/login", data=form).status_code == 403


def login_from(console: Console, address: str, email: str, password: str) -> int:
    """One login attempt from loopback source `address`; returns the status code."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=console.url, timeout=30, transport=transport) as http:
        token = csrf_in(http.get("/console/login").text)
        form = {"email": email, "password": password, "csrf_token": token}
        return http.post("/console/login", data=form).status_code


def test_login_failures_are_limited_per_account_across_addresses(console: Console) -> None:
    """Wrong passwords for one account from as many addresses as the limit block that account
    everywhere, while another account still signs in from a fresh address."""
    console.reset_login_limits(LoginLimiter(limit=3))
    target, other = console.operator("viewer"), console.operator("viewer")
    try:
        codes = [login_from(console, f"127.0.0.{i}", target, "wrong pass") for i in range(2, 5)]
        assert set(codes) == {401}
        assert login_from(console, "127.0.0.20", target, PASSWORD) == 429
        assert login_from(console, "127.0.0.21", other, PASSWORD) == 303
    finally:
        console.reset_login_limits()


def test_login_failures_are_limited_per_process(console: Console) -> None:
    """Past the process-wide budget of failures, even a new account from a new address waits."""
    console.reset_login_limits(LoginLimiter(process_limit=3))
    fresh = console.operator("viewer")
    try:
        for i in range(3):
            email = f"nobody-{i}@example.test"
            assert login_from(console, f"127.0.1.{i + 2}", email, "wrong pass") == 401
        assert login_from(console, "127.0.1.30", fresh, PASSWORD) == 429
    finally:
        console.reset_login_limits()
    assert login_from(console, "127.0.1.31", fresh, PASSWORD) == 303
