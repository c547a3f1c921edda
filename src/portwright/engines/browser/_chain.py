"""Several browser providers in order of preference, each with its own concurrency.

The pool asks for one browser at a time; the chain launches it on the first provider
below its `concurrency` (browsers of that provider open at once), and when that provider
fails to start one (a remote endpoint down, a local Chromium crashing at start) tries the
next. A browser is retired by the provider that launched it. The error a failed launch
leaves names the provider and the error's type only: a remote endpoint's URL may carry a
token, and the message ends up in a job's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from playwright.async_api import Browser, Playwright

from portwright.engines.browser._providers import BrowserProvider, LocalChromium

__all__ = ["BrowserProviderChain", "ChainedProvider"]

log = structlog.get_logger("portwright.browser")


@dataclass(frozen=True, slots=True)
class ChainedProvider:
    provider: BrowserProvider
    concurrency: int


class BrowserProviderChain:
    """A `BrowserProvider` over `providers`, tried in order."""

    def __init__(self, providers: Sequence[ChainedProvider]) -> None:
        if not providers:
            raise ValueError("a browser provider chain needs at least one provider")
        self.providers = tuple(providers)
        self._open: dict[str, int] = {p.provider.name: 0 for p in self.providers}
        self._owner: dict[int, BrowserProvider] = {}

    @property
    def name(self) -> str:
        return "+".join(p.provider.name for p in self.providers)

    @property
    def local(self) -> LocalChromium | None:
        """The first local Chromium of the chain (persistent profiles open on it)."""
        for entry in self.providers:
            if isinstance(entry.provider, LocalChromium):
                return entry.provider
        return None

    @property
    def capacity(self) -> int:
        return sum(p.concurrency for p in self.providers)

    def open_on(self, name: str) -> int:
        """Browsers open now on provider `name`."""
        return self._open.get(name, 0)

    async def launch(self, playwright: Playwright, *, hardened: bool) -> Browser:
        problems: list[str] = []
        for entry in self.providers:
            provider = entry.provider
            if self._open[provider.name] >= entry.concurrency:
                problems.append(f"{provider.name}: at its concurrency ({entry.concurrency})")
                continue
            self._open[provider.name] += 1
            try:
                browser = await provider.launch(playwright, hardened=hardened)
            except Exception as exc:  # noqa: BLE001 - any failure hands over to the next provider
                self._open[provider.name] -= 1
                problems.append(f"{provider.name}: {type(exc).__name__}")
                log.warning(
                    "browser provider failed to start a browser",
                    provider=provider.name,
                    error=type(exc).__name__,
                )
                continue
            self._owner[id(browser)] = provider
            return browser
        raise RuntimeError(f"no browser provider could start a browser ({'; '.join(problems)})")

    async def retire(self, browser: Browser) -> None:
        provider = self._owner.pop(id(browser), None)
        if provider is None:
            await browser.close()
            return
        try:
            await provider.retire(browser)
        finally:
            self._open[provider.name] = max(0, self._open[provider.name] - 1)
