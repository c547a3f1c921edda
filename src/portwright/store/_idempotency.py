"""Idempotency keys: the first request's fingerprint, lease and stored response, per tenant."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from portwright.store._schema import idempotency_keys

__all__ = ["IdempotencyClaim", "IdempotencyRepository"]

Outcome = Literal["new", "in_flight", "mismatch", "done"]


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """What `begin` found: a fresh claim, a request in flight, a mismatch, or a stored answer."""

    outcome: Outcome
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None
    # For a new claim: when the key was first claimed for this request. A claim taken over
    # after a crash (its lease ran out) or a release keeps it, so what the request creates
    # can be named from it and the retry finds what the first attempt made.
    claimed_at: float | None = None


class IdempotencyRepository:
    """Claims are rows keyed by (tenant, key); the primary key makes the first writer win."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def begin(
        self, tenant_id: str, key: str, fingerprint: str, *, lease_s: float, ttl_s: float
    ) -> IdempotencyClaim:
        """Claim `key` for a request with `fingerprint`, or report what holds it."""
        now = time.time()
        where = (idempotency_keys.c.tenant_id == tenant_id) & (idempotency_keys.c.key == key)
        values = {
            "tenant_id": tenant_id,
            "key": key,
            "fingerprint": fingerprint,
            "state": "in_flight",
            "created_at": now,
            "lease_until": now + lease_s,
            "expires_at": now + ttl_s,
        }
        for _ in range(3):
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(idempotency_keys).where(where)).first()
            if row is None:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(idempotency_keys.insert().values(**values))
                except sa.exc.IntegrityError:
                    continue  # another request claimed it first: read what it holds
                return IdempotencyClaim("new", claimed_at=now)
            expired = row.expires_at <= now
            stale = expired or (row.state == "in_flight" and row.lease_until <= now)
            if stale:
                # The same request again after its first attempt died or failed: the same
                # claim (its first time kept). Another body, or a day later: a new one.
                same = not expired and row.fingerprint == fingerprint
                first = row.created_at if same else now
                with self.engine.begin() as conn:
                    taken = conn.execute(
                        idempotency_keys.update()
                        .where(where, idempotency_keys.c.lease_until == row.lease_until)
                        .values(
                            **{**values, "created_at": first},
                            status_code=None,
                            headers=None,
                            body=None,
                        )
                    )
                if taken.rowcount == 1:
                    return IdempotencyClaim("new", claimed_at=first)
                continue
            if row.fingerprint != fingerprint:
                return IdempotencyClaim("mismatch")
            if row.state == "in_flight":
                return IdempotencyClaim("in_flight")
            return IdempotencyClaim("done", row.status_code, dict(row.headers or {}), row.body)
        return IdempotencyClaim("in_flight")

    def complete(
        self, tenant_id: str, key: str, *, status_code: int, headers: dict[str, str], body: bytes
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
                .values(state="done", status_code=status_code, headers=headers, body=body)
            )

    def release(self, tenant_id: str, key: str) -> None:
        """Free a claim whose request failed (5xx, crash) so the client may try again at
        once: its lease ends now. The row stays, so the retry keeps the claim's first time
        (and what the failed attempt may already have created is found, not made twice)."""
        with self.engine.begin() as conn:
            conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
                .values(state="in_flight", lease_until=0.0)
            )

    def purge_expired(self, now: float | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                idempotency_keys.delete().where(
                    idempotency_keys.c.expires_at <= (now or time.time())
                )
            )
        return result.rowcount
