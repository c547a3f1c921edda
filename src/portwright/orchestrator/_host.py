"""The runtime split in two: `DbosHost` (DBOS in this process) and `JobPorts` (what a job
needs from the world around it, typed).

`Runtime` composes them and keeps its public surface (`rt.store`, `rt.secrets`, …) by
delegating, so the orchestrator's modules did not have to change at once; new code takes
the part it needs — a `JobPorts` for a step, the host for lifecycle — rather than the
whole runtime. `portwright.composition` builds both from the settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SQLAlchemyDatasource

from portwright import __version__
from portwright.adapters import AdapterRegistry
from portwright.orchestrator._queue_probe import (
    install_queue_probe,
    install_queue_rows,
    mark_seen,
    uninstall_queue_probe,
)
from portwright.orchestrator._queue_wake import (
    hook_poll_threads,
    install_queue_wake,
    retry_lock_conflicts,
    uninstall_queue_wake,
)
from portwright.resources import CaptchaSolver, IdentityProvider, SecretsProvider
from portwright.resources.ssrf import UrlGuard
from portwright.settings import Settings
from portwright.store import PG_CONNECT_ARGS, BlobStore, Store, create_engine, is_sqlite

if TYPE_CHECKING:
    from portwright.engines import Fleet

__all__ = ["DbosHost", "JobPorts"]


@dataclass(frozen=True)
class JobPorts:
    """The ports a job's steps reach the world through (no DBOS in here): where jobs and
    evidence are kept, which adapters exist, whose identity and secrets a step uses,
    where blobs go, the browsers and engines (None on a gateway-only process), the SSRF
    guard every outbound request passes, and the captcha chain."""

    store: Store
    registry: AdapterRegistry
    identities: IdentityProvider
    secrets: SecretsProvider
    blobs: BlobStore
    fleet: Fleet | None
    guard: UrlGuard
    captcha: CaptchaSolver | None


class DbosHost:
    """DBOS in this process (a process singleton): configured from the settings, launched
    on the application database's engine, destroyed at stop."""

    def __init__(self, settings: Settings, executor_id: str) -> None:
        self.settings = settings
        self.executor_id = executor_id
        self.datasource: SQLAlchemyDatasource | None = None
        self.launched = False

    def config(self) -> DBOSConfig:
        settings = self.settings
        config: DBOSConfig = {
            "name": "portwright",
            "system_database_url": settings.dbos_database_url,
            "executor_id": self.executor_id,
            "application_version": f"portwright-{__version__}",
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.1,
        }
        if is_sqlite(settings.dbos_database_url):
            config["system_database_engine"] = create_engine(settings.dbos_database_url)
        else:  # DBOS's own engine, with our bounded connect and TCP keepalives (not its 10 s)
            config["db_engine_kwargs"] = {
                "connect_args": {"application_name": "dbos_transact", **PG_CONNECT_ARGS}
            }
        return config

    def launch(
        self, store: Store, *, run_workers: bool, before_launch: Callable[[], None]
    ) -> SQLAlchemyDatasource:
        """Configure DBOS, bind its datasource to `store`'s engine, and launch it (listening
        to no queue when this process runs no workers); `before_launch` runs just before
        (workflows recovered at launch need the runtime set)."""
        DBOS(config=self.config())
        self.datasource = SQLAlchemyDatasource.create(
            self.settings.app_database_url, engine=store.engine
        )
        if not run_workers:
            DBOS.listen_queues([])
        before_launch()
        if run_workers:  # its queue polls wait wakeably (`_queue_wake`), from their first
            hook_poll_threads()
        DBOS.launch()
        self.launched = True
        if run_workers:  # idle queues skip their dequeue queries (`_queue_probe`)
            install_queue_probe(ttl_s=self.settings.queue_polling_interval_s / 2)
            install_queue_rows()  # and their polls reload the queue's row about once a second
        # this process's enqueues wake the other processes' polls, and theirs this one's
        install_queue_wake(_system_engine(), listen=run_workers, mark=mark_seen)
        if run_workers:
            retry_lock_conflicts()
        return self.datasource

    def destroy(self, *, drain_s: float = 0.0) -> None:
        """Shut DBOS down. With `drain_s`, first stop taking work from the queues and let
        the workflows running here finish, for at most `drain_s` (whole seconds, rounded
        up): what is still running then is recovered by another worker from its last
        checkpoint."""
        if self.launched:
            uninstall_queue_wake()
            uninstall_queue_probe()
            DBOS.destroy(destroy_registry=False, workflow_completion_timeout_sec=math.ceil(drain_s))
            self.launched = False


def _system_engine() -> sa.Engine:
    """The launched DBOS's system database engine (where the wake-ups go)."""
    from dbos._dbos import _get_dbos_instance

    engine: sa.Engine = _get_dbos_instance()._sys_db.engine
    return engine
