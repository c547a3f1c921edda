"""Helpers for console tests: operators, signed-in HTTP clients, running coroutines."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext
from starlette.routing import Mount

from portwright.console import hash_password
from portwright.console._auth import LoginLimiter
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld

T = TypeVar("T")
PASSWORD = "correct horse battery"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a service coroutine on its own thread and loop (sync tests drive Chromium)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class Console:
    service: JobService
    url: str
    world: SandboxWorld
    app: FastAPI

    def operator(self, role: str, *, tenant: str | None = None) -> str:
        """A new operator's email (password PASSWORD)."""
        store = self.service.store
        email = f"{role}-{secrets.token_hex(3)}@example.test"
        tenant_id = store.tenants.ensure(tenant).id if tenant else None
        store.console.create_operator(
            email=email, password_hash=hash_password(PASSWORD), role=role, tenant_id=tenant_id
        )
        return email

    @property
    def console_app(self) -> FastAPI:
        """The console sub-application the gateway mounts at /console."""
        for route in self.app.routes:
            if isinstance(route, Mount) and route.path == "/console":
                assert isinstance(route.app, FastAPI)
                return route.app
        raise AssertionError("the gateway has no console mounted")

    def reset_login_limits(self, limiter: LoginLimiter | None = None) -> None:
        self.console_app.state.login_limiter = limiter or LoginLimiter()

    def client(self, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """An HTTP client signed in as `email`, and its session's CSRF token."""
        http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)
        form = http.get("/console/login")
        token = csrf_in(form.text)
        done = http.post(
            "/console/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert done.status_code == 303, done.text
        return http, csrf_in(http.get("/console/").text)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def signed_in(browser: Browser, console: Console, http: httpx.Client) -> BrowserContext:
    """A browser context carrying `http`'s console session cookie."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    jar = http.cookies.jar
    context.add_cookies([{"name": c.name, "value": c.value or "", "url": console.url} for c in jar])
    return context
