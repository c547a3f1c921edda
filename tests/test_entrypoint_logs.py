"""Every entry point logs the same way: JSON lines on stdout and stderr, no API key, bearer
token, webhook secret, credential or password in any of them — through bad keys, a broken
database and unhandled errors — and tracebacks without local variables."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import standardwebhooks

from portwright.delivery import new_secret
from portwright.settings import Settings
from portwright.store import Store
from portwright.testing import wait_until_sync
from tests.dbproxy import allow_connections

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"entrypoint-log-test-webhook-key!").decode()
CREDENTIAL = "credential-plaintext-Zq7xV2"
DB_PASSWORD = "db-password-Kp4wR9"
MASTER_KEY = "entrypoint-log-test-master-key-" + "m" * 32
PASTED_KEY = "pw_abcdef012345_" + "Pasted-Key_" * 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_password(db_url: str) -> str:
    """The Postgres URL with a password in it (trust auth ignores it): it must never show."""
    if db_url.startswith("postgresql://postgres@"):
        return db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    return db_url


def _env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    env.update(
        PORTWRIGHT_DATABASE_URL=db_url,
        PORTWRIGHT_DATA_DIR=str(data_dir),
        PORTWRIGHT_MASTER_KEY=MASTER_KEY,
        PORTWRIGHT_LOG_JSON="true",
        PORTWRIGHT_LOG_LEVEL="debug",
        **extra,
    )
    return env


@contextmanager
def _process(
    args: list[str], env: Mapping[str, str], logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m <args>` with stdout and stderr in files; SIGINT it at the end."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "out.log").open("wb") as out, (logs / "err.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=dict(env),
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _lines(logs: Path) -> list[str]:
    return [
        line
        for name in ("out.log", "err.log")
        for line in (logs / name).read_text(errors="replace").splitlines()
        if line.strip()
    ]


def _assert_masked_json(lines: list[str], secrets: list[str]) -> list[dict[str, Any]]:
    """Every line is one JSON object and none holds any of `secrets`; returns the objects."""
    assert lines, "the process wrote nothing"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line[:300]}")
        for secret in secrets:
            assert secret not in line, f"a secret ({secret[:6]}…) was logged: {line[:600]}"
    return parsed


def _wait_for(predicate: Any, proc: subprocess.Popen[bytes], logs: Path, what: str) -> Any:
    def found_or_exited() -> Any:
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited {proc.returncode}: {_lines(logs)[-20:]}")
        return predicate()

    try:
        return wait_until_sync(found_or_exited, timeout=90, every=0.2)
    except AssertionError:
        pytest.fail(f"{what}: not within 90s: {_lines(logs)[-20:]}")


def _create_key(db_url: str, data_dir: Path) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "portwright.cli", "keys", "create", "--tenant", "logs"],
        cwd=ROOT, env=_env(db_url, data_dir), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def _signed_webhook(url: str, msg_id: str, secret: str) -> httpx.Response:
    body = json.dumps({"type": "order.created", "data": {"id": msg_id}})
    now = datetime.now(tz=UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, now, body),
    }
    return httpx.post(f"{url}/v1/hooks/shop-beta", content=body, headers=headers, timeout=30)


def _rename_table(db_url: str, old: str, new: str) -> None:
    """Break the SQLite database under the process: a table it reads goes missing."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'ALTER TABLE "{old}" RENAME TO "{new}"'))
    finally:
        engine.dispose()


def test_api_logs_are_masked_json_lines_through_bad_keys_and_a_database_outage(
    db_url: str, tmp_path: Path
) -> None:
    """`portwright api` answers a valid key, bad keys (Bearer, X-API-Key, Basic), a stored
    credential and signed webhooks, then the database goes away (Postgres: connections
    refused and terminated; SQLite: the key table goes missing) and requests fail with 5xx
    and logged errors. Every line of stdout and stderr is JSON and none holds a key, token,
    webhook secret, credential or the database password."""
    data_dir = tmp_path / "data"
    url = _with_password(db_url)
    key = _create_key(url, data_dir)
    prefix, secret_part = key.split("_", 2)[1:]
    bad_keys = [
        f"pw_{prefix}_{'w' * 43}",  # a known prefix, a wrong secret
        "pw_000000000000_" + "n" * 43,  # well formed, unknown
        "pw_short",  # malformed
        "not-even-a-key-Tq8sLm3n",
    ]
    sources = {"shop-beta": {"scheme": "standard", "secrets": [WEBHOOK_SECRET]}}
    env = _env(url, data_dir, PORTWRIGHT_WEBHOOK_SOURCES=json.dumps(sources))
    port = _free_port()
    gateway = f"http://127.0.0.1:{port}"
    logs = tmp_path / "api"
    outage_answers: list[int] = []
    with _process(["portwright.cli", "api", "--port", str(port)], env, logs) as proc:

        def up() -> bool:
            try:
                return httpx.get(f"{gateway}/healthz", timeout=5).status_code < 500
            except httpx.TransportError:
                return False

        _wait_for(up, proc, logs, "the gateway")
        auth = {"authorization": f"Bearer {key}"}
        assert httpx.get(f"{gateway}/v1/me", headers=auth).status_code == 200
        for bad in bad_keys:
            headers = {"authorization": f"Bearer {bad}"}
            assert httpx.get(f"{gateway}/v1/me", headers=headers).status_code == 401
            assert httpx.get(f"{gateway}/v1/me", headers={"x-api-key": bad}).status_code == 401
        basic = httpx.get(f"{gateway}/v1/me", auth=("logs", key))
        assert basic.status_code == 401
        put = httpx.put(
            f"{gateway}/v1/credentials/portal", headers=auth, json={"value": CREDENTIAL}
        )
        assert put.status_code == 200, put.text
        assert _signed_webhook(gateway, "msg_ok", WEBHOOK_SECRET).status_code == 202
        forged = _signed_webhook(gateway, "msg_forged", new_secret())
        assert forged.status_code in (400, 401), forged.text

        database = db_url.rsplit("/", 1)[1]
        if db_url.startswith("sqlite"):
            _rename_table(db_url, "api_keys", "api_keys_gone")
        else:
            allow_connections(database, allow=False)
        try:
            fresh = f"pw_{'1' * 12}_{'f' * 43}"  # not cached: looked up in the database
            # A key pasted where a job id goes: the failed request's logged path holds it.
            paths = ("/v1/jobs", "/v1/me", "/v1/credentials", f"/v1/jobs/{PASTED_KEY}")
            for headers in (auth, {"authorization": f"Bearer {fresh}"}, {"x-api-key": fresh}):
                for path in paths:
                    answer = httpx.get(f"{gateway}{path}", headers=headers, timeout=60)
                    outage_answers.append(answer.status_code)
        finally:
            if db_url.startswith("sqlite"):
                _rename_table(db_url, "api_keys_gone", "api_keys")
            else:
                allow_connections(database, allow=True)
        assert proc.poll() is None, "the gateway died in the outage"

    assert any(code >= 500 for code in outage_answers), outage_answers
    secrets = [key, secret_part, *bad_keys, WEBHOOK_SECRET, CREDENTIAL, DB_PASSWORD, MASTER_KEY]
    lines = _assert_masked_json(_lines(logs), [*secrets, PASTED_KEY])
    pasted = [line for line in lines if line.get("path", "").startswith("/v1/jobs/")]
    assert pasted, "the failed request with a key in its path was not logged"
    assert all(line["path"] == "/v1/jobs/***" for line in pasted)
    assert any(line.get("event") == "gateway starting" for line in lines)
    errors = [line for line in lines if line.get("level") in ("error", "critical")]
    assert errors, "the outage's failures were not logged"
    answered = [line for line in errors if "path" in line]  # a request's failure
    assert answered
    assert all(line["request_id"] for line in answered)
    for line in lines:
        # A traceback is plain text: frames and the exception, never a frame's variables.
        assert "exception" not in line or isinstance(line["exception"], str)
        assert "locals" not in json.dumps(line)


def test_worker_logs_are_masked_json_lines_and_its_crash_is_one_too(
    db_url: str, tmp_path: Path
) -> None:
    """`portwright worker` logs JSON lines while it runs; a worker that cannot start (its
    metrics port is taken) logs its traceback as one masked JSON line, without the local
    variables that hold the settings (the database password, the master key)."""
    data_dir = tmp_path / "data"
    url = _with_password(db_url)
    env = _env(url, data_dir, PORTWRIGHT_NATS_URL="")
    logs = tmp_path / "worker"
    with _process(["portwright.cli", "worker", "--worker-id", "logs-w1"], env, logs) as proc:
        _wait_for(
            lambda: any('"worker running"' in line for line in _lines(logs)),
            proc, logs, "the worker",
        )  # fmt: skip
    assert proc.returncode == 0, _lines(logs)[-20:]
    lines = _assert_masked_json(_lines(logs), [DB_PASSWORD, MASTER_KEY])
    assert any(line.get("worker_id") == "logs-w1" for line in lines)

    crashed = tmp_path / "worker-crash"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["portwright.cli", "worker", "--worker-id", "logs-w2", "--metrics-port", port]
        with _process(args, env, crashed) as proc:
            proc.wait(timeout=120)
    assert proc.returncode != 0
    lines = _assert_masked_json(_lines(crashed), [DB_PASSWORD, MASTER_KEY])
    (crash,) = [line for line in lines if line.get("event") == "unhandled exception"]
    assert crash["level"] == "critical"
    assert "Address already in use" in crash["exception"]


def test_relay_logs_are_masked_json_lines_through_a_failing_round(tmp_path: Path) -> None:
    """`python -m portwright.delivery` logs JSON lines: its start (the NATS sink without the
    credentials in its URL), rounds failing on the unreachable NATS server and on a missing
    outbox table, each with its traceback; no webhook secret, NATS password or master key
    appears in any line."""
    data_dir = tmp_path / "data"
    db_url = f"sqlite:///{tmp_path / 'relay.sqlite'}"
    store = Store.open(Settings(database_url=db_url).app_database_url)
    try:
        tenant = store.tenants.ensure("relay-logs")
        secret = new_secret()
        port = _free_port()  # nothing listens: each send fails
        store.endpoints.create(
            tenant_id=tenant.id, url=f"http://127.0.0.1:{port}/hook", secrets=[secret]
        )
        store.outbox.append(
            event_id="evt-logs-1", topic="job.updated", tenant_id=tenant.id, payload={"n": 1}
        )
    finally:
        store.close()
    nats_password = "nats-password-Hv3kQ8"
    env = _env(
        db_url, data_dir,
        PORTWRIGHT_NATS_URL=f"nats://relay:{nats_password}@127.0.0.1:{_free_port()}",
        PORTWRIGHT_URL_ALLOWLIST=json.dumps([f"127.0.0.1:{port}"]),
    )  # fmt: skip
    logs = tmp_path / "relay"
    args = ["portwright.delivery", "--poll-s", "0.1", "--timeout-s", "2"]
    with _process(args, env, logs) as proc:
        _wait_for(
            lambda: any('"relay started"' in line for line in _lines(logs)), proc, logs, "start"
        )
        _rename_table(db_url, "outbox", "outbox_gone")
        _wait_for(
            lambda: any("no such table: outbox" in line for line in _lines(logs)),
            proc, logs, "a round failing on the missing table",
        )  # fmt: skip
    lines = _assert_masked_json(_lines(logs), [secret, nats_password, MASTER_KEY])
    (started,) = [line for line in lines if line.get("event") == "relay started"]
    assert started["sinks"] == ["NatsSink(stream='PORTWRIGHT')"]
    failed = [line for line in lines if line.get("event") == "loop round failed; retrying"]
    broken = [line for line in failed if "no such table: outbox" in line["exception"]]
    assert broken
    assert broken[0]["level"] == "error"
    assert broken[0]["exception"].startswith("Traceback (most recent call last):")
