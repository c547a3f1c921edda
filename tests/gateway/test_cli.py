"""`portwright keys create | revoke | list` and `portwright api`, through the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from portwright.gateway.auth import hash_secret, parse_key
from portwright.store import Store


def _cli(*args: str, data_dir: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "portwright.cli",
            *args,
            "--data-dir",
            str(data_dir),
            "--database-url",
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_keys_create_list_and_revoke(db_url: str, tmp_path: Path) -> None:
    """`keys create` prints the key alone on its last line, stored hashed; `revoke` ends it."""
    made = _cli(
        "keys", "create", "--tenant", "acme", "--name", "ci", data_dir=tmp_path, db_url=db_url
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    parsed = parse_key(key)
    assert parsed is not None
    prefix, secret = parsed
    store = Store.open(db_url)
    try:
        row = store.accounts.key_by_prefix(prefix)
        assert row is not None
        assert row.secret_hash == hash_secret(secret)
        assert secret not in repr(row)
        listed = _cli("keys", "list", "--tenant", "acme", data_dir=tmp_path, db_url=db_url)
        assert prefix in listed.stdout
        assert secret not in listed.stdout
        revoked = _cli("keys", "revoke", key, data_dir=tmp_path, db_url=db_url)
        assert revoked.returncode == 0, revoked.stderr
        row = store.accounts.key_by_prefix(prefix)
        assert row is not None
        assert row.revoked_at is not None
        again = _cli("keys", "revoke", prefix, data_dir=tmp_path, db_url=db_url)
        assert again.returncode == 1
    finally:
        store.close()


def test_unknown_plan_is_refused(db_url: str, tmp_path: Path) -> None:
    """`keys create --plan` names the known plans when given an unknown one."""
    made = _cli(
        "keys", "create", "--tenant", "x", "--plan", "gold", data_dir=tmp_path, db_url=db_url
    )
    assert made.returncode == 2
    assert "starter" in made.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_api_command_serves_the_gateway(db_url: str, tmp_path: Path) -> None:
    """`portwright api` serves the gateway; a key made by `keys create` works against it."""
    key = _cli("keys", "create", "--tenant", "cli", data_dir=tmp_path, db_url=db_url).stdout
    key = key.strip().splitlines()[-1]
    port = _free_port()
    command = [sys.executable, "-m", "portwright.cli", "api", "--port", str(port)]
    command += ["--data-dir", str(tmp_path), "--database-url", db_url]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/v1/me", headers={"authorization": f"Bearer {key}"}
                )
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "portwright api did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json()["tenant"] == "cli"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/me").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()
