"""Evidence held in the database: bytes that could not go to the blob store when made
(it was down), kept in their evidence row until a mover puts them there."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._schema import evidence

__all__ = ["HeldBlob", "HeldBlobRepository", "StoredResult"]


@dataclass(frozen=True, slots=True)
class HeldBlob:
    id: str
    blob_key: str
    content_type: str
    data: bytes


class HeldBlobRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def oldest(self, limit: int) -> list[HeldBlob]:
        c = evidence.c
        query = (
            sa.select(c.id, c.blob_key, c.content_type, c.data)
            .where(c.data.is_not(None))
            .order_by(c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                HeldBlob(r.id, r.blob_key, r.content_type, bytes(r.data))
                for r in conn.execute(query)
            ]

    def data_of(self, evidence_id: str) -> bytes | None:
        """The held bytes of one piece of evidence, or None when they are in the blob store."""
        query = sa.select(evidence.c.data).where(evidence.c.id == evidence_id)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else bytes(value)

    def release(self, evidence_id: str) -> bool:
        """The bytes are in the blob store now: drop them from the row (once)."""
        c = evidence.c
        with self.engine.begin() as conn:
            result = conn.execute(
                evidence.update().where(c.id == evidence_id, c.data.is_not(None)).values(data=None)
            )
        return bool(result.rowcount)

    def locate(self, evidence_id: str) -> StoredResult | None:
        """Any tenant's evidence by id (a signed result link is its own authorization)."""
        return locate(self.engine, evidence_id)

    def of_job(self, job_id: str) -> dict[str, tuple[str, bool]]:
        return held_of_job(self.engine, job_id)

    def count(self) -> int:
        query = sa.select(sa.func.count()).where(evidence.c.data.is_not(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


@dataclass(frozen=True, slots=True)
class StoredResult:
    """Where one piece of evidence's bytes are: `data` while held in the database, else
    the blob store at `blob_key`."""

    id: str
    job_id: str
    tenant_id: str
    kind: str
    blob_key: str
    content_type: str
    size: int
    data: bytes | None


def locate(engine: sa.Engine, evidence_id: str) -> StoredResult | None:
    c = evidence.c
    query = sa.select(
        c.id, c.job_id, c.tenant_id, c.kind, c.blob_key, c.content_type, c.size, c.data
    ).where(c.id == evidence_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    data = None if row.data is None else bytes(row.data)
    return StoredResult(
        row.id, row.job_id, row.tenant_id, row.kind, row.blob_key, row.content_type,
        int(row.size), data,
    )  # fmt: skip


def held_of_job(engine: sa.Engine, job_id: str) -> dict[str, tuple[str, bool]]:
    """The job's evidence: {id: (blob key, held in the database)}."""
    c = evidence.c
    query = sa.select(c.id, c.blob_key, c.data.is_not(None)).where(c.job_id == job_id)
    with engine.connect() as conn:
        return {str(r[0]): (str(r[1]), bool(r[2])) for r in conn.execute(query)}
