"""Configured browser providers in order on real Chromium: a remote CDP endpoint that is down
hands over to the local Chromium, each provider stays within its concurrency, and a
failure's message names the provider but not its URL (which may carry a token)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from portwright.engines.browser import (
    BrowserPool,
    BrowserProviderChain,
    ChainedProvider,
    LocalChromium,
    PoolConfig,
    RemoteCdp,
)
from portwright.engines.browser._persistent import persistent_context
from portwright.resources import ProfilePool
from portwright.sdk import TransientError

pytestmark = [pytest.mark.browser]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chain(local_concurrency: int = 1) -> BrowserProviderChain:
    down = RemoteCdp(
        f"ws://127.0.0.1:{_closed_port()}/devtools/browser?token=SECRET-TOKEN",
        name="down",
        timeout_s=2,
    )
    return BrowserProviderChain(
        [ChainedProvider(down, 2), ChainedProvider(LocalChromium(), local_concurrency)]
    )


async def test_a_provider_that_is_down_hands_over_to_the_next() -> None:
    """The first (down) provider's failure is skipped over; the page opens on the local one."""
    chain = _chain()
    config = PoolConfig(max_browsers=2, contexts_per_browser=1)
    async with BrowserPool(chain, config) as pool, pool.context(seed="job-1") as lease:
        page = await lease.new_page()
        await page.set_content("<h1>hello</h1>")
        assert await page.inner_text("h1") == "hello"
        assert chain.open_on("local") == 1
        assert chain.open_on("down") == 0
        # the local provider is at its concurrency (1) and the other is down: no browser
        with pytest.raises(TransientError) as refused:
            async with pool.context(seed="job-2") as other:
                await other.new_page()
        message = refused.value.message
        assert "down: " in message
        assert "local: at its concurrency (1)" in message
        assert "SECRET-TOKEN" not in message
    assert chain.open_on("local") == 0  # retired by the provider that launched it


async def test_persistent_profiles_open_on_the_chains_local_chromium(tmp_path: Path) -> None:
    """A chain with a local Chromium still opens persistent profiles (on that Chromium)."""
    profiles = ProfilePool(tmp_path / "profiles", per_user=1, cooldown_s=0)
    lease = profiles.acquire("alice")
    try:
        async with (
            BrowserPool(_chain(), PoolConfig(max_browsers=1)) as pool,
            persistent_context(pool, lease, seed="s") as context,
        ):
            page = await context.new_page()
            await page.set_content("<p>kept</p>")
            assert await page.inner_text("p") == "kept"
    finally:
        profiles.release(lease)
