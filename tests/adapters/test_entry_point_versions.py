"""Versions side by side through the `portwright.adapters` entry points (what `up` and
`worker` load): `name@version` keys register each version, and a key whose version is not
its class's is refused by name. The package is a real distribution on sys.path (a
`.dist-info` with `entry_points.txt`), found by importlib.metadata as pip installs it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwright.adapters import AdapterRegistry
from portwright.plugins import PluginError

MODULE = """
from typing import ClassVar

from portwright.testing import EchoAdapter


class EpSiteV1(EchoAdapter):
    name: ClassVar[str] = "ep-site"
    version: ClassVar[str] = "1"


class EpSiteV2(EchoAdapter):
    name: ClassVar[str] = "ep-site"
    version: ClassVar[str] = "2"
    candidate: ClassVar[bool] = True
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """install(entries): a distribution `ep-site-adapters` declaring `entries` (key →
    `module:Class`) in the `portwright.adapters` group, importable from sys.path."""
    (tmp_path / "ep_site_adapters.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))

    def _install(entries: dict[str, str]) -> None:
        dist = tmp_path / "ep_site_adapters-0.1.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: ep-site-adapters\nVersion: 0.1\n"
        )
        lines = ["[portwright.adapters]", *(f"{k} = {v}" for k, v in entries.items())]
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()

    yield _install
    sys.modules.pop("ep_site_adapters", None)


def test_entry_points_carry_versions_side_by_side(install: object) -> None:
    install({  # type: ignore[operator]
        "ep-site@1": "ep_site_adapters:EpSiteV1",
        "ep-site@2": "ep_site_adapters:EpSiteV2",
    })  # fmt: skip
    registry = AdapterRegistry()
    loaded = registry.load_entry_points()
    assert loaded.count("ep-site") == 2
    assert registry.versions("ep-site") == ["1", "2"]
    assert registry.get("ep-site").version == "1", "a candidate is never the default"
    assert registry.get("ep-site", "2").__name__ == "EpSiteV2"


def test_an_entry_point_naming_another_version_than_its_class_is_refused(
    install: object,
) -> None:
    install({"ep-site@3": "ep_site_adapters:EpSiteV2"})  # type: ignore[operator]
    with pytest.raises(PluginError, match=r"'ep-site@3'.*names version '3'.*declares '2'"):
        AdapterRegistry().load_entry_points()
