"""Backup and restore as docs/operations.md describes them, on SQLite (`sqlite3 … .backup`
of both databases, online) and PostgreSQL (`pg_dump --format=custom` → `pg_restore` into an
empty database), plus the blob directory: after a restore the jobs, their audit trail and
their evidence are readable through `portwright jobs show`, `portwright migrate` finds
nothing to break, and what was written after the backup is not there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portwright.settings import Settings
from portwright.store import LocalBlobStore, Store
from tests.conftest import pg_database
from tests.deploy.conftest import ROOT


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _env(db_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    env.update(PORTWRIGHT_DATABASE_URL=db_url, PORTWRIGHT_DATA_DIR=str(data_dir))
    return env


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"{argv[0]}: {done.stderr[-2000:]}"


def _finished_job(store: Store, tenant: str, job_id: str, blobs: LocalBlobStore) -> None:
    job, created = store.jobs.insert(
        job_id=job_id, tenant_id=tenant, adapter="consulate", adapter_version="1",
        portal="consulate", state="QUEUED", status="queued", input={"center": "berlin"},
        lock_key=None, priority=0, actor="test",
    )  # fmt: skip
    assert created
    with store.engine.begin() as conn:
        store.jobs.write_event(
            conn, job, kind="transition", actor="worker", to_state="CONFIRMED",
            status="succeeded", reason="booked", meta={}, terminal=True,
            updates={"output": {"confirmation": f"CONF-{job_id}"}},
        )  # fmt: skip
    key = f"evidence/{job_id}/page.html"
    blobs.put(key, f"<p>{job_id}</p>".encode(), content_type="text/html")
    store.jobs.add_evidence(
        job_id=job_id, tenant_id=tenant, step="confirm", kind="html", blob_key=key,
        content_type="text/html", size=len(job_id) + 7, meta={},
    )  # fmt: skip


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def _restored_database(db_url: str, backup: Path, tmp_path: Path) -> Iterator[str]:
    """Restore `backup` into a new, empty database; yields its URL."""
    if db_url.startswith("sqlite"):
        target = tmp_path / "restored" / "portwright.sqlite"
        shutil.copy(backup / "portwright.sqlite", target)
        yield f"sqlite:///{target}"
        return
    with contextmanager(pg_database)("pw_restore") as restored:
        _run("pg_restore", "--no-owner", "--exit-on-error", "--dbname", restored,
             str(backup / "portwright.pgdump"))  # fmt: skip
        yield restored


def test_backup_then_restore_keeps_jobs_events_and_evidence(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(db_url, data)
    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    settings = Settings(database_url=db_url, data_dir=data)
    blobs = LocalBlobStore(data / "blobs")
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        store.portals.ensure("consulate", max_concurrency=1)
        _finished_job(store, tenant, "j-before", blobs)
        before_events = [(e.seq, e.to_state) for e in store.jobs.events("j-before")]

        # -- the backup, taken while the store is open (online) ---------------------------
        backup = tmp_path / "backup"
        backup.mkdir()
        if db_url.startswith("sqlite"):
            app_db = _sqlite_path(db_url)
            dbos_db = _sqlite_path(settings.dbos_database_url)
            assert dbos_db.exists()
            for source, name in ((app_db, "portwright.sqlite"), (dbos_db, "dbos.sqlite")):
                _run("sqlite3", str(source), f".backup '{backup / name}'")
        else:
            _run("pg_dump", "--format=custom", "--file", str(backup / "portwright.pgdump"),
                 db_url)  # fmt: skip
        shutil.copytree(data / "blobs", backup / "blobs")

        _finished_job(store, tenant, "j-after", blobs)  # after the backup: not restored
    finally:
        store.close()

    # -- the restore, into a new data directory and an empty database -------------------------
    restored_data = tmp_path / "restored"
    restored_data.mkdir()
    shutil.copytree(backup / "blobs", restored_data / "blobs")
    if db_url.startswith("sqlite"):
        shutil.copy(backup / "dbos.sqlite", restored_data / "dbos.sqlite")
    with _restored_database(db_url, backup, tmp_path) as restored_url:
        env = _env(restored_url, restored_data)
        again = _cli(env, "migrate")  # an upgrade after a restore finds the schema current
        assert again.returncode == 0, again.stderr[-2000:]
        shown = _cli(env, "jobs", "show", "j-before")
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert "succeeded" in shown.stdout
        assert "CONF-j-before" in shown.stdout
        missing = _cli(env, "jobs", "show", "j-after")
        assert missing.returncode == 1
        assert "no job j-after" in missing.stdout
        restored = Store.open(restored_url, run_migrations=False)
        try:
            assert [(e.seq, e.to_state) for e in restored.jobs.events("j-before")] == (
                before_events
            )
            [evidence] = restored.jobs.evidence("j-before")
            assert LocalBlobStore(restored_data / "blobs").get(evidence.blob_key) == (
                b"<p>j-before</p>"
            )
        finally:
            restored.close()
