"""Customer users, their page sessions and one-time email tokens, notification preferences
and the notifications outbox: every query of the customer side."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.store._rows import to_record, to_records
from portwright.store._schema import (
    customer_sessions,
    customer_tokens,
    customer_users,
    notification_prefs,
    notifications,
)
from portwright.store._scope import tenant_transaction

__all__ = [
    "CustomerRecord",
    "CustomerRepository",
    "CustomerSession",
    "EmailTakenError",
    "NewNotification",
    "NotificationRecord",
]


class EmailTakenError(ValueError):
    """Another customer account already uses this email."""


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer user: one tenant's owner or member."""

    id: str
    tenant_id: str
    email: str
    password_hash: str
    role: str
    phone: str | None
    verified_at: float | None
    created_at: float
    disabled_at: float | None
    chat_id: str | None = None  # where the chat-bot channel reaches them


@dataclass(frozen=True, slots=True)
class CustomerSession:
    token_hash: str
    user_id: str
    tenant_id: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A message to send through one channel, as the notifier queues it."""

    tenant_id: str
    user_id: str | None
    event: str
    channel: str
    address: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: str
    tenant_id: str
    user_id: str | None
    event: str
    channel: str
    address: str
    subject: str
    body: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None


class CustomerRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- users ---------------------------------------------------------------------------

    def create_user(
        self,
        *,
        tenant_id: str,
        email: str,
        password_hash: str,
        role: str,
        phone: str | None = None,
        verified: bool = False,
    ) -> CustomerRecord:
        now = time.time()
        values = {
            "id": new_id("usr"),
            "tenant_id": tenant_id,
            "email": email.strip().lower(),
            "password_hash": password_hash,
            "role": role,
            "phone": phone,
            "verified_at": now if verified else None,
            "created_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(customer_users.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            raise EmailTakenError(f"an account with {values['email']} exists already") from exc
        found = self.user(str(values["id"]))
        assert found is not None
        return found

    def user(self, user_id: str, *, tenant_id: str | None = None) -> CustomerRecord | None:
        """The user with this id (only if it belongs to `tenant_id`, when given)."""
        query = sa.select(customer_users).where(customer_users.c.id == user_id)
        if tenant_id is not None:
            query = query.where(customer_users.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(CustomerRecord, row)

    def user_by_email(self, email: str) -> CustomerRecord | None:
        query = sa.select(customer_users).where(customer_users.c.email == email.strip().lower())
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(CustomerRecord, row)

    def users(self, tenant_id: str) -> list[CustomerRecord]:
        query = (
            sa.select(customer_users)
            .where(customer_users.c.tenant_id == tenant_id)
            .order_by(customer_users.c.created_at)
        )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(CustomerRecord, conn.execute(query))

    def update_user(self, user_id: str, **values: object) -> None:
        allowed = {"password_hash", "phone", "chat_id", "verified_at", "disabled_at", "role"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} on a customer user")
        with self.engine.begin() as conn:
            conn.execute(
                customer_users.update().where(customer_users.c.id == user_id).values(**values)
            )

    # -- sessions ------------------------------------------------------------------------

    def open_session(
        self, *, token_hash: str, user: CustomerRecord, csrf_token: str, ttl_s: float
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(customer_sessions.delete().where(customer_sessions.c.expires_at < now))
            conn.execute(
                customer_sessions.insert().values(
                    token_hash=token_hash,
                    user_id=user.id,
                    tenant_id=user.tenant_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )

    def session(self, token_hash: str) -> tuple[CustomerSession, CustomerRecord] | None:
        """The live session with this token hash and its enabled user, or None."""
        query = (
            sa.select(customer_sessions, customer_users)
            .join(customer_users, customer_users.c.id == customer_sessions.c.user_id)
            .where(
                customer_sessions.c.token_hash == token_hash,
                customer_sessions.c.expires_at > time.time(),
                customer_users.c.disabled_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return to_record(CustomerSession, row), to_record(CustomerRecord, row)

    def close_session(self, token_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                customer_sessions.delete().where(customer_sessions.c.token_hash == token_hash)
            )

    def close_sessions_of(self, user_id: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                customer_sessions.delete().where(customer_sessions.c.user_id == user_id)
            )
        return result.rowcount

    # -- one-time tokens (email verification, password reset) ----------------------------

    def create_token(
        self, *, token_hash: str, user: CustomerRecord, purpose: str, ttl_s: float
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                customer_tokens.insert().values(
                    token_hash=token_hash,
                    user_id=user.id,
                    tenant_id=user.tenant_id,
                    purpose=purpose,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )

    def use_token(self, token_hash: str, purpose: str) -> CustomerRecord | None:
        """Spend an unused, unexpired token of `purpose` (once); its user, else None."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(customer_tokens.c.user_id).where(
                    customer_tokens.c.token_hash == token_hash,
                    customer_tokens.c.purpose == purpose,
                    customer_tokens.c.used_at.is_(None),
                    customer_tokens.c.expires_at > now,
                )
            ).first()
            if row is None:
                return None
            spent = conn.execute(
                customer_tokens.update()
                .where(
                    customer_tokens.c.token_hash == token_hash, customer_tokens.c.used_at.is_(None)
                )
                .values(used_at=now)
            )
            if spent.rowcount != 1:
                return None
            user = conn.execute(
                sa.select(customer_users).where(customer_users.c.id == row.user_id)
            ).first()
        return None if user is None else to_record(CustomerRecord, user)

    # -- notification preferences --------------------------------------------------------

    def preferences(self, user_id: str) -> dict[tuple[str, str], bool]:
        """(event, channel) → enabled, for the choices this user has made."""
        query = sa.select(notification_prefs).where(notification_prefs.c.user_id == user_id)
        with self.engine.connect() as conn:
            return {(r.event, r.channel): bool(r.enabled) for r in conn.execute(query)}

    def set_preferences(self, user: CustomerRecord, choices: dict[tuple[str, str], bool]) -> None:
        now = time.time()
        with tenant_transaction(self.engine, user.tenant_id) as conn:
            conn.execute(notification_prefs.delete().where(notification_prefs.c.user_id == user.id))
            if choices:
                conn.execute(
                    notification_prefs.insert(),
                    [
                        {
                            "user_id": user.id,
                            "event": event,
                            "channel": channel,
                            "tenant_id": user.tenant_id,
                            "enabled": enabled,
                            "updated_at": now,
                        }
                        for (event, channel), enabled in choices.items()
                    ],
                )

    # -- the notifications outbox ---------------------------------------------------------

    def enqueue(self, items: list[NewNotification]) -> list[str]:
        now = time.time()
        rows = [
            {
                "id": new_id("ntf"),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "tenant_id": n.tenant_id,
                "user_id": n.user_id,
                "event": n.event,
                "channel": n.channel,
                "address": n.address,
                "subject": n.subject,
                "body": n.body,
            }
            for n in items
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(notifications.insert(), rows)
        return [str(r["id"]) for r in rows]

    def claim_due(self, *, limit: int, lease_s: float) -> list[NotificationRecord]:
        """Lease up to `limit` pending notifications that are due (each to one claimer)."""
        now = time.time()
        due = (
            sa.select(notifications.c.id)
            .where(
                notifications.c.status == "pending",
                notifications.c.next_attempt_at <= now,
                sa.or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now),
            )
            .order_by(notifications.c.next_attempt_at)
            .limit(limit)
        )
        claimed: list[NotificationRecord] = []
        with self.engine.begin() as conn:
            for (nid,) in conn.execute(due).all():
                result = conn.execute(
                    notifications.update()
                    .where(
                        notifications.c.id == nid,
                        notifications.c.status == "pending",
                        sa.or_(
                            notifications.c.lease_until.is_(None),
                            notifications.c.lease_until < now,
                        ),
                    )
                    .values(lease_until=now + lease_s, attempts=notifications.c.attempts + 1)
                )
                if result.rowcount == 1:
                    row = conn.execute(
                        sa.select(notifications).where(notifications.c.id == nid)
                    ).one()
                    claimed.append(to_record(NotificationRecord, row))
        return claimed

    def finish(self, nid: str, *, error: str | None, retry_at: float | None) -> None:
        """Record an attempt: sent (no error), retry later (`retry_at`), or failed for good."""
        now = time.time()
        if error is None:
            values: dict[str, object] = {"status": "sent", "sent_at": now, "last_error": None}
        elif retry_at is not None:
            values = {"status": "pending", "next_attempt_at": retry_at, "last_error": error}
        else:
            values = {"status": "failed", "last_error": error}
        with self.engine.begin() as conn:
            conn.execute(
                notifications.update()
                .where(notifications.c.id == nid)
                .values(lease_until=None, **values)
            )

    def notifications_of(
        self, tenant_id: str, *, user_id: str | None = None, limit: int = 50
    ) -> list[NotificationRecord]:
        query = (
            sa.select(notifications)
            .where(notifications.c.tenant_id == tenant_id)
            .order_by(notifications.c.created_at.desc())
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(notifications.c.user_id == user_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(NotificationRecord, conn.execute(query))
