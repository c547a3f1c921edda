"""A browser context on a persistent profile (its own Chromium process, its own directory)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from portwright.engines.browser._chain import BrowserProviderChain
from portwright.engines.browser._fingerprint import fingerprint_for
from portwright.engines.browser._lease import BrowserLease
from portwright.engines.browser._pool import BrowserPool
from portwright.engines.browser._providers import HARDENING_SCRIPT, LocalChromium
from portwright.resources import ProfileLease
from portwright.resources.proxies import Proxy
from portwright.sdk import PermanentError

__all__ = ["persistent_context"]


@contextlib.asynccontextmanager
async def persistent_context(
    pool: BrowserPool,
    profile: ProfileLease,
    *,
    proxy: Proxy | None = None,
    seed: str = "",
    hardened: bool = False,
    trace: bool = False,
) -> AsyncIterator[BrowserLease]:
    """Open the profile directory in a local Chromium with the proxy's fingerprint."""
    provider = pool.provider
    if isinstance(provider, BrowserProviderChain) and provider.local is not None:
        provider = provider.local  # a configured chain: its local Chromium opens profiles
    if not isinstance(provider, LocalChromium):
        raise PermanentError(
            f"persistent profiles need the local Chromium provider, not {provider.name!r}"
        )
    await pool.start()
    fingerprint = fingerprint_for(
        proxy.country if proxy else None,
        seed=seed or profile.key,
        browser_version=await provider.version(),
    )
    options: dict[str, Any] = dict(fingerprint.context_options())
    if proxy is not None:
        options["proxy"] = proxy.for_playwright()
    context = await provider.launch_persistent(
        pool.playwright, profile.path, hardened=hardened, **options
    )
    try:
        context.set_default_navigation_timeout(pool.config.navigation_timeout_s * 1000)
        context.set_default_timeout(pool.config.action_timeout_s * 1000)
        if hardened:
            await context.add_init_script(HARDENING_SCRIPT)
        lease = BrowserLease(context, fingerprint, proxy, hardened=hardened)
        if trace:
            await lease.start_trace()
        yield lease
    finally:
        with contextlib.suppress(Exception):
            await context.close()
