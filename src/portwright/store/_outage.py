"""The database unreachable, as the rest of Portwright sees it.

`is_database_unavailable(exc)` says whether an exception means "the database cannot be
reached right now" (refused, dropped, timed out, pool exhausted, SQLite locked or its file
gone) rather than a bug or bad data: the gateway answers those with 503 + Retry-After.

`OutageBackoff` is what a background loop (heartbeat, relay, inbox processor) holds to ride
out an outage: after each failed round it says how long to wait (doubling, with jitter, up
to a cap), and it logs one line when the outage starts, one when its cause changes (a
connection the outage cut, then new ones refused), one now and then while it lasts, and one
when the database is back, instead of a traceback per round.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa

from portwright.resilience import Backoff

__all__ = ["OutageBackoff", "is_database_unavailable"]

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,  # refused, dropped, server shutting down, SQLite locked
    sa.exc.InterfaceError,  # a connection closed under us
    sa.exc.TimeoutError,  # no pooled connection within pool_timeout
)
try:  # DBOS's notification listener uses psycopg directly
    import psycopg

    _UNAVAILABLE += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - psycopg ships with the postgres extra
    pass

_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk I/O error",
)


_MAX_CAUSES = 8  # distinct causes said at once in one outage; more wait for the reminder


def is_database_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or an exception it was raised from) means the database is
    unreachable right now, and the same request may well succeed later."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, sqlite3.OperationalError):
            # sqlite3 also raises OperationalError for bad SQL ("no such table"): a bug.
            return str(current).startswith(_SQLITE_UNAVAILABLE)
        if isinstance(current, _UNAVAILABLE) and not isinstance(
            getattr(current, "orig", None), sqlite3.OperationalError
        ):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class OutageBackoff:
    """Pauses and log lines for a loop that must outlive the database going away.

    Call `failed(exc)` after a failed round (it logs and returns the seconds to wait) and
    `ok()` after a good one. Not thread-safe: one per loop."""

    def __init__(
        self,
        log: Any,
        loop: str,
        *,
        first_s: float = 0.5,
        cap_s: float = 10.0,
        remind_every_s: float = 30.0,
    ) -> None:
        self.log = log
        self.loop = loop
        self.first_s = first_s
        self.cap_s = cap_s
        self.remind_every_s = remind_every_s
        self.failures = 0
        self._since: float | None = None
        self._reminded = 0.0
        self._causes: set[str] = set()  # the errors this outage has logged

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Log this failure (a line, not a traceback, when the database is unreachable)
        and return how long to wait before the next round."""
        self.failures += 1
        now = time.monotonic()
        # jitter: loops in many processes do not align
        delay = Backoff(self.first_s, self.cap_s, jitter=0.2).delay(self.failures)
        if not is_database_unavailable(exc):
            self.log.error(
                "loop round failed; retrying",
                loop=self.loop,
                retry_in_s=round(delay, 2),
                exc_info=exc,
            )
            return delay
        error = _one_line(exc)
        if self._since is None:
            self._since = self._reminded = now
            self._causes = {error}
            self.log.warning(
                "database unreachable; retrying with backoff",
                loop=self.loop,
                error=error,
                retry_in_s=round(delay, 2),
            )
        elif (error not in self._causes and len(self._causes) < _MAX_CAUSES) or (
            now - self._reminded >= self.remind_every_s
        ):
            # a new cause is said at once (the first line may be a connection the outage
            # cut, "server closed the connection"; the next ones say "Connection refused"),
            # each once per outage; the same one again only as the periodic reminder
            self._causes.add(error)
            self._reminded = now
            self.log.warning(
                "database still unreachable; retrying with backoff",
                loop=self.loop,
                down_for_s=round(now - self._since, 1),
                error=error,
                retry_in_s=round(delay, 2),
            )
        return delay

    def ok(self) -> None:
        """A round succeeded: back to the normal pace (and say so, after an outage)."""
        if self._since is not None:
            self.log.warning(
                "database reachable again; carrying on",
                loop=self.loop,
                down_for_s=round(time.monotonic() - self._since, 1),
            )
        self._since = None
        self.failures = 0


def _one_line(exc: BaseException) -> str:
    """`OperationalError: connection failed: … Connection refused` (first line, bounded)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]
