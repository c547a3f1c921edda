"""Jobs, their audit events, escalations and evidence rows."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portwright._ids import new_id
from portwright.store._bulk import (
    _jsonb_text,
    as_jsonb_returns,
    insert_linked,
    insert_plain,
    insert_rows,
    update_plain,
)
from portwright.store._outbox import OutboxRepository
from portwright.store._records import EscalationRecord, EventRecord, EvidenceRecord, JobRecord
from portwright.store._rows import to_record, to_records
from portwright.store._schema import (
    breakers,
    escalations,
    evidence,
    job_events,
    jobs,
    outbox,
    portals,
)
from portwright.store._scope import tenant_transaction

__all__ = ["JobIdTakenError", "JobNotFoundError", "JobRepository", "NewJob", "StaleStateError"]


class JobNotFoundError(LookupError):
    """No job with that id (in that tenant)."""


class JobIdTakenError(ValueError):
    """A job id to insert exists already (in another tenant, or where only new ids may go)."""


class StaleStateError(RuntimeError):
    """The job was not in the state the caller expected when it took the lock."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to accept with `JobRepository.insert_many` (the arguments of `insert`)."""

    job_id: str
    tenant_id: str
    adapter: str
    adapter_version: str
    portal: str
    state: str
    status: str
    input: dict[str, Any] = field(repr=False)
    lock_key: str | None
    priority: int
    actor: str
    reason: str = "submitted"
    parent_id: str | None = None
    item_key: str | None = None
    trace_parent: str | None = None
    notes: dict[str, Any] | None = None


# The chunk steps' reads, built once: a statement object keeps its SQLAlchemy cache key,
# which a statement built per call generates again each time (walking the whole select).
# The ids travel as ONE bound value (PostgreSQL: an array, `= ANY(:ids)`; SQLite: a JSON
# list, `IN (SELECT value FROM json_each(:ids))`), not as an expanding IN: that renders
# and binds one placeholder per id on every execution (SQLAlchemy's post-compile, ~10 µs
# an item of a chunk's read and again of its record step). Other dialects: the IN.
_EXPANDING = jobs.c.id.in_(sa.bindparam("ids", expanding=True))
_ID_LISTS: dict[str, sa.ColumnElement[bool]] = {
    "postgresql": jobs.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.String))),
    "sqlite": jobs.c.id.in_(
        sa.select(sa.func.json_each(sa.bindparam("ids", type_=sa.String)).table_valued("value"))
    ),
}
_READ_MANY = {
    dialect: sa.select(jobs).where(where)
    for dialect, where in [*_ID_LISTS.items(), ("", _EXPANDING)]
}
_LOCK_MANY = {
    dialect: sa.select(jobs).where(where).order_by(jobs.c.id).with_for_update(of=jobs)
    for dialect, where in [*_ID_LISTS.items(), ("", _EXPANDING)]
}


# A step's gate read (`lock_for_step`), built once (see above): with and without the lock.
_STEP_READ = (
    sa.select(
        jobs,
        portals.c.paused.label("portal_paused"),
        portals.c.cooldown_until,
        portals.c.cooldown_reason,
        portals.c.degraded_since,
        breakers.c.state.label("breaker_state"),
        breakers.c.open_until,
    )
    .select_from(
        jobs.join(portals, portals.c.name == jobs.c.portal).outerjoin(
            breakers, breakers.c.name == sa.bindparam("breaker", type_=sa.String)
        )
    )
    .where(jobs.c.id == sa.bindparam("job_id", type_=sa.String))
)
_STEP_LOCK = _STEP_READ.with_for_update(of=jobs)
_STEP_EXTRA = (
    "portal_paused",
    "cooldown_until",
    "cooldown_reason",
    "degraded_since",
    "breaker_state",
    "open_until",
)
_GET = sa.select(jobs).where(jobs.c.id == sa.bindparam("job_id", type_=sa.String))
_LOCK = _GET.with_for_update()

# `insert`'s columns, in `JobRecord`'s order, and its statements: on PostgreSQL the job
# and its first event in one (a data-modifying CTE: the event is written only if the job
# was), elsewhere an INSERT … ON CONFLICT DO NOTHING built once, then the event's.
_JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(JobRecord))
_JSON_COLUMNS = frozenset(c.name for c in jobs.c if isinstance(c.type, sa.JSON))
_EVENT_COLUMNS = (
    "job_id",
    "tenant_id",
    "seq",
    "kind",
    "actor",
    "from_state",
    "to_state",
    "reason",
    "meta",
    "created_at",
)
_OUTBOX_COLUMNS = ("event_id", "tenant_id", "topic", "subject", "platform", "payload",
                   "created_at", "target")  # fmt: skip
_INSERT_PG = (  # noqa: S608 - the names are the schema's; every value is bound
    "WITH j AS (INSERT INTO jobs ({columns}) VALUES ({values}) "
    "ON CONFLICT (id) DO NOTHING RETURNING id) "
    "INSERT INTO job_events ({event_columns}) "
    "SELECT j.id, %s, 1, 'transition', %s, NULL, %s, %s, '{{}}'::jsonb, %s FROM j"
).format(
    columns=", ".join(_JOB_COLUMNS),
    event_columns=", ".join(_EVENT_COLUMNS),
    values=", ".join("%s::jsonb" if name in _JSON_COLUMNS else "%s" for name in _JOB_COLUMNS),
)
_INSERT_JOB = {
    dialect: insert(jobs).on_conflict_do_nothing(index_elements=[jobs.c.id]).returning(jobs.c.id)
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_EVENT = job_events.insert()
# `write_events`' one statement on PostgreSQL, by the job columns it sets
_WRITES: dict[tuple[str, ...], str] = {}


def _write_statement(keys: tuple[str, ...]) -> str:
    """`write_events`' statement on PostgreSQL setting `keys` (plus seq and updated_at):
    the job row's UPDATE guarded by its seq, and, only if it matched, the inserts of the
    events and of their outbox rows (a NOTIFY with them), in one round trip. Its one row
    says whether the job row matched."""
    sql = _WRITES.get(keys)
    if sql is None:
        assignments = ", ".join(
            f"{key} = %s::jsonb" if key in _JSON_COLUMNS else f"{key} = %s"
            for key in (*keys, "seq", "updated_at")
        )

        def insert(table: str, columns: tuple[str, ...]) -> str:
            names = ", ".join(columns)
            picked = ", ".join(f"r.{name}" for name in columns)
            return (
                f"INSERT INTO {table} ({names}) SELECT {picked} FROM u CROSS JOIN "  # noqa: S608
                f"jsonb_populate_recordset(NULL::{table}, %s::jsonb) WITH ORDINALITY AS r "
                "ORDER BY r.ordinality"
            )

        sql = (
            f"WITH u AS (UPDATE jobs SET {assignments} WHERE id = %s AND seq = %s "  # noqa: S608
            f"RETURNING id), e AS ({insert('job_events', _EVENT_COLUMNS)}), "
            f"o AS ({insert('outbox', _OUTBOX_COLUMNS)}) "
            f"SELECT (SELECT count(*) FROM u), pg_notify('{OutboxRepository.CHANNEL}', '')"
        )
        if len(_WRITES) < 64:  # bounded: a few sets of columns are met
            _WRITES[keys] = sql
    return sql


def _json_param(value: Any) -> str:
    """A JSON column's value as the text of a `%s::jsonb` parameter: None as the JSON
    `null`, as SQLAlchemy's JSON type writes it."""
    return "null" if value is None else _jsonb_text(value)


def _json_free_of_none(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bool:
    """No JSON column of `rows` holds None (which SQLAlchemy stores as the JSON `null` and
    a recordset as SQL NULL: such rows take SQLAlchemy's path, as `insert_plain` does)."""
    return all(row[name] is not None for row in rows for name in columns)


def _event_rows(job: JobRecord, events: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The `job_events` rows of `events` written after `job` (its next seqs), every column
    given; an event's other keys (`plan_changes`' `status`) are not columns and left out."""
    job_id, tenant_id, seq = job.id, job.tenant_id, job.seq
    return [
        {
            "job_id": job_id,
            "tenant_id": tenant_id,
            "seq": seq + index,
            "kind": event["kind"],
            "actor": event["actor"],
            "from_state": event["from_state"],
            "to_state": event["to_state"],
            "reason": event["reason"],
            "meta": event["meta"],
            "created_at": now,
        }
        for index, event in enumerate(events, start=1)
    ]


def _many(
    statements: dict[str, sa.Select[Any]], conn: sa.Connection, job_ids: list[str]
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The statement of `_READ_MANY` or `_LOCK_MANY` for the connection's database, and
    its parameters."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return statements[dialect], {"ids": json.dumps(job_ids)}
    if dialect == "postgresql":
        return statements[dialect], {"ids": job_ids}
    return statements[""], {"ids": job_ids}  # pragma: no cover - the two databases we run on


# columns `write_events_many` sets itself: the job's seq after its events, and the time
_STAMPED = frozenset({"seq", "updated_at"})


def _written(row: dict[str, Any]) -> JobRecord:
    """The record of a job row `insert` or `insert_many` wrote (its other columns at their
    defaults)."""
    return JobRecord(
        output=None,
        error_class=None,
        reason=None,
        waiting_for=None,
        paused=False,
        cancel_requested=False,
        attempts=0,
        finished_at=None,
        **row,
    )


def _store_json(job_rows: list[dict[str, Any]], stored: list[tuple[Any, Any]]) -> None:
    """Each job row's input and notes as stored (`insert_many`)."""
    for job_row, (stored_input, stored_notes) in zip(job_rows, stored, strict=True):
        job_row["input"], job_row["notes"] = stored_input, stored_notes


def _records(
    ids: list[str],
    job_rows: list[dict[str, Any]],
    existing: dict[str, Any],
    on_records: Callable[[list[JobRecord]], object] | None,
) -> list[JobRecord]:
    """`insert_many`'s records, in the order of `ids`: those written built from their rows,
    the existing ones read; handed to `on_records` first, if given."""
    made = {job_row["id"]: _written(job_row) for job_row in job_rows}
    records = [
        made[job_id] if job_id in made else to_record(JobRecord, existing[job_id]) for job_id in ids
    ]
    if on_records is not None:
        on_records(records)
    return records


class JobRepository:
    """Every query on jobs, job_events, escalations and evidence."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- jobs ----------------------------------------------------------------------------

    def insert(
        self,
        *,
        job_id: str,
        tenant_id: str,
        adapter: str,
        adapter_version: str,
        portal: str,
        state: str,
        status: str,
        input: dict[str, Any],
        lock_key: str | None,
        priority: int,
        actor: str,
        reason: str = "submitted",
        parent_id: str | None = None,
        item_key: str | None = None,
        trace_parent: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Insert a job and its first event; returns (job, created). Same id twice is a no-op.
        One INSERT … ON CONFLICT (id) DO NOTHING (the existing job is read only when the id
        is taken), then the event: two statements, not a SELECT first; on PostgreSQL one,
        the event's INSERT fed by the job's RETURNING (written only if the job was)."""
        now = time.time()
        with self.engine.begin() as conn:
            record = _written(
                {
                    "id": job_id,
                    "tenant_id": tenant_id,
                    "adapter": adapter,
                    "adapter_version": adapter_version,
                    "portal": portal,
                    "state": state,
                    "status": status,
                    "input": input,
                    "lock_key": lock_key,
                    "priority": priority,
                    "seq": 1,
                    "created_at": now,
                    "updated_at": now,
                    "parent_id": parent_id,
                    "item_key": item_key,
                    "notes": None,
                    "trace_parent": trace_parent,
                }
            )
            row = dataclasses.asdict(record)
            if conn.dialect.name == "postgresql":
                # the job and its event in one statement, which writes the event only if
                # it wrote the job (its rowcount: 1, else the id was taken)
                params = [
                    _json_param(row[name]) if name in _JSON_COLUMNS else row[name]
                    for name in _JOB_COLUMNS
                ]
                params += [tenant_id, actor, state, reason, now]
                created = conn.exec_driver_sql(_INSERT_PG, tuple(params)).rowcount == 1
            else:
                created = conn.execute(_INSERT_JOB[conn.dialect.name], row).first() is not None
                if created:
                    conn.execute(
                        _INSERT_EVENT,
                        {
                            "job_id": job_id,
                            "tenant_id": tenant_id,
                            "seq": 1,
                            "kind": "transition",
                            "actor": actor,
                            "from_state": None,
                            "to_state": state,
                            "reason": reason,
                            "meta": {},
                            "created_at": now,
                        },
                    )
            if not created:  # the same id again: the first job, unchanged
                existing = conn.execute(_GET, {"job_id": job_id}).one()
                return to_record(JobRecord, existing), False
            return record, True  # every column given: the row is the record, no read back

    def insert_many(
        self,
        conn: sa.Connection,
        new_jobs: Sequence[NewJob],
        *,
        new_only: bool = False,
        on_records: Callable[[list[JobRecord]], object] | None = None,
    ) -> tuple[list[JobRecord], set[str]]:
        """Accept many jobs in the caller's transaction with set-based writes: one SELECT of
        the ids already there (a range of the primary key: meant for ids that sort together,
        as `new_ids` draws them and a fan-out derives them from its parent, where the range
        holds little else), then the rows of jobs and of job_events, prebuilt: on
        PostgreSQL one statement for both (`insert_linked`; or, for JSON values whose
        stored form is not certain, `insert_rows`, which reads the jobs' JSON columns back,
        then `insert_plain`), on SQLite one executemany each (`insert_plain`); the records
        are built from what was written.
        Returns (the jobs in the order given, the ids created).
        An id that exists already is a no-op, as in `insert`, but only within its tenant
        (`JobIdTakenError` otherwise, and for any existing id when `new_only`).
        `on_records(the records)` is called as soon as they are known: before the rows are
        written where the records are certain beforehand (SQLite; PostgreSQL's one
        statement), else after; for work to do while the database writes (an answer to
        prepare), never to be taken as committed."""
        ids = [new.job_id for new in new_jobs]
        if len(set(ids)) != len(ids):
            raise ValueError("insert_many: the same job id appears twice")
        wanted = set(ids)
        existing: dict[str, Any] = {}
        if ids:  # one range scan of the primary key, not an IN list of every id
            query = sa.select(jobs).where(jobs.c.id.between(min(ids), max(ids)))
            for row in conn.execute(query):
                if row.id in wanted:
                    existing[row.id] = row
        for new in new_jobs:
            found = existing.get(new.job_id)
            if found is not None and (new_only or found.tenant_id != new.tenant_id):
                raise JobIdTakenError(f"job id {new.job_id} exists already")
        fresh = [new for new in new_jobs if new.job_id not in existing]
        now = time.time()
        job_rows: list[dict[str, Any]] = [
            {
                "id": new.job_id,
                "tenant_id": new.tenant_id,
                "adapter": new.adapter,
                "adapter_version": new.adapter_version,
                "portal": new.portal,
                "state": new.state,
                "status": new.status,
                "input": new.input,
                "lock_key": new.lock_key,
                "priority": new.priority,
                "parent_id": new.parent_id,
                "item_key": new.item_key,
                "trace_parent": new.trace_parent,
                "notes": new.notes,
                "seq": 1,
                "created_at": now,
                "updated_at": now,
            }
            for new in fresh
        ]
        event_rows: list[dict[str, Any]] = [
            {
                "job_id": new.job_id,
                "tenant_id": new.tenant_id,
                "seq": 1,
                "kind": "transition",
                "actor": new.actor,
                "from_state": None,
                "to_state": new.state,
                "reason": new.reason,
                "meta": {},
                "created_at": now,
            }
            for new in fresh
        ]
        # The records of the rows written are built from them, the columns left out at
        # their defaults (as `insert` does): every caller passes JSON-native values (a
        # model's JSON dump), which a JSON column reads back as given, except that jsonb
        # orders an object's keys its own way: on PostgreSQL the records show the JSON
        # columns as stored, so that they, and the answers built from them, show what a
        # read shows. Worked out here (`as_jsonb_returns`) when certain: then the jobs and
        # their events are written in one statement (`insert_linked`); else the jobs' JSON
        # columns are read back (`insert_rows`' RETURNING). SQLite: nothing read back.
        # The rows sent carry the values as stored (the same values: jsonb keeps no order).
        if conn.dialect.name == "postgresql":
            try:
                stored = [
                    (as_jsonb_returns(row["input"]), as_jsonb_returns(row["notes"]))
                    for row in job_rows
                ]
            except LookupError:
                returned = insert_rows(
                    conn, jobs, job_rows, returning=[jobs.c.id, jobs.c.input, jobs.c.notes]
                )
                read = {back.id: (back.input, back.notes) for back in returned}
                _store_json(job_rows, [read[job_row["id"]] for job_row in job_rows])
                insert_plain(conn, job_events, event_rows)
                records = _records(ids, job_rows, existing, on_records)
            else:
                _store_json(job_rows, stored)
                records = _records(ids, job_rows, existing, on_records)
                insert_linked(conn, [(jobs, job_rows), (job_events, event_rows)])
        else:
            records = _records(ids, job_rows, existing, on_records)
            insert_plain(conn, jobs, job_rows)
            insert_plain(conn, job_events, event_rows)
        return records, {job_row["id"] for job_row in job_rows}

    def get(self, job_id: str, *, tenant_id: str | None = None) -> JobRecord:
        query = sa.select(jobs).where(jobs.c.id == job_id)
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise JobNotFoundError(job_id)
        return to_record(JobRecord, row)

    def get_many(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The jobs with these ids (one query), in the order given; missing ones left out."""
        if not job_ids:
            return []
        with self.engine.connect() as conn:
            return self.read_many(conn, job_ids)

    @staticmethod
    def read_many(conn: sa.Connection, job_ids: Sequence[str]) -> list[JobRecord]:
        """`get_many` in the caller's connection (no lock)."""
        if not job_ids:
            return []
        rows = conn.execute(*_many(_READ_MANY, conn, list(job_ids))).all()
        found = {job.id: job for job in to_records(JobRecord, rows)}
        return [found[job_id] for job_id in job_ids if job_id in found]

    def lock(self, conn: sa.Connection, job_id: str) -> JobRecord:
        """Read a job inside the caller's transaction, locking its row (FOR UPDATE on Postgres)."""
        row = conn.execute(_LOCK, {"job_id": job_id}).first()
        if row is None:
            raise JobNotFoundError(job_id)
        return to_record(JobRecord, row)

    def write_event(
        self,
        conn: sa.Connection,
        job: JobRecord,
        *,
        kind: str,
        actor: str,
        to_state: str,
        status: str,
        reason: str,
        meta: dict[str, Any],
        updates: dict[str, Any] | None = None,
        terminal: bool = False,
    ) -> JobRecord:
        """Write one audit event and the job row it changes, in the caller's transaction."""
        now = time.time()
        seq = job.seq + 1
        values: dict[str, Any] = {
            "state": to_state,
            "status": status,
            "seq": seq,
            "updated_at": now,
            **(updates or {}),
        }
        if terminal:
            values["finished_at"] = now
        result = conn.execute(
            jobs.update().where(jobs.c.id == job.id, jobs.c.seq == job.seq).values(**values)
        )
        if result.rowcount != 1:
            raise StaleStateError(f"job {job.id} changed concurrently (expected seq {job.seq})")
        conn.execute(
            job_events.insert().values(
                job_id=job.id,
                tenant_id=job.tenant_id,
                seq=seq,
                kind=kind,
                actor=actor,
                from_state=job.state,
                to_state=to_state,
                reason=reason,
                meta=meta,
                created_at=now,
            )
        )
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).one()
        return to_record(JobRecord, row)

    def lock_for_step(
        self, conn: sa.Connection, job_id: str, *, breaker: str, lock: bool = True
    ) -> tuple[JobRecord, dict[str, Any]]:
        """One read for a step's gate: the job (with `lock`, locked FOR UPDATE on Postgres),
        its portal's pause/cooldown/degraded columns and the portal breaker's state, in the
        caller's transaction. Returns (job, the portal and breaker values). Without `lock`
        a transaction that writes nothing stays read-only (no commit record to flush)."""
        query = _STEP_LOCK if lock else _STEP_READ
        row = conn.execute(query, {"job_id": job_id, "breaker": breaker}).first()
        if row is None:
            raise JobNotFoundError(job_id)
        mapping = row._mapping
        extra = {key: mapping[key] for key in _STEP_EXTRA}
        return to_record(JobRecord, row), extra

    def write_events(
        self,
        conn: sa.Connection,
        job: JobRecord,
        events: list[dict[str, Any]],
        *,
        values: dict[str, Any],
        outbox_rows: list[dict[str, Any]] | None = None,
    ) -> JobRecord:
        """Several audit events and the one job-row update they add up to, in the caller's
        transaction: one UPDATE (guarded by the job's seq, like `write_event`) and one
        multi-row INSERT. Each event holds kind, actor, from_state, to_state, reason, meta;
        `values` are the job row's final columns besides seq and updated_at (state, status,
        finished_at, updates). `outbox_rows` (`OutboxRepository.add_many`'s events) are
        written with them. On PostgreSQL all of it is one statement (the inserts happen
        only if the UPDATE matched; with the outbox's NOTIFY); on SQLite one statement per
        table, each built once. Returns the job as written, without reading it back."""
        now = time.time()
        seq = job.seq + len(events)
        final = {**values, "seq": seq, "updated_at": now}
        keys = tuple(sorted(k for k in values if k not in _STAMPED))
        event_rows = _event_rows(job, events, now)
        out = OutboxRepository.rows(outbox_rows or [], now)
        if (
            conn.dialect.name == "postgresql"
            and event_rows
            and out
            and _json_free_of_none(event_rows, ["meta"])
            and _json_free_of_none(out, ["payload"])
        ):
            params = [
                _json_param(final[key]) if key in _JSON_COLUMNS else final[key]
                for key in (*keys, "seq", "updated_at")
            ]
            params += [job.id, job.seq, _jsonb_text(event_rows), _jsonb_text(out)]
            matched = conn.exec_driver_sql(_write_statement(keys), tuple(params)).scalar()
            if matched != 1:
                raise StaleStateError(f"job {job.id} changed concurrently (expected seq {job.seq})")
            OutboxRepository.notified(conn, sent=True)
            return dataclasses.replace(job, **final)
        row = (job.id, job.seq, *(final[key] for key in keys), seq, now)
        written = update_plain(conn, jobs, ("id", "seq"), (*keys, "seq", "updated_at"), [row])
        if written != 1:
            raise StaleStateError(f"job {job.id} changed concurrently (expected seq {job.seq})")
        insert_plain(conn, job_events, event_rows)
        if out:
            insert_plain(conn, outbox, out)
            OutboxRepository.notified(conn)
        return dataclasses.replace(job, **final)

    def lock_many(self, conn: sa.Connection, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """The jobs with these ids, locked FOR UPDATE on Postgres (in id order, so two
        callers cannot deadlock), in the caller's transaction: {id: job}."""
        if not job_ids:
            return {}
        rows = conn.execute(*_many(_LOCK_MANY, conn, sorted(job_ids)))
        return {job.id: job for job in to_records(JobRecord, rows)}

    def write_events_many(
        self,
        conn: sa.Connection,
        writes: Sequence[tuple[JobRecord, list[dict[str, Any]], dict[str, Any]]],
    ) -> None:
        """`write_events` for many jobs at once, in the caller's transaction: one UPDATE
        per set of columns written (each row guarded by the job's seq) and one INSERT of
        every event, both sent as prebuilt statements (`update_plain`, `insert_plain`: the
        CPU of SQLAlchemy's per-row parameter processing was most of a chunk's record
        step). Each write is (the job as locked, its events, its row's final columns), as
        `write_events` takes them; an event's other keys (`plan_changes`' `status` of the
        job after it) are not columns and are left out, so planned events pass as they are."""
        if not writes:
            return
        now = time.time()
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        event_rows: list[dict[str, Any]] = []
        for job, events, values in writes:
            keys = tuple(sorted(k for k in values if k not in _STAMPED))
            groups.setdefault(keys, []).append(
                (job.id, job.seq, *(values[k] for k in keys), job.seq + len(events), now)
            )
            event_rows += _event_rows(job, events, now)
        for keys, rows in groups.items():
            written = update_plain(conn, jobs, ("id", "seq"), (*keys, "seq", "updated_at"), rows)
            if written != len(rows):
                raise StaleStateError("a job changed concurrently while its events were written")
        insert_plain(conn, job_events, event_rows)

    def events_after(self, conn: sa.Connection, job_id: str, seq: int) -> list[EventRecord]:
        """The job's events after `seq`, in the caller's transaction (oldest first)."""
        query = (
            sa.select(job_events)
            .where(job_events.c.job_id == job_id, job_events.c.seq > seq)
            .order_by(job_events.c.seq)
        )
        return to_records(EventRecord, conn.execute(query))

    def set_flags(self, job_id: str, **values: Any) -> None:
        """Update control flags (paused, cancel_requested) without an event."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def fanout_parents(self, tenant_id: str, *, limit: int = 100) -> list[JobRecord]:
        """The tenant's jobs that fanned out (have items: a report), newest first."""
        children = jobs.alias("children")
        has_items = sa.exists().where(children.c.parent_id == jobs.c.id)
        query = (
            sa.select(jobs)
            .where(jobs.c.tenant_id == tenant_id, jobs.c.parent_id.is_(None), has_items)
            .order_by(jobs.c.id.desc())
            .limit(limit)
        )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(JobRecord, conn.execute(query))

    def waiting_for_input(self, name: str, *, limit: int = 1000) -> list[JobRecord]:
        """Unfinished jobs waiting for input `name`, oldest first."""
        query = (
            sa.select(jobs)
            .where(jobs.c.waiting_for == name, jobs.c.status == "waiting")
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(limit)
        )
        with tenant_transaction(self.engine, None) as conn:
            return to_records(JobRecord, conn.execute(query))

    def search(
        self,
        *,
        tenant_id: str | None = None,
        status: str | None = None,
        portal: str | None = None,
        adapter: str | None = None,
        state: str | None = None,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Newest first; `before_id` is the cursor (ids sort by creation time)."""
        query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        for column, value in (
            (jobs.c.tenant_id, tenant_id),
            (jobs.c.status, status),
            (jobs.c.portal, portal),
            (jobs.c.adapter, adapter),
            (jobs.c.state, state),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(jobs.c.id < before_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(JobRecord, conn.execute(query))

    def remember(self, job_id: str, key: str, value: Any) -> None:
        """Write one durable note for a job, immediately (steps use notes to be safe to re-run)."""
        with self.engine.begin() as conn:
            job = self.lock(conn, job_id)
            notes = {**(job.notes or {}), key: value}
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(notes=notes))

    def remember_once(self, job_id: str, key: str, item: str) -> bool:
        """Add `item` to the job's note `key` (a list) unless it is there; True if added."""
        with self.engine.begin() as conn:
            job = self.lock(conn, job_id)
            notes = dict(job.notes or {})
            listed = notes.get(key)
            listed = list(listed) if isinstance(listed, list) else []
            if item in listed:
                return False
            notes[key] = [*listed, item]
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(notes=notes))
            return True

    def recall(self, job_id: str, key: str) -> Any:
        return (self.get(job_id).notes or {}).get(key)

    def children(self, parent_id: str) -> list[JobRecord]:
        """Every child job of a fan-out parent, oldest first (retries included)."""
        query = sa.select(jobs).where(jobs.c.parent_id == parent_id).order_by(jobs.c.id)
        with self.engine.connect() as conn:
            return to_records(JobRecord, conn.execute(query))

    def child_event_count(
        self, parent_id: str, *, reason_like: str, since: float, to_state: str | None = None
    ) -> int:
        """How many events of a parent's children since `since` have a reason like `%x%`."""
        query = (
            sa.select(sa.func.count())
            .select_from(job_events.join(jobs, jobs.c.id == job_events.c.job_id))
            .where(
                jobs.c.parent_id == parent_id,
                job_events.c.created_at >= since,
                job_events.c.reason.like(f"%{reason_like}%"),
            )
        )
        if to_state is not None:
            query = query.where(job_events.c.to_state == to_state)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def ids_where(self, *, portal: str | None = None, statuses: tuple[str, ...] = ()) -> list[str]:
        query = sa.select(jobs.c.id)
        if portal is not None:
            query = query.where(jobs.c.portal == portal)
        if statuses:
            query = query.where(jobs.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def queued_page(
        self, *, created_before: float, after_id: str | None = None, limit: int = 500
    ) -> list[JobRecord]:
        """Queued jobs created before `created_before`, by id from `after_id` on (a cursor
        that pages through every queued job: the janitor's orphan scan)."""
        query = (
            sa.select(jobs)
            .where(jobs.c.status == "queued", jobs.c.created_at < created_before)
            .order_by(jobs.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(jobs.c.id > after_id)
        with self.engine.connect() as conn:
            return to_records(JobRecord, conn.execute(query))

    def counts_by_status(self, *, tenant_id: str | None = None) -> dict[str, int]:
        query = sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    def counts_by_state(self, *, tenant_id: str | None = None) -> dict[str, int]:
        query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    # -- events --------------------------------------------------------------------------

    def events(self, job_id: str, *, tenant_id: str | None = None) -> list[EventRecord]:
        query = sa.select(job_events).where(job_events.c.job_id == job_id)
        if tenant_id is not None:
            query = query.where(job_events.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows = conn.execute(query.order_by(job_events.c.seq))
            return to_records(EventRecord, rows)

    # -- escalations ---------------------------------------------------------------------

    def open_alert(
        self, job: JobRecord, *, kind: str, reason: str, details: dict[str, Any]
    ) -> str | None:
        """An escalation that does not park the job (staff are told; the job goes on).
        At most one open alert of a kind per job: returns None if one is open already."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(escalations.c.id).where(
                    escalations.c.job_id == job.id,
                    escalations.c.kind == kind,
                    escalations.c.status != "resolved",
                )
            ).first()
            if exists is not None:
                return None
            return self.open_escalation(
                conn, job, kind=kind, step="alert", reason=reason, details=details
            )

    def open_escalation(
        self,
        conn: sa.Connection,
        job: JobRecord,
        *,
        kind: str,
        step: str,
        reason: str,
        details: dict[str, Any],
    ) -> str:
        escalation_id = new_id("esc")
        conn.execute(
            escalations.insert().values(
                id=escalation_id,
                job_id=job.id,
                tenant_id=job.tenant_id,
                portal=job.portal,
                kind=kind,
                status="open",
                step=step,
                reason=reason,
                details=details,
                created_at=time.time(),
            )
        )
        return escalation_id

    def resolve_escalation(
        self, conn: sa.Connection, escalation_id: str, *, actor: str, decision: dict[str, Any]
    ) -> bool:
        """Mark an open escalation resolved; False if it was already resolved."""
        result = conn.execute(
            escalations.update()
            .where(escalations.c.id == escalation_id, escalations.c.status != "resolved")
            .values(
                status="resolved",
                decision=decision,
                # an operator's recorded decision keeps who decided and when
                resolved_by=sa.func.coalesce(escalations.c.resolved_by, actor),
                resolved_at=sa.func.coalesce(escalations.c.resolved_at, time.time()),
            )
        )
        return result.rowcount == 1

    def claim_escalation(self, escalation_id: str, *, actor: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id, escalations.c.status == "open")
                .values(status="claimed", claimed_by=actor, claimed_at=time.time())
            )
            return result.rowcount == 1

    def escalation(self, escalation_id: str, *, tenant_id: str | None = None) -> EscalationRecord:
        query = sa.select(escalations).where(escalations.c.id == escalation_id)
        if tenant_id is not None:
            query = query.where(escalations.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise LookupError(f"no escalation {escalation_id}")
        return to_record(EscalationRecord, row)

    def escalations(
        self,
        *,
        job_id: str | None = None,
        status: str | None = None,
        tenant_id: str | None = None,
        limit: int = 200,
    ) -> list[EscalationRecord]:
        query = sa.select(escalations).order_by(escalations.c.created_at).limit(limit)
        if job_id is not None:
            query = query.where(escalations.c.job_id == job_id)
        if status == "unresolved":
            query = query.where(escalations.c.status != "resolved")
        elif status is not None:
            query = query.where(escalations.c.status == status)
        if tenant_id is not None:
            query = query.where(escalations.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(EscalationRecord, conn.execute(query))

    # -- evidence ------------------------------------------------------------------------

    def add_evidence(
        self,
        *,
        job_id: str,
        tenant_id: str,
        step: str,
        kind: str,
        blob_key: str,
        content_type: str,
        size: int,
        meta: dict[str, Any],
        data: bytes | None = None,
    ) -> str:
        """A piece of evidence at `blob_key`; `data` is its bytes when they could not be
        put there (the blob store was down): kept in the row until moved."""
        evidence_id = new_id("evd")
        with self.engine.begin() as conn:
            conn.execute(
                evidence.insert().values(
                    id=evidence_id,
                    job_id=job_id,
                    tenant_id=tenant_id,
                    step=step,
                    kind=kind,
                    blob_key=blob_key,
                    content_type=content_type,
                    size=size,
                    meta=meta,
                    created_at=time.time(),
                    data=data,
                )
            )
        return evidence_id

    def evidence(self, job_id: str, *, tenant_id: str | None = None) -> list[EvidenceRecord]:
        query = sa.select(evidence).where(evidence.c.job_id == job_id)
        if tenant_id is not None:
            query = query.where(evidence.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows = conn.execute(query.order_by(evidence.c.created_at))
            return to_records(EvidenceRecord, rows)
