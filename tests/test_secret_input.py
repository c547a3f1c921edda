"""Secret input fields (`SecretStr` in an adapter's input model, at any depth): the adapter
gets the real value, the database holds it sealed, and every read path shows it masked.

(Not under tests/gateway: these tests start runtimes of their own, and DBOS allows one per
process, which that package's shared stack holds while its tests run.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.adapters import AdapterRegistry
from portwright.client import Client
from portwright.console import hash_password
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sdk import (
    SECRET_MASK,
    Adapter,
    Job,
    PermanentError,
    StepContext,
    linear_machine,
)
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.console._support import csrf_in
from tests.gateway._support import ServerThread

PASSWORD = "portal-password-Xw8qT3"
CODES = ["backup-code-Lm4nP7", "backup-code-Rt2vK9"]
OPERATOR_PASSWORD = "correct horse battery"


class Login(BaseModel):
    user: str
    password: SecretStr


class PortalInput(BaseModel):
    url: str
    login: Login
    backup_codes: list[SecretStr] = []
    note: str | None = None


async def _sign_in(sc: StepContext, url: str, user: str, password: SecretStr) -> dict[str, Any]:
    form = {"user": user, "password": password.get_secret_value()}
    answer = await sc.http.post(url, data=form)
    if not answer.json()["ok"]:
        raise PermanentError(f"{user} was refused")
    return {"status": answer.status_code, "signed_in": True}


class SecretLogin(Adapter[PortalInput]):
    """Signs in to a portal with the password from its input (a secret field)."""

    name: ClassVar[str] = "secret-login"
    input_model = PortalInput
    machine = linear_machine("secret-login", ["SIGNING_IN"])

    async def run(self, job: Job[PortalInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SIGNING_IN")
        login = job.input.login
        result: dict[str, Any] = await job.step(
            "sign-in", _sign_in, job.input.url, login.user, login.password
        )
        result["codes"] = len(job.input.backup_codes)
        result["codes_real"] = [c.get_secret_value() for c in job.input.backup_codes] == CODES
        return result


class Portal:
    """A login form that accepts one user and password, and remembers what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def login(request: Request) -> JSONResponse:
            form = {k: str(v) for k, v in (await request.form()).items()}
            with self.lock:
                self.received.append(form)
            ok = form.get("user") == "ada" and form.get("password") == PASSWORD
            return JSONResponse({"ok": ok}, status_code=200 if ok else 401)

        return Starlette(routes=[Route("/login", login, methods=["POST"])])


@dataclass
class Running:
    service: JobService
    url: str
    portal_url: str
    portal: Portal
    key: str
    settings: Settings


@pytest.fixture
def running(settings: Settings, service_for: Callable[..., JobService]) -> Iterator[Running]:
    portal = Portal()
    portal_server = ServerThread(portal.app()).start()
    tuned = settings.model_copy(
        update={
            "url_allowlist": [f"127.0.0.1:{portal_server.port}"],
            "master_key": SecretStr("secret-input-test-master-key-" + "s" * 32),
        }
    )
    registry = AdapterRegistry()
    registry.register(SecretLogin)
    vault = Vault.from_settings(tuned)
    service = service_for(registry, settings=tuned, secrets=vault)
    gateway = ServerThread(create_app(service, tuned, vault=vault)).start()
    key = issue_key(service.store, tenant="secret-input").key
    try:
        yield Running(service, gateway.url, portal_server.url, portal, key, tuned)
    finally:
        gateway.stop()
        portal_server.stop()
        vault.close()


def _console_page(running: Running, job_id: str) -> str:
    store = running.service.store
    tenant_id = store.tenants.ensure("secret-input").id
    email = "viewer-secret-input@example.test"
    store.console.create_operator(
        email=email, password_hash=hash_password(OPERATOR_PASSWORD), role="viewer",
        tenant_id=tenant_id,
    )  # fmt: skip
    with httpx.Client(base_url=running.url, follow_redirects=False, timeout=20) as http:
        token = csrf_in(http.get("/console/login").text)
        form = {"email": email, "password": OPERATOR_PASSWORD, "csrf_token": token}
        assert http.post("/console/login", data=form).status_code == 303
        page = http.get(f"/console/jobs/{job_id}")
        assert page.status_code == 200, page.text
        return page.text


def _cli_show(running: Running, job_id: str) -> str:
    """`portwright jobs show` against the same database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    shown = subprocess.run(
        [sys.executable, "-m", "portwright.cli", "jobs", "show", job_id,
         "--data-dir", str(running.settings.data_dir),
         "--database-url", str(running.settings.database_url)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return shown.stdout + shown.stderr


SYSTEM_SCOPE = "SELECT set_config('portwright.scope', 'system', true)"  # every tenant's rows


def _stored_input(running: Running, job_id: str) -> str:
    engine = sa.create_engine(running.settings.app_database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(SYSTEM_SCOPE))
            query = sa.text("SELECT input FROM jobs WHERE id = :id")
            return str(conn.execute(query, {"id": job_id}).scalar_one())
    finally:
        engine.dispose()


def _every_row(running: Running) -> str:
    """Every row of every table of the app and DBOS databases (step outputs included)."""
    chunks: list[str] = []
    urls = {running.settings.app_database_url, running.settings.dbos_database_url}
    for url in urls:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text(SYSTEM_SCOPE))
                inspector = sa.inspect(conn)
                schemas = [None, "dbos"] if engine.dialect.name == "postgresql" else [None]
                for schema in schemas:
                    for table in inspector.get_table_names(schema=schema):
                        name = f'"{schema}"."{table}"' if schema else f'"{table}"'
                        rows = conn.execute(sa.text(f"SELECT * FROM {name}"))
                        chunks.extend(repr(tuple(row)) for row in rows)
        finally:
            engine.dispose()
    return "\n".join(chunks)


async def test_a_secret_input_field_reaches_the_adapter_and_is_masked_everywhere_else(
    running: Running,
) -> None:
    """A job whose input carries a password (nested) and backup codes (a list), both typed
    SecretStr: the adapter signs in to a real portal with the real password and sees the real
    codes; the database holds them sealed; the submit answer, GET /v1/jobs/{id}, the job
    list, the events and the console job page show `**********`; a plain field is shown."""
    auth = {"authorization": f"Bearer {running.key}"}
    job_input = {
        "url": f"{running.portal_url}/login",
        "login": {"user": "ada", "password": PASSWORD},
        "backup_codes": CODES,
        "note": "visible",
    }
    async with httpx.AsyncClient(base_url=running.url, headers=auth, timeout=30) as http:
        submitted = await http.post(
            "/v1/jobs", json={"adapter": "secret-login", "input": job_input}
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        async def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            return body if body["status"] in ("succeeded", "failed") else None

        done = await wait_until(finished, timeout=60)
        listing = await http.get("/v1/jobs")
        events = await http.get(f"/v1/jobs/{job_id}/events")

    assert done["status"] == "succeeded", done
    assert done["output"] == {"status": 200, "signed_in": True, "codes": 2, "codes_real": True}
    assert running.portal.received == [{"user": "ada", "password": PASSWORD}]
    assert done["input"]["login"] == {"user": "ada", "password": SECRET_MASK}
    assert done["input"]["backup_codes"] == [SECRET_MASK, SECRET_MASK]
    assert done["input"]["note"] == "visible"
    (listed,) = [j for j in listing.json()["data"] if j["id"] == job_id]
    assert listed["input"] == done["input"]
    page = _console_page(running, job_id)
    shown = _cli_show(running, job_id)
    assert '"user": "ada"' in shown
    assert SECRET_MASK in shown
    assert "ada" in page  # the page shows the input, with the secrets masked
    answers = [submitted.text, listing.text, events.text, page, shown, str(done)]
    stored = _stored_input(running, job_id)
    everything = _every_row(running)
    for secret in (PASSWORD, *CODES):
        for text in answers:
            assert secret not in text
        assert secret not in everything  # sealed at rest, in the job and in its step outputs
    assert "pwsealed:v1:" in stored


async def test_a_secret_input_model_sent_with_the_client_is_not_sent_masked(
    running: Running,
) -> None:
    """The Python client sends an input model's SecretStr fields with their real values (a
    plain dump would send pydantic's mask); the job signs in; the client's answer is masked."""
    model = PortalInput(
        url=f"{running.portal_url}/login",
        login=Login(user="ada", password=SecretStr(PASSWORD)),
        backup_codes=[SecretStr(c) for c in CODES],
    )
    with Client(running.url, running.key) as client:
        job = client.submit("secret-login", model)
        assert job.input["login"]["password"] == SECRET_MASK

        def finished() -> Any:
            current = client.get_job(job.id)
            return current if current.status in ("succeeded", "failed") else None

        done = await wait_until(finished, timeout=60)
    assert done.status == "succeeded", done
    assert done.output["signed_in"] is True
    assert running.portal.received[-1]["password"] == PASSWORD


async def test_a_retried_job_keeps_its_sealed_secret(running: Running) -> None:
    """A failed job retried through the API runs again with the same real password (the
    sealed value is carried over, not sealed twice nor replaced by the mask)."""
    auth = {"authorization": f"Bearer {running.key}"}
    job_input = {
        "url": f"{running.portal_url}/login",
        "login": {"user": "bob", "password": PASSWORD},
    }
    async with httpx.AsyncClient(base_url=running.url, headers=auth, timeout=30) as http:
        body = {"adapter": "secret-login", "input": job_input}
        first = await http.post("/v1/jobs", json=body)
        job_id = first.json()["id"]

        async def ended(jid: str) -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(f"/v1/jobs/{jid}")).json()
            return body if body["status"] in ("succeeded", "failed") else None

        done = await wait_until(lambda: ended(job_id), timeout=60)
        assert done["status"] == "failed", done  # the portal answered 401 for bob
        again = await http.post(f"/v1/jobs/{job_id}/retry")
        assert again.status_code == 202, again.text
        await wait_until(lambda: ended(again.json()["id"]), timeout=60)
    sent = [r["password"] for r in running.portal.received if r["user"] == "bob"]
    assert sent == [PASSWORD, PASSWORD]
    assert PASSWORD not in again.text
