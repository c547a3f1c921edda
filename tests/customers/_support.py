"""Helpers for the customer-side tests: sign-ups through the real pages, mail read from the
sandbox inbox (delivered over SMTP), and an adapter that asks its customer."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sdk import Adapter, InputTimeoutError, Job, PermanentError, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.gateway._support import ServerThread

PASSWORD = "a long enough secret"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own thread and loop: the test thread may have Playwright's
    event loop running (sync API), where `asyncio.run` is refused."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def off_loop(fn: Callable[[], T]) -> T:
    """Call `fn` on a thread without an event loop (DBOS refuses some calls inside one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


_LINK = re.compile(r"(https?://\S+/app/(?:verify|reset)\?token=[\w\-%]+)")


class AskingInput(BaseModel):
    question: str = "Approve the application?"
    timeout_s: float = 60.0
    fallback: str = "raise"


class AskingAdapter(Adapter[AskingInput]):
    """Asks the customer for "approval" and submits once with it; fails on timeout."""

    name: ClassVar[str] = "asking"
    input_model = AskingInput
    machine = linear_machine("asking", ["REVIEW", "SUBMITTED"])
    inputs: ClassVar[frozenset[str]] = frozenset({"approval"})

    async def run(self, job: Job[AskingInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        try:
            answer = await job.ask_customer(
                "approval",
                job.input.question,
                job.input.timeout_s,
                state="REVIEW",
                fallback=job.input.fallback,
            )
        except InputTimeoutError as exc:
            raise PermanentError("the customer did not approve in time") from exc
        await job.transition("SUBMITTED", f"customer answered {answer!r}")
        return {"approved": answer}


@dataclass
class Receiver:
    """The customer's own webhook endpoint: records every event it is sent."""

    received: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.received.append(json.loads(await request.body()))
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"


@dataclass
class Portal:
    service: JobService
    settings: Settings
    url: str
    world: SandboxWorld
    app: FastAPI
    receiver: Receiver
    clients: list[httpx.Client] = field(default_factory=list)

    def close(self) -> None:
        for http in self.clients:
            http.close()

    # -- the sandbox inbox -----------------------------------------------------------------

    def messages(self, to: str, channel: str = "") -> list[dict[str, Any]]:
        query = {"to": to, **({"channel": channel} if channel else {})}
        found: list[dict[str, Any]] = httpx.get(
            self.world.url("inbox") + "/messages", params=query, timeout=10
        ).json()
        return found

    def wait_message(
        self, to: str, *, contains: str = "", channel: str = "", after: int = 0, timeout: float = 30
    ) -> dict[str, Any]:
        """The first message to `to` (newer than seq `after`) whose subject or body has
        `contains`; waits for it."""

        def find() -> dict[str, Any] | None:
            for m in self.messages(to, channel):
                if m["seq"] > after and contains in (m["subject"] + m["body"]):
                    return m
            return None

        found = wait_until_sync(find, timeout=timeout)
        assert isinstance(found, dict)
        return found

    def link_in(self, message: dict[str, Any]) -> str:
        match = _LINK.search(message["body"])
        assert match, f"no link in {message['body']!r}"
        return match.group(1)

    # -- pages -----------------------------------------------------------------------------

    def client(self, **headers: str) -> httpx.Client:
        """An HTTP client for the gateway, closed when the test ends."""
        http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, headers=headers)
        self.clients.append(http)
        return http

    def signup(self, org: str, email: str, password: str = PASSWORD) -> httpx.Response:
        http = self.client()
        token = form_csrf(http.get("/app/signup").text)
        return http.post(
            "/app/signup",
            data={"organisation": org, "email": email, "password": password, "csrf_token": token},
        )

    def login(self, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A client signed in as `email`, and its session's CSRF token."""
        http = self.client()
        token = form_csrf(http.get("/app/login").text)
        done = http.post(
            "/app/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert done.status_code == 303, done.text
        return http, form_csrf(http.get("/app/").text)

    def verify_from_mail(self, email: str) -> httpx.Response:
        link = self.link_in(self.wait_message(email, contains="/app/verify"))
        parts = urlsplit(link)
        return self.client().get(f"{parts.path}?{parts.query}")

    def owner(self, org: str | None = None) -> tuple[str, str]:
        """A verified owner of a new tenant: (email, tenant id)."""
        org = org or f"org-{secrets.token_hex(3)}"
        email = f"owner-{secrets.token_hex(3)}@example.test"
        assert self.signup(org, email).status_code == 200
        assert self.verify_from_mail(email).status_code == 200
        user = self.service.store.customers.user_by_email(email)
        assert user is not None
        return email, user.tenant_id

    def member(self, owner: httpx.Client, csrf: str) -> str:
        """A member invited by the signed-in `owner`, who set their password by the link."""
        email = f"member-{secrets.token_hex(3)}@example.test"
        done = owner.post(
            "/app/members", data={"email": email, "role": "member", "csrf_token": csrf}
        )
        assert done.status_code == 200, done.text
        link = urlsplit(self.link_in(self.wait_message(email, contains="/app/reset")))
        http = self.client()
        form = http.get(f"{link.path}?{link.query}")
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token
        done = http.post(
            "/app/reset",
            data={
                "token": token.group(1),
                "password": PASSWORD,
                "csrf_token": form_csrf(form.text),
            },
        )
        assert done.status_code == 200, done.text
        return email


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


# -- in a browser -----------------------------------------------------------------------


def signup_in_browser(page: Page, portal: Portal, org: str, email: str) -> None:
    page.goto(f"{portal.url}/app/signup")
    page.fill("input[name=organisation]", org)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your email")


def login_in_browser(page: Page, portal: Portal, email: str) -> None:
    page.goto(f"{portal.url}/app/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{portal.url}/app/")
