"""`portwright adapters list | check` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from portwright.store import Store


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", "adapters", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_adapters_list_and_check_show_versions_and_catch_a_bad_rollout(
    db_url: str, tmp_path: Path
) -> None:
    """`list` shows each installed version and the portal's rollout; `check` passes, then
    fails naming a rollout whose canary is not installed."""
    flags = ("--database-url", db_url, "--data-dir", str(tmp_path / "data"))
    assert _cli("check", *flags).returncode == 0
    store = Store.open(db_url)
    try:
        setting = {"adapter": "consulate", "live": "1.0", "canary": "7", "canary_percent": 5,
                   "canary_tenants": [], "shadow": None, "promote_after": 0,
                   "rollback_margin": 0.2, "rollback_window_s": 3600.0,
                   "rollback_min_jobs": 5}  # fmt: skip
        store.rollouts.put("consulate", "", setting, actor="test", action="rollout.set")
    finally:
        store.close()
    listed = _cli("list", *flags)
    assert listed.returncode == 0, listed.stderr
    assert "consulate@1.0\tportal=consulate" in listed.stdout
    assert "default" in listed.stdout.split("consulate@1.0", 1)[1].splitlines()[0]
    assert "rollout consulate: live=1.0 canary=7 (5%, tenants 0) shadow=-" in listed.stdout
    checked = _cli("check", *flags)
    assert checked.returncode == 1
    assert "canary version '7' of 'consulate' is not installed (installed: 1.0)" in checked.stderr
