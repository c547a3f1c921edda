"""`portwright doctor`: is everything the settings name there and working?

Checks, in order: the settings themselves (file and environment), the application and
DBOS databases and their migrations, Chromium (or each configured browser provider),
Redis, NATS, S3 (each when configured), every configured proxy, and every captcha
provider (its balance call proves the URL and the key). Each line says ok, missing or
BROKEN, what was found, and for a problem how to fix it. Exit status: 0 when nothing
required is broken, 1 otherwise, 2 when the settings themselves are invalid.

Addresses are printed without credentials; secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from portwright.cli._common import add_settings_flags, settings_from
from portwright.settings import BrowserProviderConfig, Settings

__all__ = ["Check", "register", "run_checks"]

Status = Literal["ok", "missing", "broken"]


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: `broken` fails the doctor; `missing` is something optional not there."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check the database, browsers, services and resources")
    add_settings_flags(p)
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per network check (default 5)"
    )
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    settings = settings_from(args)  # invalid settings: printed, exit 2
    timeout = min(max(float(args.timeout), 0.1), 60.0)
    checks = run_checks(settings, timeout_s=timeout)
    for check in checks:
        if args.json:
            print(json.dumps(asdict(check)))
            continue
        label = {"ok": "ok", "missing": "missing", "broken": "BROKEN"}[check.status]
        print(f"{label:<8} {check.name:<28} {check.detail}")
        if check.fix and check.status != "ok":
            print(f"{'':<8} {'':<28} fix: {check.fix}")
    broken = [c for c in checks if c.status == "broken"]
    if not args.json:
        print(f"{len(broken)} broken, {sum(c.status == 'missing' for c in checks)} missing")
    return 1 if broken else 0


def run_checks(settings: Settings, *, timeout_s: float = 5.0) -> list[Check]:
    """Every check the settings call for, in a stable order."""
    checks = [*_databases(settings), *_browsers(settings, timeout_s)]
    if settings.redis_url:
        checks.append(_guarded("redis", lambda: _redis(settings.redis_url or "", timeout_s)))
    if settings.nats_url:
        checks.append(_guarded("nats", lambda: _nats(settings.nats_url or "", timeout_s)))
    if settings.blob_url and settings.blob_url.startswith("s3://"):
        checks.append(_guarded("s3", lambda: _s3(settings)))
    checks.extend(_proxies(settings, timeout_s))
    checks.extend(_solvers(settings, timeout_s))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a check's own failure is a finding, not a crash
        return Check(name, "broken", f"check failed: {type(exc).__name__}: {exc}"[:300])


def _where(url: str) -> str:
    """scheme://host:port of `url`: no credentials, path or query (a token may be there)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _tcp(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


# -- databases --------------------------------------------------------------------------------


def _databases(settings: Settings) -> list[Check]:
    checks = _database("database", settings.app_database_url, app=True)
    if settings.dbos_database_url != settings.app_database_url:
        checks += _database("system database", settings.dbos_database_url, app=False)
    return checks


def _database(name: str, url: str, *, app: bool) -> list[Check]:
    """Reachability, and for the application database its migrations."""
    import sqlalchemy as sa

    from portwright.store import create_engine, current_revisions, head_revisions, is_sqlite

    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if is_sqlite(url) and not Path(sa.engine.make_url(url).database or "").exists():
        return [Check(name, "ok", f"{shown}: not created yet (the first start creates it)")]
    engine = create_engine(url, pool_size=1)
    try:
        try:
            if app:
                current = current_revisions(engine)  # connects, and reads the revisions
            else:
                current = frozenset()
                with engine.connect():  # a connection opens: reachable
                    pass
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
            setting = "database_url (PORTWRIGHT_DATABASE_URL)" if app else "system_database_url"
            return [
                Check(name, "broken", f"{shown}: cannot connect: {reason}",
                      f"start the database or correct {setting}")
            ]  # fmt: skip
    finally:
        engine.dispose()
    checks = [Check(name, "ok", f"{shown}: reachable")]
    if app:
        heads = head_revisions()  # the core's head and each installed app's branch head
        at_heads = ", ".join(sorted(heads))
        if current == heads:
            checks.append(Check("migrations", "ok", f"at head ({at_heads})"))
        else:
            at = ", ".join(sorted(current)) or "none (empty database)"
            behind = ", ".join(sorted(heads - current))
            checks.append(
                Check("migrations", "missing",
                      f"at {at}, this code's heads are {at_heads} (not yet applied: {behind})",
                      "run `portwright migrate` (`up`, `worker` and `api` also migrate at start)")
            )  # fmt: skip
    return checks


# -- browsers ---------------------------------------------------------------------------------


def _browsers(settings: Settings, timeout_s: float) -> list[Check]:
    configured = settings.browsers.providers
    if not configured:  # the default: this machine's Chromium, optional
        check = _chromium("chromium", settings.chromium_path, timeout_s)
        if check.status == "broken" and not settings.chromium_path:
            return [
                Check(
                    check.name, "missing", f"{check.detail} (browser jobs are refused)", check.fix
                )
            ]
        return [check]
    return [_browser_check(settings, p, timeout_s) for p in configured]


def _browser_check(settings: Settings, provider: BrowserProviderConfig, timeout_s: float) -> Check:
    return _guarded(f"browser {provider.name}", lambda: _browser(settings, provider, timeout_s))


def _chromium(name: str, path: str | None, timeout_s: float) -> Check:
    from portwright.engines import INSTALL_HINT, ChromiumNotFoundError, find_chromium

    if path and path.strip().lower() != "none":
        named = Path(path)
        if not (named.is_file() and os.access(named, os.X_OK)):
            return Check(
                name, "broken", f"the configured Chromium {path} is not an executable file",
                "correct chromium_path (PORTWRIGHT_CHROMIUM_PATH) or the provider's chromium_path",
            )  # fmt: skip
    try:
        executable = find_chromium(path)
    except ChromiumNotFoundError as exc:
        return Check(name, "broken", str(exc).splitlines()[0][:300], INSTALL_HINT)
    try:
        out = subprocess.run(  # noqa: S603 - the configured browser, asked its version
            [executable, "--version"], capture_output=True, text=True,
            timeout=max(timeout_s, 10.0), check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(
            name, "broken", f"{executable}: does not run ({type(exc).__name__})", INSTALL_HINT
        )
    if out.returncode != 0:
        return Check(
            name, "broken", f"{executable}: --version exited {out.returncode}", INSTALL_HINT
        )
    return Check(name, "ok", f"{executable}: {out.stdout.strip()[:100]}")


def _browser(  # noqa: PLR0911 - one answer per way a provider can be broken
    settings: Settings, provider: BrowserProviderConfig, timeout_s: float
) -> Check:
    name = f"browser {provider.name}"
    if provider.kind == "local":
        return _chromium(name, provider.chromium_path or settings.chromium_path, timeout_s)
    import httpx

    endpoint = provider.endpoint()
    shown = _where(endpoint)
    fix = f"start the remote browser or correct browsers.providers[{provider.name}].url"
    parts = urlsplit(endpoint)
    if parts.scheme in ("ws", "wss"):
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        problem = _tcp(parts.hostname or "", port, timeout_s)
        if problem:
            return Check(name, "broken", f"{shown}: {problem}", fix)
        return Check(name, "ok", f"{shown}: accepting connections (CDP over WebSocket)")
    headers = {k: v.get_secret_value() for k, v in provider.headers.items()}
    try:
        response = httpx.get(
            endpoint.rstrip("/") + "/json/version", headers=headers, timeout=timeout_s,
            trust_env=False,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        return Check(name, "broken", f"{shown}: {type(exc).__name__}", fix)
    if response.status_code != 200:
        return Check(name, "broken", f"{shown}: /json/version answered {response.status_code}", fix)
    try:
        version = str(response.json().get("Browser", "?"))[:80]
    except ValueError:
        return Check(name, "broken", f"{shown}: not a CDP endpoint (no JSON version)", fix)
    return Check(name, "ok", f"{shown}: {version}")


# -- services ---------------------------------------------------------------------------------


def _redis(url: str, timeout_s: float) -> Check:
    import redis

    shown = _where(url)
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check(
            "redis", "broken", f"{shown}: {type(exc).__name__}: {str(exc)[:150]}",
            "start Redis or correct redis_url (PORTWRIGHT_REDIS_URL)",
        )  # fmt: skip
    finally:
        client.close()
    return Check("redis", "ok", f"{shown}: PING answered")


def _nats(url: str, timeout_s: float) -> Check:
    import nats

    shown = _where(url)
    fix = "start NATS (with JetStream) or correct nats_url (PORTWRIGHT_NATS_URL)"
    parts = urlsplit(url)
    problem = _tcp(parts.hostname or "", parts.port or 4222, timeout_s)
    if problem:  # nats-py would keep retrying a closed port
        return Check("nats", "broken", f"{shown}: {problem}", fix)

    async def quiet(exc: Exception) -> None:
        return None

    async def probe() -> None:
        nc = await asyncio.wait_for(
            nats.connect(url, connect_timeout=timeout_s, allow_reconnect=False,
                         max_reconnect_attempts=1, error_cb=quiet),
            timeout_s * 2,
        )  # fmt: skip
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - nats raises many kinds
        return Check("nats", "broken", f"{shown}: {type(exc).__name__} (JetStream enabled?)", fix)
    return Check("nats", "ok", f"{shown}: connected, JetStream answers")


def _s3(settings: Settings) -> Check:
    from portwright.store import BlobStoreConfigError, blob_store_from

    try:
        blob_store_from(settings)  # connects and checks the bucket
    except BlobStoreConfigError as exc:
        return Check(
            "s3", "broken", str(exc)[:300],
            "create the bucket or correct blob_url, s3_endpoint_url and the S3 credentials",
        )  # fmt: skip
    return Check("s3", "ok", f"{settings.blob_url}: bucket reachable")


# -- resources --------------------------------------------------------------------------------


def _proxies(settings: Settings, timeout_s: float) -> list[Check]:
    from portwright.resources import proxy_pool_from

    pool = proxy_pool_from(settings.proxies)
    if pool is None:
        return []
    gateways = {g.name for g in settings.proxies.gateways}
    checks = []
    probed: set[str] = set()
    for proxy in pool.offered():
        if proxy.provider in gateways:  # one identity of a gateway proves it
            if proxy.provider in probed:
                continue
            probed.add(proxy.provider)
            name = f"proxy gateway {proxy.provider}"
        else:
            name = f"proxy {proxy.name}"
        problem = _probe_proxy(proxy.server, proxy.username, proxy.password, timeout_s)
        if problem is None:
            checks.append(Check(name, "ok", f"{_where(proxy.server)}: answers, credentials taken"))
        else:
            checks.append(
                Check(name, "broken", f"{_where(proxy.server)}: {problem}",
                      "start the proxy, or correct (or remove) it and its credentials under "
                      "proxies")
            )  # fmt: skip
    return checks


def _probe_proxy(
    server: str, username: str | None, password: str | None, timeout_s: float
) -> str | None:
    """None when the proxy accepts a connection and (HTTP proxies) does not refuse our
    credentials; else what is wrong. The probe asks a CONNECT to a name that cannot resolve
    (`.invalid`): any answer but 407 shows a live proxy that took the credentials."""
    import base64

    parts = urlsplit(server)
    port = parts.port or {"http": 80, "https": 443, "socks5": 1080}[parts.scheme]
    if parts.scheme != "http":
        return _tcp(parts.hostname or "", port, timeout_s)
    request = "CONNECT doctor.invalid:443 HTTP/1.1\r\nHost: doctor.invalid:443\r\n"
    if username:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s) as sock:
            sock.sendall((request + "\r\n").encode())
            status_line = sock.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    fields = status_line.split(" ")
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        return "does not answer like an HTTP proxy"
    if fields[1] == "407":
        return "refused the credentials (407)" if username else "asks for credentials (407)"
    return None


def _solvers(settings: Settings, timeout_s: float) -> list[Check]:
    from portwright.resources import solver_from
    from portwright.sdk import ChallengeError

    checks = []
    for provider in settings.captcha_providers():
        name = f"captcha {provider.name}"
        solver = solver_from(provider, None)
        try:
            balance = asyncio.run(asyncio.wait_for(solver.balance(), timeout_s * 2))
        except (ChallengeError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, ChallengeError) else "timed out"
            checks.append(
                Check(name, "broken", f"{provider.style} at {_where(provider.url)}: {message}",
                      f"check captcha.providers[{provider.name}] url and api_key (and the "
                      "account's balance)")
            )  # fmt: skip
            continue
        checks.append(
            Check(name, "ok", f"{provider.style} at {_where(provider.url)}: balance {balance:g}")
        )
    return checks
