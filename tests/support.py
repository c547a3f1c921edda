"""Helpers shared by tests: real worker subprocesses, the machine's headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """The machine's Chromium, headless with Portwright's flags; closed on exit (its event
    loop lives only as long as this block)."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Worker:
    """A worker subprocess; `kill()` is SIGKILL, with no chance to clean up."""

    def __init__(
        self,
        settings: Settings,
        world: SandboxWorld,
        worker_id: str,
        log: Path,
        module: str = "tests.orchestrator.crash_worker",
    ) -> None:
        self.module = module
        self.env = {
            **os.environ,
            "PORTWRIGHT_DATABASE_URL": settings.app_database_url,
            "PORTWRIGHT_DATA_DIR": str(settings.data_dir),
            "PORTWRIGHT_WORKER_ID": worker_id,
            "PORTWRIGHT_HEARTBEAT_INTERVAL_S": "0.3",
            "PORTWRIGHT_DEAD_WORKER_AFTER_S": "2",
            "PORTWRIGHT_QUEUE_POLLING_INTERVAL_S": "0.05",
            "PORTWRIGHT_CAPTCHA_SOLVER_URL": _url_or_none(world, "captcha-solver"),
            "PORTWRIGHT_CAPTCHA_API_KEY": "sandbox-key",
            "PORTWRIGHT_LOG_LEVEL": "WARNING",
            "PORTWRIGHT_URL_ALLOWLIST": json.dumps(settings.url_allowlist),
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


class Listener:
    """A real HTTP listener on a loopback address that counts what reaches it: the SSRF
    tests' target (it must see no request) or the address a guard checked (it must).

    `with Listener("127.0.0.2", port=0, body=…) as site:`; `site.hits` lists the
    request lines with their Host header; `robots` is what /robots.txt serves;
    `redirects` maps paths to the Location a 302 answers them with."""

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        body: str = "",
        robots: str = "",
        redirects: dict[str, str] | None = None,
    ) -> None:
        import http.server
        import threading

        hits: list[str] = []
        self.hits = hits
        page, rules = body.encode(), robots.encode()
        moved = dict(redirects or {})  # path -> Location of a 302

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hits.append(f"{self.command} {self.path} host={self.headers.get('host')}")
                if self.path in moved:
                    self.send_response(302)
                    self.send_header("location", moved[self.path])
                    self.send_header("content-length", "0")
                    self.send_header("connection", "close")
                    self.end_headers()
                    return
                data = rules if self.path == "/robots.txt" else page
                kind = "text/plain" if self.path == "/robots.txt" else "text/html"
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server names

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _url_or_none(world: SandboxWorld, name: str) -> str:
    return world.url(name) if name in world.names() else ""


def reaching(settings: Settings, *worlds: SandboxWorld) -> Settings:
    """`settings` with every service port of `worlds` on the SSRF allowlist, as `portwright
    up` does for its sandbox: jobs reach nothing local that is not listed."""
    ports = [url.split("://", 1)[-1] for w in worlds for url in w.urls().values()]
    return settings.model_copy(update={"url_allowlist": [*settings.url_allowlist, *ports]})
