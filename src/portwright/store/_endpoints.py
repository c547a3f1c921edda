"""Outbound endpoints (tenant webhooks and platform sync targets) and their breakers.

A breaker per endpoint (the resilience kit's) counts consecutive failures; at the threshold
it opens until `breaker_open_until`, and deliveries to it are not attempted meanwhile.
`delayed_since` is the first failure since the last success: what the status
page shows as "sync delayed since …".

`secrets` are stored as given: the delivery layer seals them through the vault
before they get here (``pwsec1:…``) and opens them only to sign a send.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.resilience import Breaker, BreakerPolicy, BreakerStatus, Window
from portwright.store._rows import to_record, to_records
from portwright.store._schema import webhook_endpoints
from portwright.store._scope import tenant_transaction

__all__ = ["EndpointBreakerStorage", "EndpointRecord", "EndpointRepository"]


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    tenant_id: str
    kind: str
    url: str
    secrets: list[str]  # sealed (pwsec1:…), or plain in rows from before sealing
    topics: list[str]
    platform: str | None
    enabled: bool
    max_attempts: int
    breaker_failures: int
    breaker_open_until: float | None
    delayed_since: float | None
    created_at: float
    updated_at: float

    def wants(self, topic: str, platform: str | None) -> bool:
        """Whether an event of `topic` (from `platform`) goes to this endpoint."""
        if not self.enabled or (self.platform is not None and platform != self.platform):
            return False
        if not self.topics:
            return True
        return any(
            topic == t or (t.endswith("*") and topic.startswith(t[:-1])) for t in self.topics
        )


class EndpointRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.breakers = EndpointBreakerStorage(engine)

    def create(
        self,
        *,
        tenant_id: str,
        url: str,
        secrets: list[str],
        topics: list[str] | None = None,
        platform: str | None = None,
        kind: str = "webhook",
        max_attempts: int = 8,
        endpoint_id: str | None = None,
    ) -> EndpointRecord:
        """A new endpoint; `endpoint_id` when the caller needed it first (to seal its
        secret bound to it)."""
        now = time.time()
        values = {
            "id": endpoint_id or new_id("wep"),
            "tenant_id": tenant_id,
            "kind": kind,
            "url": url,
            "secrets": list(secrets),
            "topics": list(topics or []),
            "platform": platform,
            "enabled": True,
            "max_attempts": max_attempts,
            "breaker_failures": 0,
            "breaker_open_until": None,
            "delayed_since": None,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(webhook_endpoints.insert().values(**values))
        return EndpointRecord(**values)  # type: ignore[arg-type]

    def get(self, endpoint_id: str) -> EndpointRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            ).first()
        if row is None:
            raise LookupError(f"no endpoint {endpoint_id}")
        return to_record(EndpointRecord, row)

    def search(self, *, tenant_id: str | None = None) -> list[EndpointRecord]:
        query = sa.select(webhook_endpoints).order_by(webhook_endpoints.c.created_at)
        if tenant_id is not None:
            query = query.where(webhook_endpoints.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(EndpointRecord, conn.execute(query))

    @staticmethod
    def of_tenant(conn: sa.Connection, tenant_id: str) -> list[EndpointRecord]:
        query = sa.select(webhook_endpoints).where(
            webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.enabled
        )
        return to_records(EndpointRecord, conn.execute(query))

    def _update(self, endpoint_id: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                webhook_endpoints.update()
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(updated_at=time.time(), **values)
            )

    def rotate_secret(self, endpoint_id: str, new_secret: str) -> None:
        """Sign with `new_secret` from now on, and with the previous one beside it (rotation)."""
        current = self.get(endpoint_id).secrets
        self._update(endpoint_id, secrets=[new_secret, *current[:1]])

    def replace_secrets(
        self, endpoint_id: str, secrets: list[str], *, if_updated_at: float
    ) -> bool:
        """Store `secrets` (the same ones, re-encoded) unless the row changed since
        `if_updated_at`; returns whether it was written."""
        t = webhook_endpoints.c
        with self.engine.begin() as conn:
            result = conn.execute(
                webhook_endpoints.update()
                .where(t.id == endpoint_id, t.updated_at == if_updated_at)
                .values(secrets=list(secrets), updated_at=time.time())
            )
        return result.rowcount == 1

    def delete(self, endpoint_id: str, *, tenant_id: str) -> bool:
        """Remove the tenant's endpoint; its deliveries not yet made end "dead" (kept with
        their attempts, never sent). False if the tenant has no such endpoint."""
        from portwright.store._schema import deliveries

        d = deliveries.c
        with tenant_transaction(self.engine, tenant_id) as conn:
            gone = conn.execute(
                webhook_endpoints.delete().where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.tenant_id == tenant_id,
                )
            )
            if gone.rowcount == 0:
                return False
            conn.execute(
                deliveries.update()
                .where(d.endpoint_id == endpoint_id, d.status.in_(("pending", "delivering")))
                .values(status="dead", last_error="endpoint removed", finished_at=time.time())
            )
        return True

    def set_enabled(self, endpoint_id: str, enabled: bool) -> None:
        self._update(endpoint_id, enabled=enabled)

    def record_success(self, endpoint_id: str) -> None:
        """Close the breaker and clear the delay banner."""
        self._breaker(endpoint_id, BreakerPolicy(window_s=math.inf, min_calls=1)).record(ok=True)

    def record_failure(self, endpoint_id: str, *, threshold: int, open_s: float) -> bool:
        """Count a failure; returns True when the breaker is (now) open."""
        policy = BreakerPolicy(
            window_s=math.inf, min_calls=threshold, failure_rate=1.0, open_s=open_s
        )
        return self._breaker(endpoint_id, policy).record(ok=False) == "open"

    def _breaker(self, endpoint_id: str, policy: BreakerPolicy) -> Breaker:
        """The endpoint's breaker: opens after `min_calls` failures in a row."""
        return Breaker(endpoint_id, policy, storage=self.breakers, clock=time.time)

    def mark_delayed(self, endpoint_id: str) -> None:
        """Dead letters are waiting: the sync is delayed until they are replayed."""
        t = webhook_endpoints.c
        self._update(endpoint_id, delayed_since=sa.func.coalesce(t.delayed_since, time.time()))


class _Streak:
    """An endpoint breaker's window: the failures in a row since the last success."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.succeeded = False

    def add(self, ok: bool, at: float) -> None:
        self.failures = 0 if ok else self.failures + 1
        self.succeeded = ok

    def counts(self, since: float) -> tuple[int, int]:
        return self.failures, self.failures

    def clear(self) -> None:
        self.failures = 0


class EndpointBreakerStorage:
    """A `BreakerStorage` on the endpoint row: `breaker_failures` is the window (a streak),
    `breaker_open_until` the open state; `delayed_since` is set by the first failure and
    cleared when a success closes the breaker."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def read(self, name: str) -> BreakerStatus:
        t = webhook_endpoints.c
        with self.engine.connect() as conn:
            until = conn.execute(sa.select(t.breaker_open_until).where(t.id == name)).scalar()
        return BreakerStatus() if until is None else BreakerStatus("open", None, float(until))

    def append(self, name: str, ok: bool, at: float) -> None:
        """A success on a closed breaker: the streak and the delay banner end."""
        t = webhook_endpoints.c
        with self.engine.begin() as conn:
            conn.execute(
                webhook_endpoints.update()
                .where(t.id == name, sa.or_(t.breaker_failures > 0, t.delayed_since.is_not(None)))
                .values(breaker_failures=0, breaker_open_until=None, delayed_since=None)
            )

    def change(
        self, name: str, step: Callable[[BreakerStatus, Window], BreakerStatus]
    ) -> BreakerStatus:
        t = webhook_endpoints.c
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.breaker_failures, t.breaker_open_until, t.delayed_since)
                .where(t.id == name)
                .with_for_update()
            ).first()
            if row is None:
                return BreakerStatus()
            until = row.breaker_open_until
            status = BreakerStatus() if until is None else BreakerStatus("open", None, until)
            streak = _Streak(row.breaker_failures)
            new = step(status, streak)
            closed = new.state == "closed"
            ended = closed and (status.state != "closed" or streak.succeeded)  # a success
            delayed = None if ended else (row.delayed_since or now)
            conn.execute(
                webhook_endpoints.update()
                .where(t.id == name)
                .values(
                    breaker_failures=streak.failures,
                    breaker_open_until=None if closed else new.open_until,
                    delayed_since=delayed,
                    updated_at=now,
                )
            )
            return new
