"""Wake-ups for queue polls: a workflow enqueued by one process starts on a worker in
another at once, not at that worker's next probe read and next poll.

Without them, a chunk enqueued by a gateway waited for each worker's queue probe to read
again (`_queue_probe`, every `queue_polling_interval_s / 2`) and then for the worker's
poll of the chunk queue (`chunk_polling_interval`): 40-140 ms from a batch's acceptance to
its chunks starting in the deployed shape (benchmarks/README.md). Three parts:

* `announce` (called by `mark_enqueued` after an enqueue's commit: `Runtime.enqueue`,
  `enqueue_many`, `enqueue_chunks`) wakes this process's polls of those queues and
  signals the other processes. On PostgreSQL the signal is a NOTIFY on `CHANNEL` in DBOS's
  system database, sent by a thread of its own (off the enqueuer's path; names announced
  while one is in flight go in the next, one statement for all); on SQLite (processes on
  one host share the file) a datagram to each process's socket in a directory keyed by
  the database file's path (`socket_dir`). A process that runs workers listens (a
  LISTEN connection of its own, or its socket): each queue named is marked in its probe
  (the probe's next answer for it is "work waits" until a read after the mark says not)
  and its poll woken. A signal lost (a listener reconnecting, a full socket buffer) only
  leaves the queue to the probe's next read, as before; the payload names queues, never
  workflows, so a forged one only causes a poll.
* `PollWaits`: DBOS's poll threads sleep between polls on one shared stop event
  (`queue_worker_thread`: `stop_event.wait(polling_interval)`). `hook_poll_threads`,
  before DBOS's launch, wraps `queue_worker_thread` so that each poll thread gets a view
  of that event whose `wait` also returns (False: not stopped) when the thread's queue
  is woken, at least `WOKEN_FLOOR_S` (or a quarter of its interval, if less) after that
  wait began, so that a steady stream of enqueues cannot make a queue poll back to back.
  A wake for a queue whose thread is busy polling is kept for its next wait: none is
  lost. Wake-ups never touch the event itself (an `Event.wait` woken without the event
  set returns True, which DBOS's threads take for "stop": a reverted first version woke
  the event's own condition and stopped DBOS's queue manager); its `set` (DBOS's stop) is
  hooked on that object to end these waits at once too.
* A chunk's end wakes its own queue's poll on that worker (`_chunks`), since its slot
  stood idle until the next poll while more chunks waited; and a poll that lost the race
  for a queue's rows to another worker's wakes its own queue (`retry_lock_conflicts`),
  at `CONFLICT_FLOOR_S` rather than the enqueues' floor.

This leans on DBOS internals (3.4): `queue_thread` starting each poll thread with the
module's `queue_worker_thread(stop_event, dbos, queue)`, which waits with
`stop_event.wait`; `SystemDatabase.start_queued_workflows`, `is_lock_conflict` and
`is_serialization_conflict`. If they
are not as expected nothing is hooked and wake-ups only mark
the probe (the next poll, at DBOS's own pace, dequeues). The listener and the sender run
on their own connections or sockets and never touch DBOS's notification listener.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

__all__ = [
    "CHANNEL",
    "PgSignal",
    "PollWaits",
    "SocketSignal",
    "announce",
    "hook_poll_threads",
    "install_queue_wake",
    "retry_lock_conflicts",
    "socket_dir",
    "uninstall_queue_wake",
    "wake_local",
]

log = structlog.get_logger("portwright.queues")

CHANNEL = "portwright_queues"
WOKEN_FLOOR_S = 0.05  # a woken poll comes at least this long (or interval/4) after the last
_LISTEN_TIMEOUT_S = 1.0  # a listener checks whether it was stopped at least this often
_RETRY_S = 1.0  # after a listener's or sender's failure
CONFLICT_RETRY_S = 1.0  # a queue's dequeue conflicts wake its poll at most this often
CONFLICT_FLOOR_S = 0.01  # ... and that poll comes this long after its wait began
_START_S = 5.0  # a worker's start waits at most this long for its listener to listen


def _names(queue_names: str | Iterable[str]) -> set[str]:
    return {queue_names} if isinstance(queue_names, str) else set(queue_names)


class PollWaits:
    """The waits between polls of DBOS's queue poll threads sharing one stop `event`,
    wakeable per queue. Wake-ups go through a condition of its own, never the event's
    (an `Event.wait` woken without the event set returns True, which a poll thread takes
    for "stop"); the event's `set` is hooked (on that object) to end these waits too."""

    def __init__(
        self, event: threading.Event, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.event = event
        self._clock = clock
        self._cond = threading.Condition()
        self._woken: set[str] = set()
        self._prompt: set[str] = set()  # woken ones whose wait ends at the conflict floor
        self._closed = False
        self.woken = 0  # waits a wake-up ended early

    def wait(self, queue: str, timeout: float | None = None) -> bool:
        """`Event.wait` for `queue`'s poll thread that also returns False once the queue is
        woken (no sooner than the floor after the wait began); once closed, the event's."""
        started = self._clock()
        deadline = None if timeout is None else started + timeout
        floor = started + (WOKEN_FLOOR_S if timeout is None else min(WOKEN_FLOOR_S, timeout / 4))
        prompt_floor = started + min(CONFLICT_FLOOR_S, floor - started)
        with self._cond:
            while not self._closed:
                if self.event.is_set():
                    return True
                now = self._clock()
                if queue in self._prompt and queue in self._woken:
                    floor = prompt_floor
                if queue in self._woken and now >= floor:
                    self._woken.discard(queue)
                    self._prompt.discard(queue)
                    self.woken += 1
                    return False
                if deadline is not None and now >= deadline:
                    return False
                until = deadline
                if queue in self._woken:
                    until = floor if until is None else min(until, floor)
                self._cond.wait(None if until is None else until - now)
        remaining = None if deadline is None else max(0.0, deadline - self._clock())
        return self.event.wait(remaining)

    def wake(self, queue_names: str | Iterable[str], *, prompt: bool = False) -> None:
        """Wake these queues' polls; `prompt`: at `CONFLICT_FLOOR_S` after their wait
        began rather than `WOKEN_FLOOR_S` (a dequeue that lost the race for the rows: the
        winner's transaction is a few milliseconds long, and these come at most once a
        `CONFLICT_RETRY_S` per queue)."""
        names = _names(queue_names)
        with self._cond:
            self._woken.update(names)
            if prompt:
                self._prompt.update(names)
            self._cond.notify_all()

    def stopped(self) -> None:
        """The event was set: every wait returns True at once."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Wake-ups end: every wait (and later ones) is the event's own from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _QueueStop:
    """The stop event as one queue's poll thread sees it: its `wait` is `PollWaits.wait`."""

    def __init__(self, waits: PollWaits, queue: str) -> None:
        self._waits = waits
        self._queue = queue

    def wait(self, timeout: float | None = None) -> bool:
        return self._waits.wait(self._queue, timeout)

    def is_set(self) -> bool:
        return self._waits.event.is_set()

    def set(self) -> None:
        self._waits.event.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._waits.event, name)


_poll_waits: list[PollWaits] = []  # for the stop event of the launched DBOS's poll threads
_poll_lock = threading.Lock()


def _waits_for(event: Any) -> PollWaits | None:
    """The waits of the poll threads stopped by `event` (a new DBOS launch, a new event);
    None, DBOS's own waits, for an event that is not a plain `threading.Event`."""
    with _poll_lock:
        if _poll_waits and _poll_waits[-1].event is event:
            return _poll_waits[-1]
        if type(event) is not threading.Event:
            log.warning("queue polls not wakeable: DBOS's stop event is not the one expected")
            return None
        waits = PollWaits(event)
        original_set = event.set

        def set_() -> None:
            original_set()
            waits.stopped()

        event.set = set_  # type: ignore[method-assign]  # this one object (DBOS's stop)
        _poll_waits[:] = [waits]
        return waits


def hook_poll_threads() -> bool:
    """Before DBOS's launch: its queue poll threads, started from then on, wait between
    polls through `PollWaits` (DBOS's `queue_thread` starts each with the module's
    `queue_worker_thread`, which this wraps, once per process). False, hooking nothing,
    when DBOS's internals are not as expected (then wake-ups only mark the probe)."""
    try:
        from dbos import _queue as dbos_queue

        current: Callable[..., Any] = dbos_queue.queue_worker_thread
        if getattr(current, "_portwright_wakeable", False):
            return True
        params = list(inspect.signature(current).parameters)
        names = set(current.__code__.co_names)
        starts = "queue_worker_thread" in dbos_queue.queue_thread.__code__.co_names
    except Exception as exc:  # noqa: BLE001 - DBOS changed: its own waits
        log.warning("queue polls not wakeable: DBOS internals changed", error=repr(exc))
        return False
    if params != ["stop_event", "dbos", "queue"] or "wait" not in names or not starts:
        log.warning("queue polls not wakeable: DBOS's queue poll is not the one expected")
        return False

    @functools.wraps(current)
    def queue_worker_thread(stop_event: Any, dbos: Any, queue: Any) -> Any:
        waits = _waits_for(stop_event)
        name = getattr(queue, "name", None)
        if waits is None or not isinstance(name, str):
            return current(stop_event, dbos, queue)
        return current(_QueueStop(waits, name), dbos, queue)

    queue_worker_thread._portwright_wakeable = True  # type: ignore[attr-defined]
    dbos_queue.queue_worker_thread = queue_worker_thread
    return True


def retry_lock_conflicts() -> bool:
    """After DBOS's launch, in a process that runs workers: a poll whose dequeue lost the
    race for a queue's rows to another worker's wakes its own queue, so it polls again at
    the floor rather than a whole interval (or, after a serialization failure, DBOS's
    doubled interval) later; at most once a `CONFLICT_RETRY_S` per queue, so that under
    lasting contention DBOS's own backoff rules. With a global cap (a chunk queue's) DBOS
    claims in REPEATABLE READ, locking the rows NOWAIT, and every worker asks for the
    queue's first rows: two workers woken by the same enqueue raced for the same chunk,
    and the loser either found it locked or, once the winner committed, got a
    serialization failure, and started its own chunk a poll or two later. False, hooking
    nothing, when DBOS's system database is not as expected."""
    try:
        from dbos._dbos import _get_dbos_instance
        from sqlalchemy.exc import DBAPIError

        sys_db: Any = _get_dbos_instance()._sys_db
        original: Callable[..., Any] = sys_db.start_queued_workflows
        conflicts: list[Callable[[Any], bool]] = [
            sys_db.is_lock_conflict,
            sys_db.is_serialization_conflict,
        ]
    except Exception as exc:  # noqa: BLE001 - DBOS changed: its own retry, next poll
        log.warning("dequeue conflicts retried at DBOS's pace", error=repr(exc))
        return False
    retried: dict[str, float] = {}  # queue -> when its last conflict woke it

    def start_queued_workflows(queue: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(queue, *args, **kwargs)
        except DBAPIError as exc:
            name = getattr(queue, "name", None)
            now = time.monotonic()
            if (
                isinstance(name, str)
                and now - retried.get(name, float("-inf")) >= CONFLICT_RETRY_S
                and any(conflict(exc) for conflict in conflicts)
            ):
                retried[name] = now
                wake_local(name, prompt=True)
            raise

    sys_db.start_queued_workflows = start_queued_workflows
    return True


# -- signals between processes ----------------------------------------------------------


class _Outbox:
    """The queue names a signal has yet to send, and its stop: `send` adds, the sender
    thread takes them all at once (`_take`), names announced meanwhile go in the next."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._stopped = False

    def send(self, queue_names: set[str]) -> None:
        with self._cond:
            self._pending |= queue_names
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _take(self) -> set[str] | None:
        """The names to send next, waiting for some; None once stopped."""
        with self._cond:
            while not self._pending and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            names, self._pending = self._pending, set()
            return names


class PgSignal(_Outbox):
    """NOTIFY and LISTEN on `CHANNEL` in the (system) database of `engine`."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__()
        self._engine = engine
        self._sender = uuid.uuid4().hex[:12]  # own notifications are ignored
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()
        self.sent = 0

    def start(self, on_wake: Callable[[set[str]], None] | None) -> None:
        """Start the sender and, with `on_wake`, the listener: returns once it listens (or
        after `_START_S`: then it goes on trying, and meanwhile the probe reads)."""
        self._spawn(self._send_loop, "portwright-queue-notify")
        if on_wake is not None:
            self._spawn(lambda: self._listen_loop(on_wake), "portwright-queue-listen")
            self.listening.wait(_START_S)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _send_loop(self) -> None:
        statement = sa.text(
            "SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"
        )
        while (names := self._take()) is not None:
            payloads = [f"{self._sender} {name}" for name in sorted(names)]
            try:
                with self._engine.begin() as conn:
                    conn.execute(statement, {"channel": CHANNEL, "payloads": payloads})
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - a lost signal: the probe's next read
                log.debug("queue wake-up not sent", error=repr(exc))
                with self._cond:
                    self._cond.wait(_RETRY_S)  # the names are dropped, not retried

    def _listen_loop(self, on_wake: Callable[[set[str]], None]) -> None:
        while not self._stopped:
            raw: Any = None
            try:
                raw = self._engine.raw_connection()
                conn: Any = raw.dbapi_connection  # psycopg's (None on the proxy once detached)
                raw.detach()  # its own connection, never back to the pool
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                while not self._stopped:
                    for notify in conn.notifies(timeout=_LISTEN_TIMEOUT_S):
                        sender, _, name = notify.payload.partition(" ")
                        if name and sender != self._sender:
                            on_wake({name})
            except Exception as exc:  # noqa: BLE001 - reconnect; meanwhile the probe reads
                if not self._stopped:
                    log.debug("queue wake-up listener failed", error=repr(exc))
                    with self._cond:
                        self._cond.wait(_RETRY_S)
            finally:
                if raw is not None:
                    with contextlib.suppress(Exception):
                        raw.close()


def socket_dir(database: str) -> Path:
    """The directory of the wake-up sockets of the processes sharing a SQLite file: in the
    temporary directory (a socket's path is short), keyed by the file's real path; only
    this user's (mode 0700, checked before each use)."""
    key = hashlib.sha256(str(Path(database).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"portwright-wake-{key}"


def _private(directory: Path) -> bool:
    """Whether `directory` is this user's and no one else's (its name is predictable: a
    directory another user made there could read the queue names or drop the sockets)."""
    st = directory.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


class SocketSignal(_Outbox):
    """Datagrams to every listening process's Unix socket in `socket_dir(database)`."""

    def __init__(self, database: str) -> None:
        super().__init__()
        self._dir = socket_dir(database)
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self.sent = 0

    def start(self, on_wake: Callable[[set[str]], None] | None) -> None:
        threading.Thread(
            target=self._send_loop, name="portwright-queue-notify", daemon=True
        ).start()
        if on_wake is None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = self._dir / f"{uuid.uuid4().hex}.sock"
        for attempt in range(3):  # another process's `stop` may remove the empty directory
            self._dir.mkdir(mode=0o700, exist_ok=True)
            if not _private(self._dir):
                sock.close()
                raise PermissionError(f"{self._dir} is not this user's own directory")
            try:
                sock.bind(str(path))
                break
            except FileNotFoundError:
                if attempt == 2:
                    sock.close()
                    raise
        self._sock, self._path = sock, path
        threading.Thread(
            target=lambda: self._listen_loop(sock, on_wake),
            name="portwright-queue-listen",
            daemon=True,
        ).start()

    def stop(self) -> None:
        super().stop()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            with contextlib.suppress(OSError):
                self._dir.rmdir()  # the last one out (others' sockets keep it otherwise)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # ends a blocked recv at once

    def _send_loop(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.setblocking(False)  # a full peer buffer drops the datagram, never blocks
            while (names := self._take()) is not None:
                payload = "\n".join(sorted(names)).encode()[:60000]
                try:
                    if not _private(self._dir):  # another user's: names are not for it
                        continue
                    entries = [p for p in self._dir.iterdir() if p.suffix == ".sock"]
                except OSError:  # no listener yet
                    continue
                for path in entries:
                    if path == self._path:
                        continue
                    try:
                        out.sendto(payload, str(path))
                    except (ConnectionRefusedError, FileNotFoundError):
                        # Nobody bound: a process that ended without removing its socket.
                        with contextlib.suppress(OSError):
                            path.unlink()
                    except OSError as exc:  # a full buffer, no permission: the probe reads
                        log.debug("queue wake-up not sent", path=path, error=repr(exc))
                self.sent += 1

    def _listen_loop(self, sock: socket.socket, on_wake: Callable[[set[str]], None]) -> None:
        sock.settimeout(_LISTEN_TIMEOUT_S)
        with sock:
            while not self._stopped:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                names = {name for name in data.decode(errors="replace").split("\n") if name}
                if names:
                    on_wake(names)


# -- this process's wake-ups ------------------------------------------------------------

Signal = PgSignal | SocketSignal
_signals: list[Signal] = []
# whether another process may be listening: a worker's janitor learns it each round from
# the heartbeats (`set_peers`); unknown (a gateway, which runs no janitor, or before the
# first round) counts as yes
_peers = [True]


def set_peers(present: bool) -> None:
    """Whether other worker processes are alive (the listeners of `announce`'s signal): a
    process alone sends none (a NOTIFY statement per enqueue on PostgreSQL, heard by no
    one: ~0.1-0.3 of the ~5.5 statements per step of `orchestrator_bench.py`'s one-process
    jobs; its jobs/s did not move measurably either way on this machine). A worker joining is
    counted at the next janitor round; until then it finds the enqueues at its probe's
    next read, as without wake-ups."""
    _peers[0] = present


def wake_local(queue_names: str | Iterable[str], *, prompt: bool = False) -> None:
    """Wake this process's polls of these queues (no-op when its poll threads' waits are
    not hooked); `prompt`: see `PollWaits.wake`."""
    if _poll_waits:
        _poll_waits[-1].wake(queue_names, prompt=prompt)


def announce(queue_names: str | Iterable[str]) -> None:
    """After a commit that enqueued on these queues: wake this process's polls of them and
    signal the other processes (no-op for what is not installed)."""
    names = _names(queue_names)
    if not names:
        return
    wake_local(names)
    if _signals and _peers[0]:
        _signals[-1].send(names)


def install_queue_wake(
    sys_engine: sa.Engine, *, listen: bool, mark: Callable[[set[str]], None]
) -> Signal | None:
    """After DBOS's launch: signal this process's enqueues to the other processes sharing
    DBOS's system database at `sys_engine`, and, with `listen` (a process that runs
    workers, whose poll threads `hook_poll_threads` hooked), listen for theirs: a queue
    named is `mark`ed (the probe) and its poll woken. None when there is no signal for
    the database (an in-memory one)."""
    for old in _signals:
        old.stop()
    _signals.clear()
    signal: Signal
    if sys_engine.dialect.name == "postgresql":
        signal = PgSignal(sys_engine)
    else:
        database = sys_engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        signal = SocketSignal(database)

    def woken(names: set[str]) -> None:
        mark(names)
        wake_local(names)

    try:
        signal.start(woken if listen else None)
    except OSError as exc:  # no socket (a read-only temporary directory): the probe reads
        log.warning("queue wake-ups not installed", error=repr(exc))
        signal.stop()
        return None
    _signals[:] = [signal]
    return signal


def uninstall_queue_wake() -> None:
    """Before DBOS's destroy: stop signalling and listening; the poll threads' waits are
    DBOS's own again."""
    for signal in _signals:
        signal.stop()
    _signals.clear()
    _peers[0] = True
    with _poll_lock:
        for waits in _poll_waits:
            waits.close()
        _poll_waits.clear()
