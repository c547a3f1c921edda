"""The three parts stay apart, and a broken plugin is named, not hidden.

`lint-imports` (in `./run test`) checks the contracts in pyproject.toml; these tests
check that the contracts cover every module, that the private-module contract finds
what it must, and what a user sees when an installed plugin fails to load.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

import portwright
from portwright.plugins import ROUTERS, PluginError, load_plugin, load_plugins, plugin_names
from tests.import_contracts import private_imports

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_every_top_level_module_is_in_exactly_one_part() -> None:
    package = Path(portwright.__file__).parent
    top = {
        f"portwright.{p.stem}"
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    core = set(_contracts()["core-apart"]["source_modules"])  # type: ignore[arg-type]
    parts = {"portwright.apps", "portwright.sandbox"}
    assert core.isdisjoint(parts)
    assert core | parts == top, f"not in a part: {sorted(top - core - parts)}"


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] in {"layerpkg", "brokenplug"}]:
            del sys.modules[name]


def test_private_module_contract_finds_an_import_from_outside_the_owner(on_path: Path) -> None:
    _package(
        on_path,
        {
            "layerpkg/__init__.py": "",
            "layerpkg/web/__init__.py": "from layerpkg.web._errors import ApiError\n",
            "layerpkg/web/_errors.py": "class ApiError(Exception): ...\n",
            "layerpkg/web/routes/__init__.py": "",
            "layerpkg/web/routes/_jobs.py": "from layerpkg.web._errors import ApiError\n",
            "layerpkg/delivery/__init__.py": "",
            "layerpkg/delivery/_routes.py": (
                "from layerpkg.web import ApiError\n\nfrom layerpkg.web._errors import ApiError\n"
            ),
        },
    )
    found = private_imports(grimp.build_graph("layerpkg", cache_dir=None))
    assert [(f.importer, f.imported, f.owner, f.lines) for f in found] == [
        ("layerpkg.delivery._routes", "layerpkg.web._errors", "layerpkg.web", (3,)),
    ]  # inside the owner (web.routes._jobs) is fine; through the public name too


def test_portwright_has_no_private_import_across_packages() -> None:
    found = private_imports(grimp.build_graph("portwright", cache_dir=None))
    assert [f"{f.importer} -> {f.imported}" for f in found] == []


def _broken_plugin(root: Path, group: str) -> None:
    """An installed distribution whose `group` entry point `broken` cannot be imported."""
    _package(
        root,
        {
            "brokenplug/__init__.py": "import not_a_real_module_anywhere\n",
            "brokenplug-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: brokenplug\n"
            "Version: 0.1\n",
            "brokenplug-0.1.dist-info/entry_points.txt": f"[{group}]\nbroken = brokenplug:mount\n",
        },
    )


def test_a_plugin_that_fails_to_load_is_named_with_its_cause(on_path: Path) -> None:
    _broken_plugin(on_path, ROUTERS)
    assert "broken" in plugin_names(ROUTERS)
    with pytest.raises(PluginError) as caught:
        load_plugins(ROUTERS)
    message = str(caught.value)
    assert "'broken'" in message
    assert "'portwright.routers'" in message
    assert "brokenplug:mount" in message
    assert "No module named 'not_a_real_module_anywhere'" in message


def test_a_missing_plugin_names_what_is_installed() -> None:
    with pytest.raises(PluginError, match=r"no plugin 'nope' .*installed: .*sandbox"):
        load_plugin("portwright.worlds", "nope")


def test_the_apps_plug_in_through_their_entry_points() -> None:
    assert {"payment", "shop-order"} <= set(plugin_names("portwright.webhook_handlers"))
    assert "dispatch" in plugin_names(ROUTERS)
    assert {"consulate", "directory-submission", "jobboard", "scrape"} <= set(
        plugin_names("portwright.adapters")
    )
    assert set(plugin_names("portwright.demo_scenarios")) == {
        "directories",
        "dispatch",
        "jobboard",
        "scrape",
    }


def test_the_cli_names_a_broken_command_plugin_in_one_line(tmp_path: Path) -> None:
    _broken_plugin(tmp_path, "portwright.commands")
    run = subprocess.run(
        [sys.executable, "-m", "portwright.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("portwright: plugin 'broken' in entry-point group")
    assert "No module named 'not_a_real_module_anywhere'" in run.stderr
    assert "Traceback" not in run.stderr
