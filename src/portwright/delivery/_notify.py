"""Cross-process wake-ups: PostgreSQL LISTEN on the outbox channel.

Every outbox write (and every dead-letter replay) on PostgreSQL notifies
`OutboxRepository.CHANNEL` when its transaction commits, whichever process wrote it.
An `OutboxListener` holds one dedicated autocommit psycopg connection that LISTENs
on that channel and calls its callbacks (the hub's and the relay's `wake`) on each
notification, so a change made by any gateway, worker or console process reaches
the realtime subscribers and relays of every process at once, not at their next poll.

The connection is watched (an idle `SELECT 1` every `ping_s`, TCP keepalives) and,
when it drops, reopened with bounded exponential backoff; the app never sees the
failure, only a log line. On every (re)connect the callbacks run once: something
may have been committed while nobody listened. Notifications are only a hint:
the hub and relay keep a (slower) safety poll and always read the table itself.

On SQLite the listener does nothing (`active` is False): polling stays the mechanism.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from portwright.resilience import Backoff, cancel_and_wait
from portwright.store import Store

__all__ = ["OutboxListener"]

log = structlog.get_logger("portwright.delivery")


class OutboxListener:
    def __init__(
        self,
        store: Store,
        callbacks: Iterable[Callable[[], None]] = (),
        *,
        application_name: str = "portwright-listener",
        ping_s: float = 30.0,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.store = store
        self.channel = store.outbox.CHANNEL
        self.application_name = application_name
        self.ping_s = ping_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._callbacks = list(callbacks)
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._listening = False
        self._backoff = Backoff(backoff_s, max(backoff_s, max_backoff_s))
        self._failures = 0  # reconnects in a row without a LISTEN established
        self.connects = 0  # how many times a LISTEN was established (tests, diagnostics)

    @property
    def active(self) -> bool:
        """Whether this store can notify at all (PostgreSQL)."""
        return self.store.dialect == "postgresql"

    @property
    def connected(self) -> bool:
        """Listening right now: remote writes wake the callbacks without a poll."""
        conn = self._conn
        return self._listening and conn is not None and not conn.closed

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection, while there is one."""
        conn = self._conn
        return conn.info.backend_pid if conn is not None and not conn.closed else None

    def add(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def conninfo(self) -> str:
        """The store's URL as a libpq conninfo (SQLAlchemy's `+psycopg` driver suffix dropped)."""
        url = self.store.engine.url.set(drivername=self.store.engine.url.get_backend_name())
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        if self._task is None and self.active:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def _fire(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # one bad callback must not stop the others or the listener
                log.exception("listener callback failed")

    async def _run(self) -> None:
        self._failures = 0
        try:
            while True:
                self._failures += 1  # reset once a LISTEN is established
                delay = self._backoff.delay(self._failures)
                try:
                    await self._listen()
                except (psycopg.Error, OSError) as exc:
                    log.warning(
                        "outbox listener lost its connection; reconnecting",
                        channel=self.channel,
                        error=str(exc) or type(exc).__name__,
                        retry_in_s=round(delay, 2),
                    )
                except Exception:  # never crash the app: log, back off, listen again
                    log.exception("outbox listener failed; restarting", retry_in_s=delay)
                await self._close()
                await asyncio.sleep(delay)
        finally:
            await self._close()

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo(),
            autocommit=True,
            application_name=self.application_name,
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        self._conn = conn
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._listening = True
        self._failures = 0  # it listens: the next drop retries soon again
        self.connects += 1
        log.info("outbox listener listening", channel=self.channel, reconnect=self.connects > 1)
        self._fire()  # whatever was committed while nobody listened
        while True:
            async for _ in conn.notifies(timeout=self.ping_s):
                self._fire()
            await conn.execute("SELECT 1")  # idle for ping_s: is the connection still alive?

    async def _close(self) -> None:
        self._listening = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
