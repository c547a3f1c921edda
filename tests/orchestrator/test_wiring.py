"""How the runtime is put together: the DBOS system database, adapter discovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from portwright.adapters import AdapterRegistry, default_registry
from portwright.orchestrator import Runtime
from portwright.settings import Settings
from portwright.testing import EchoAdapter


def test_dbos_system_database_on_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    """DBOS's own SQLite system database gets our WAL engine (DBOS alone would not set WAL)."""
    settings = Settings(data_dir=tmp_path, worker_id="wal-check")
    with Runtime(settings, AdapterRegistry()):
        path = settings.dbos_database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class _Incomplete:
    name = "incomplete"
    machine = EchoAdapter.machine


def test_adapters_register_explicitly_and_through_entry_points() -> None:
    """Installed adapters come from the `portwright.adapters` entry points; others register."""
    registry = default_registry()
    assert {"consulate", "directory-submission", "directory-listing"} <= set(registry.names())
    registry.register(EchoAdapter)
    assert registry.get("echo") is EchoAdapter
    with pytest.raises(TypeError, match="does not declare 'input_model'"):
        registry.register(_Incomplete)  # type: ignore[arg-type]
