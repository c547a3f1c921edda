"""The rollout tests' sandbox: the echo page, reachable through the SSRF guard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from tests.support import reaching


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([echo_service("echo")], seed=7) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)
