"""Operators, their console sessions, and the read models the console's pages need."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from portwright._ids import new_id
from portwright.store._records import AuditRecord, EvidenceRecord, JobRecord
from portwright.store._rows import to_record, to_records
from portwright.store._schema import (
    audit_log,
    console_sessions,
    credentials,
    deliveries,
    escalations,
    evidence,
    job_events,
    jobs,
    operators,
    tenants,
)
from portwright.store._scope import tenant_transaction

__all__ = [
    "AuditPage",
    "ConsoleRepository",
    "CredentialInfo",
    "CredentialPage",
    "JobPage",
    "OperatorRecord",
    "OperatorSession",
]


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of the jobs list: the rows, how many match, the next page's cursor, and
    how many fan-out items each listed parent has."""

    rows: list[JobRecord]
    total: int
    next_cursor: str | None
    items: dict[str, int]


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditRecord]
    total: int
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class CredentialPage:
    rows: list[CredentialInfo]
    total: int
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """A console account: platform-wide when `tenant_id` is None, else one tenant's."""

    id: str
    email: str
    password_hash: str
    role: str
    tenant_id: str | None
    created_at: float
    disabled_at: float | None


@dataclass(frozen=True, slots=True)
class OperatorSession:
    token_hash: str
    operator_id: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A stored credential's metadata, as the console lists it: never its ciphertext."""

    tenant_id: str
    tenant: str
    name: str
    revision: int
    updated_at: float


class ConsoleRepository:
    """Every query the operator console runs that the other repositories do not offer."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- operators and sessions ------------------------------------------------------------

    def create_operator(
        self, *, email: str, password_hash: str, role: str, tenant_id: str | None
    ) -> OperatorRecord:
        values = {
            "id": new_id("op"),
            "email": email.strip().lower(),
            "password_hash": password_hash,
            "role": role,
            "tenant_id": tenant_id,
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(operators.insert().values(**values))
        found = self.operator_by_email(email)
        assert found is not None
        return found

    def set_password(self, operator_id: str, password_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                operators.update()
                .where(operators.c.id == operator_id)
                .values(password_hash=password_hash)
            )

    def operator_by_email(self, email: str) -> OperatorRecord | None:
        query = sa.select(operators).where(operators.c.email == email.strip().lower())
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(OperatorRecord, row)

    def operators(self) -> list[OperatorRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(operators).order_by(operators.c.email))
            return to_records(OperatorRecord, rows)

    def open_session(
        self, *, token_hash: str, operator_id: str, csrf_token: str, ttl_s: float
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))
            conn.execute(
                console_sessions.insert().values(
                    token_hash=token_hash,
                    operator_id=operator_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )

    def session(self, token_hash: str) -> tuple[OperatorSession, OperatorRecord] | None:
        """The live session with this token hash and its (enabled) operator, or None."""
        query = (
            sa.select(console_sessions, operators)
            .join(operators, operators.c.id == console_sessions.c.operator_id)
            .where(
                console_sessions.c.token_hash == token_hash,
                console_sessions.c.expires_at > time.time(),
                operators.c.disabled_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return to_record(OperatorSession, row), to_record(OperatorRecord, row)

    def close_session(self, token_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                console_sessions.delete().where(console_sessions.c.token_hash == token_hash)
            )

    # -- read models ---------------------------------------------------------------------

    def find_jobs(
        self,
        *,
        tenant_id: str | None,
        text: str = "",
        status: str | None = None,
        portal: str | None = None,
        adapter: str | None = None,
        top_level: bool = False,
        limit: int = 100,
    ) -> list[JobRecord]:
        """Newest first; `text` matches the job id or anything in its input."""
        query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        for column, value in (
            (jobs.c.tenant_id, tenant_id),
            (jobs.c.status, status),
            (jobs.c.portal, portal),
            (jobs.c.adapter, adapter),
        ):
            if value:
                query = query.where(column == value)
        if top_level:
            query = query.where(jobs.c.parent_id.is_(None))
        if text:
            pattern = f"%{text.lower()}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(jobs.c.id).like(pattern),
                    sa.func.lower(sa.cast(jobs.c.input, sa.Text)).like(pattern),
                )
            )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(JobRecord, conn.execute(query))

    def jobs_page(
        self,
        *,
        tenant_id: str | None,
        text: str = "",
        status: str | None = None,
        portal: str | None = None,
        adapter: str | None = None,
        of_tenant: str | None = None,
        top_level: bool = True,
        noted: tuple[str, str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        """Newest first, a page at a time (`cursor`: the last id shown), with the total;
        `top_level` leaves fan-out items out (each parent shows how many it has); `noted`
        (key, item): only jobs whose note `key` (a list, see `remember_once`) holds item."""
        conditions: list[sa.ColumnElement[bool]] = []
        for column, value in (
            (jobs.c.tenant_id, tenant_id),
            (jobs.c.tenant_id, of_tenant),
            (jobs.c.status, status),
            (jobs.c.portal, portal),
            (jobs.c.adapter, adapter),
        ):
            if value:
                conditions.append(column == value)
        if top_level:
            conditions.append(jobs.c.parent_id.is_(None))
        if noted is not None:
            conditions.append(self._noted(*noted))
        if text:
            pattern = f"%{text.lower()}%"
            conditions.append(
                sa.or_(
                    sa.func.lower(jobs.c.id).like(pattern),
                    sa.func.lower(sa.cast(jobs.c.input, sa.Text)).like(pattern),
                )
            )
        query = sa.select(jobs).where(*conditions).order_by(jobs.c.id.desc()).limit(limit + 1)
        if cursor:
            query = query.where(jobs.c.id < cursor)
        count = sa.select(sa.func.count()).select_from(jobs).where(*conditions)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows = to_records(JobRecord, conn.execute(query))
            total = int(conn.execute(count).scalar_one())
            shown = [r.id for r in rows[:limit]]
            per_parent = sa.select(jobs.c.parent_id, sa.func.count()).where(
                jobs.c.parent_id.in_(shown)
            )
            items = {
                str(r[0]): int(r[1]) for r in conn.execute(per_parent.group_by(jobs.c.parent_id))
            }
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(rows, total, rows[-1].id if more and rows else None, items)

    def _noted(self, key: str, item: str) -> sa.ColumnElement[bool]:
        """A job's note `key` is a JSON list holding `item` (matched in the database)."""
        if self.engine.dialect.name == "postgresql":
            return sa.type_coerce(jobs.c.notes, JSONB)[key].contains([item])
        listed = sa.func.json_each(jobs.c.notes, f'$."{key}"').table_valued("value")
        return sa.select(sa.literal(1)).select_from(listed).where(listed.c.value == item).exists()

    def audit_page(
        self,
        *,
        tenant_id: str | None,
        actor: str = "",
        action: str = "",
        target: str = "",
        cursor: int | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """Newest first, a page at a time (`cursor`: the last row id shown), with the total."""
        conditions: list[sa.ColumnElement[bool]] = []
        if tenant_id is not None:
            conditions.append(audit_log.c.tenant_id == tenant_id)
        if actor:
            conditions.append(audit_log.c.actor.like(f"%{actor}%"))
        if action:
            conditions.append(audit_log.c.action.like(f"{action}%"))
        if target:
            conditions.append(audit_log.c.target_id.like(f"%{target}%"))
        query = sa.select(audit_log).where(*conditions).order_by(audit_log.c.id.desc())
        if cursor is not None:
            query = query.where(audit_log.c.id < cursor)
        count = sa.select(sa.func.count()).select_from(audit_log).where(*conditions)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows = [to_record(AuditRecord, r) for r in conn.execute(query.limit(limit + 1))]
            total = int(conn.execute(count).scalar_one())
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(rows, total, rows[-1].id if more and rows else None)

    def tenant_names(self) -> dict[str, str]:
        """Every tenant's name by id (for a platform-wide operator's columns and filter)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tenants.c.id, tenants.c.name).order_by(tenants.c.name))
            return {str(r[0]): str(r[1]) for r in rows}

    def evidence_item(self, evidence_id: str, *, tenant_id: str | None) -> EvidenceRecord | None:
        query = sa.select(evidence).where(evidence.c.id == evidence_id)
        if tenant_id is not None:
            query = query.where(evidence.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(EvidenceRecord, row)

    def hourly_outcomes(self, *, since: float, tenant_id: str | None) -> list[tuple[float, str]]:
        """(finished_at, status) of every job that ended since `since`."""
        query = sa.select(jobs.c.finished_at, jobs.c.status).where(jobs.c.finished_at >= since)
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return [(float(r[0]), str(r[1])) for r in conn.execute(query)]

    def escalation_response_times(self, *, since: float, tenant_id: str | None) -> list[float]:
        """Seconds from opening to resolution of escalations resolved since `since`."""
        query = sa.select(escalations.c.created_at, escalations.c.resolved_at).where(
            escalations.c.resolved_at >= since, escalations.c.step != "alert"
        )
        if tenant_id is not None:
            query = query.where(escalations.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return [float(r[1]) - float(r[0]) for r in conn.execute(query)]

    def audit(
        self,
        *,
        tenant_id: str | None,
        actor: str = "",
        action: str = "",
        target: str = "",
        limit: int = 200,
    ) -> list[AuditRecord]:
        """Newest first; a tenant-limited reader sees only its tenant's rows."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(audit_log.c.tenant_id == tenant_id)
        if actor:
            query = query.where(audit_log.c.actor.like(f"%{actor}%"))
        if action:
            query = query.where(audit_log.c.action.like(f"{action}%"))
        if target:
            query = query.where(audit_log.c.target_id.like(f"%{target}%"))
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(AuditRecord, conn.execute(query))

    def credentials_page(
        self, *, tenant_id: str | None, text: str = "", cursor: int = 0, limit: int = 50
    ) -> CredentialPage:
        """Stored credentials' names by tenant (one tenant's when `tenant_id` is given),
        `text` matching the name or the tenant's name, a page at a time (`cursor`: how
        many rows the pages before showed), with the total."""
        c = credentials.c
        conditions: list[sa.ColumnElement[bool]] = []
        if tenant_id is not None:
            conditions.append(c.tenant_id == tenant_id)
        if text:
            needle = text.lower()
            conditions.append(
                sa.or_(
                    sa.func.lower(c.name).contains(needle, autoescape=True),
                    sa.func.lower(tenants.c.name).contains(needle, autoescape=True),
                )
            )
        joined = credentials.join(tenants, tenants.c.id == c.tenant_id)
        query = (
            sa.select(c.tenant_id, tenants.c.name.label("tenant"), c.name, c.revision, c.updated_at)
            .select_from(joined)
            .where(*conditions)
            .order_by(tenants.c.name, c.name, c.tenant_id)
            .offset(max(0, cursor))
            .limit(limit + 1)
        )
        count = sa.select(sa.func.count()).select_from(joined).where(*conditions)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows: list[sa.Row[Any]] = list(conn.execute(query))
            total = int(conn.execute(count).scalar_one())
        more = len(rows) > limit
        shown = to_records(CredentialInfo, rows[:limit])
        return CredentialPage(shown, total, max(0, cursor) + limit if more else None)

    def fingerprint(self, *, tenant_id: str | None) -> tuple[Any, ...]:
        """Changes whenever a job, event, escalation, dead letter or audit row in scope changes."""
        parts: list[Any] = [
            sa.select(sa.func.max(job_events.c.id), sa.func.count()),
            sa.select(sa.func.max(jobs.c.updated_at), sa.func.count()),
            sa.select(
                sa.func.max(escalations.c.created_at),
                sa.func.max(sa.func.coalesce(escalations.c.resolved_at, 0)),
                sa.func.max(sa.func.coalesce(escalations.c.claimed_at, 0)),
            ),
            sa.select(sa.func.max(audit_log.c.id)),
            # dead letters only (indexed by status): a new one, or a replay, changes these
            sa.select(sa.func.max(deliveries.c.finished_at), sa.func.count()).where(
                deliveries.c.status == "dead"
            ),
        ]
        tables = (job_events, jobs, escalations, audit_log, deliveries)
        result: list[Any] = []
        with tenant_transaction(self.engine, tenant_id) as conn:
            for part, table in zip(parts, tables, strict=True):
                scoped = part if tenant_id is None else part.where(table.c.tenant_id == tenant_id)
                result.extend(conn.execute(scoped).one())
        return tuple(result)
