"""Where browsers come from: the local Chromium, or any CDP endpoint (a hosted browser).

A provider launches (or connects to) one browser and later retires it. The
pool never cares which: a local Chromium, a remote one over CDP whose URL is
fixed or minted per browser (the shape of hosted browser services), or the
sandbox `ChromiumFarm` that starts local Chromium instances and hands out
their CDP URLs.

Hardening (the ladder's top rung) on a local Chromium drops the automation
switches at launch; on any browser, `HARDENING_SCRIPT` runs before the
page's own scripts. It makes an automated browser report what a person's
would; it imitates no vendor's scheme and defeats no named product.
"""

from __future__ import annotations

import asyncio
import re
import socket
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from playwright.async_api import Browser, BrowserContext, Playwright

from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

__all__ = [
    "HARDENED_ARGS",
    "HARDENING_SCRIPT",
    "BrowserProvider",
    "LocalChromium",
    "RemoteCdp",
    "cdp_endpoint",
]

HARDENED_ARGS = ("--disable-blink-features=AutomationControlled",)
HARDENING_SCRIPT = """
(() => {
  try {
    Object.defineProperty(Navigator.prototype, "webdriver", {
      get: () => false, configurable: true,
    });
  } catch (e) {}
})();
"""

Endpoint = str | Callable[[], Awaitable[str]]

# Where each launched browser can be reached over CDP by another client (the console's
# live view): `http://host:port` of a local Chromium started with remote debugging, or
# the URL a remote provider connected to. Weak: an entry goes with its browser.
_ENDPOINTS: weakref.WeakKeyDictionary[Browser, str] = weakref.WeakKeyDictionary()


# The browsers a `RemoteCdp` provider connected to: not on this host as far as the pool
# knows, so out of reach of a loopback guard proxy (`is_remote`).
_REMOTE: weakref.WeakSet[Browser] = weakref.WeakSet()


def is_remote(browser: Browser) -> bool:
    """Whether `browser` was reached over CDP at a URL (it may run on another host)."""
    return browser in _REMOTE


def cdp_endpoint(browser: Browser) -> str | None:
    """The CDP endpoint another client can attach to `browser` through, if it has one."""
    return _ENDPOINTS.get(browser)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrowserProvider(Protocol):
    """Launches or connects to browsers for the pool, and retires them."""

    @property
    def name(self) -> str: ...

    async def launch(self, playwright: Playwright, *, hardened: bool) -> Browser: ...

    async def retire(self, browser: Browser) -> None:
        """Close (or disconnect from and give back) a browser this provider launched."""
        ...


class LocalChromium:
    """The machine's Chromium, headless; also opens persistent profiles.

    With `remote_debugging=True` each browser also listens for CDP on a free loopback
    port (beside Playwright's pipe), so the console's live view can attach to it.
    """

    name = "local"

    def __init__(
        self,
        executable: str | Path | None = None,
        *,
        args: Sequence[str] = (),
        headless: bool = True,
        remote_debugging: bool = False,
    ) -> None:
        self.executable = find_chromium(executable)
        self.args = tuple(args)
        self.headless = headless
        self.remote_debugging = remote_debugging
        self._version: str | None = None

    async def version(self) -> str:
        """The Chromium version (`chromium --version`), e.g. "126.0.6478.126"."""
        if self._version is None:
            process = await asyncio.create_subprocess_exec(
                self.executable,
                "--version",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await process.communicate()
            found = re.search(r"(\d+\.\d+\.\d+\.\d+)", out.decode(errors="replace"))
            self._version = found.group(1) if found else ""
        return self._version

    def _launch_options(self, hardened: bool) -> dict[str, Any]:
        args = [*CHROMIUM_ARGS, *self.args, *(HARDENED_ARGS if hardened else ())]
        options: dict[str, Any] = {
            "executable_path": self.executable,
            "args": args,
            "headless": self.headless,
            "handle_sigint": False,
            "handle_sigterm": False,
            "handle_sighup": False,
        }
        if hardened:
            options["ignore_default_args"] = ["--enable-automation"]
        return options

    async def launch(self, playwright: Playwright, *, hardened: bool) -> Browser:
        options = self._launch_options(hardened)
        port = _free_port() if self.remote_debugging else None
        if port is not None:
            options["args"] = [
                *options["args"],
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
            ]
        browser = await playwright.chromium.launch(**options)
        if port is not None:
            _ENDPOINTS[browser] = f"http://127.0.0.1:{port}"
        return browser

    async def launch_persistent(
        self, playwright: Playwright, user_data_dir: Path, *, hardened: bool, **context: Any
    ) -> BrowserContext:
        """A browser on a persistent profile directory (one process per profile)."""
        options = self._launch_options(hardened) | context
        return await playwright.chromium.launch_persistent_context(user_data_dir, **options)

    async def retire(self, browser: Browser) -> None:
        await browser.close()


class RemoteCdp:
    """A browser reached over the Chrome DevTools Protocol at `endpoint`.

    `endpoint` is a URL (`ws://…` or `http://host:port`), or an async function
    minting one per browser; `release(url)` is awaited when that browser is
    retired (e.g. to end a hosted session or stop a farm instance).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        release: Callable[[str], Awaitable[None]] | None = None,
        headers: dict[str, str] | None = None,
        name: str = "cdp",
        timeout_s: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.release = release
        self.headers = dict(headers or {})
        self._name = name
        self.timeout_s = timeout_s
        self._urls: dict[int, str] = {}

    @property
    def name(self) -> str:
        return self._name

    async def launch(self, playwright: Playwright, *, hardened: bool) -> Browser:
        url = self.endpoint if isinstance(self.endpoint, str) else await self.endpoint()
        try:
            browser = await playwright.chromium.connect_over_cdp(
                url, headers=self.headers or None, timeout=self.timeout_s * 1000
            )
        except BaseException:
            if self.release is not None and not isinstance(self.endpoint, str):
                await self.release(url)
            raise
        self._urls[id(browser)] = url
        _ENDPOINTS[browser] = url
        _REMOTE.add(browser)
        return browser

    async def retire(self, browser: Browser) -> None:
        url = self._urls.pop(id(browser), None)
        try:
            await browser.close()
        finally:
            if url is not None and self.release is not None:
                await self.release(url)
