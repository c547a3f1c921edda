"""The fleet's public surface: curated, sorted, importable; and a fleet built from settings."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from portwright.engines import Fleet
from portwright.engines.browser import LocalChromium
from portwright.resources import SolverChain
from portwright.settings import Settings

PACKAGES = (
    "portwright.engines",
    "portwright.engines.browser",
    "portwright.engines.ladder",
    "portwright.resources",
    "portwright.resources.proxies",
)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_and_the_list_is_sorted(name: str) -> None:
    """Each package's `__all__` is sorted (isort style) and every name in it exists."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    upper = sorted(n for n in exported if n.isupper())
    classes = sorted(n for n in exported if not n.isupper() and n[0].isupper())
    functions = sorted(n for n in exported if n[0].islower())
    assert exported == upper + classes + functions
    for item in exported:
        assert getattr(module, item) is not None


def test_a_fleet_from_settings_uses_the_configured_chromium_solver_and_data_dir(
    tmp_path: Path,
) -> None:
    """chromium_path, the captcha service and data_dir flow into the fleet's parts."""
    from portwright.engines._chromium import find_chromium

    settings = Settings(
        data_dir=tmp_path,
        chromium_path=find_chromium(),
        captcha_solver_url="http://127.0.0.1:9/",
        captcha_api_key=SecretStr("k"),
    )
    fleet = Fleet.from_settings(settings)
    assert fleet.browsers is not None
    assert isinstance(fleet.browsers.provider, LocalChromium)
    assert fleet.browsers.provider.executable == find_chromium()
    assert isinstance(fleet.captcha, SolverChain)
    assert fleet.profiles is not None
    assert fleet.profiles.root == tmp_path / "profiles"
    assert Fleet.from_settings(Settings(data_dir=tmp_path)).captcha is None
