"""The demo's scenario 5 module against a real one-process stack (`start_stack`)."""

from __future__ import annotations

import asyncio

import pytest

from portwright.apps.dispatch.demo import run
from portwright.cli._stack import start_stack
from portwright.sandbox import SandboxWorld, default_services
from portwright.settings import Settings


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_dispatch_demo_scenario_reports_ok_with_its_summary(settings: Settings) -> None:
    """The scenario drives both shops, an outage of shop-alpha, a banner and a replay,
    and reports ok with a line per platform: nothing lost, nothing synced twice."""
    lines: list[str] = []
    with SandboxWorld(default_services(), seed=3) as world:
        stack = start_stack(settings, world=world)
        try:
            result = asyncio.run(run(stack, world, lines.append))
        finally:
            stack.stop()
    text = "\n".join(lines + result.lines)
    assert result.ok, text
    assert "sync delayed since" in text
    assert "shop-alpha's order API is DOWN" in text
    for shop in ("shop-alpha", "shop-beta"):
        assert f"{shop}: " in text
    assert "0 lost; " in text
    assert "0 not synced, 0 synced twice" in text
