"""`portwright new adapter NAME` through the real CLI: the generated package's tests pass as
generated, its entry point names its adapter class and version, and bad requests fail."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from portwright.adapters import AdapterRegistry

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_scaffold_generates_a_package_whose_tests_pass(tmp_path: Path) -> None:
    """The generated project's own tests pass, unedited, and its entry point registers."""
    made = _cli("new", "adapter", "city-permits", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "city-permits"
    assert (project / "src" / "city_permits_adapter" / "adapter.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout
    group = tomllib.loads((project / "pyproject.toml").read_text())["project"]["entry-points"]
    [(entry, target)] = group["portwright.adapters"].items()
    assert entry == "city-permits@1"
    sys.path.insert(0, str(project / "src"))
    try:
        module_name, attr = target.split(":")
        module = __import__(module_name, fromlist=[attr])
        adapter = getattr(module, attr)
        registry = AdapterRegistry()
        registry.register(adapter)
        assert (registry.names(), registry.versions("city-permits")) == (["city-permits"], ["1"])
        assert "read_item" in adapter.read_only_steps
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m.startswith("city_permits_adapter")]:
            del sys.modules[name]


def test_the_scaffold_refuses_a_bad_name_and_an_existing_directory(tmp_path: Path) -> None:
    """A bad name or an existing directory is an error naming the problem; nothing written."""
    bad = _cli("new", "adapter", "City Permits", cwd=tmp_path)
    assert bad.returncode == 2
    assert "name: 'City Permits' must be" in bad.stderr
    (tmp_path / "taken").mkdir()
    taken = _cli("new", "adapter", "taken", cwd=tmp_path)
    assert taken.returncode == 2
    assert "already exists" in taken.stderr
    assert list((tmp_path / "taken").iterdir()) == []
