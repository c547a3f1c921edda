"""Queue notifications (durably, in the store) and send them with retries.

`Notifier.notify(user, event, context)` renders the event's template and writes one
`notifications` row per channel the user wants it on (their preferences, else the
event's defaults; account events always go by email). `NotificationSender` leases due
rows, hands each to its channel and records the outcome: sent, retried later with the
delivery backoff, or failed for good after `max_attempts` or a permanent refusal.
Rows survive restarts; a lease that lapses (a crashed sender) is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog

from portwright.notifications._channels import (
    Channel,
    ChannelError,
    OutgoingMessage,
    PermanentChannelError,
)
from portwright.notifications._templates import EVENTS, REQUIRED_EVENTS, STAFF_EVENTS, render
from portwright.resilience import Backoff
from portwright.store import (
    CustomerRecord,
    NewNotification,
    NotificationRecord,
    OutageBackoff,
    Store,
)

__all__ = ["NotificationSender", "Notifier", "alert_staff", "chosen", "wanted_channels"]

log = structlog.get_logger(__name__)


def chosen(event: str, channel: str, prefs: Mapping[tuple[str, str], bool]) -> bool:
    """Whether the user wants `event` on `channel`: their choice, else the event's default."""
    return prefs.get((event, channel), channel in EVENTS[event].default_channels)


def wanted_channels(
    user: CustomerRecord, event: str, prefs: Mapping[tuple[str, str], bool], available: set[str]
) -> list[str]:
    """The channels `event` goes to for `user`: email for account events; else their
    choice per (event, channel), defaulting to the event's channels; SMS only with a phone,
    the bot only with a chat id; never the staff chat, never a staff event."""
    if event in REQUIRED_EVENTS:
        return ["email"] if "email" in available else []
    if event in STAFF_EVENTS:
        return []
    return [
        channel
        for channel in sorted(available - {"chat"})
        if chosen(event, channel, prefs)
        and (channel != "sms" or user.phone)
        and (channel != "telegram" or user.chat_id)
    ]


def _address(user: CustomerRecord, channel: str) -> str:
    if channel == "sms":
        return user.phone or ""
    if channel == "telegram":
        return user.chat_id or ""
    return user.email


class Notifier:
    def __init__(self, store: Store, channels: Mapping[str, Channel]) -> None:
        self.store = store
        self.channels = dict(channels)

    def notify(self, user: CustomerRecord, event: str, context: dict[str, object]) -> list[str]:
        """Queue `event` for `user` on their channels; the new rows' ids."""
        subject, body = render(event, context)
        prefs = self.store.customers.preferences(user.id)
        items = [
            NewNotification(
                user.tenant_id, user.id, event, channel, _address(user, channel), subject, body
            )
            for channel in wanted_channels(user, event, prefs, set(self.channels))
        ]
        return self.store.customers.enqueue(items)

    def notify_tenant(
        self, tenant_id: str, event: str, context: dict[str, object], *, roles: set[str]
    ) -> list[str]:
        """Queue `event` for every enabled, verified user of the tenant with one of `roles`."""
        ids: list[str] = []
        for user in self.store.customers.users(tenant_id):
            if user.role in roles and user.disabled_at is None and user.verified_at is not None:
                ids.extend(self.notify(user, event, context))
        return ids


def alert_staff(
    store: Store,
    channels: Mapping[str, Channel],
    webhook_url: str | None,
    *,
    kind: str,
    title: str,
    detail: str,
    tenant_id: str = "system",
) -> list[str]:
    """Queue a staff alert for the chat webhook (`staff_chat_webhook_url`); nothing when
    it is not configured. Delivered by the sender with retries, like a customer's message."""
    if not webhook_url or "chat" not in channels:
        return []
    subject, body = render("staff_alert", {"kind": kind, "title": title, "detail": detail})
    item = NewNotification(tenant_id, None, "staff_alert", "chat", webhook_url, subject, body)
    return store.customers.enqueue([item])


class NotificationSender:
    """Drains the notifications outbox: `drain_once()` for one pass, `start()` for a loop."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        backoff: Backoff | None = None,
        max_attempts: int = 6,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.backoff = backoff or Backoff(2.0, 600.0, jitter=0.2)
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def drain_once(self, limit: int = 50) -> int:
        """Send what is due now; how many rows were attempted."""
        rows = await asyncio.to_thread(
            self.store.customers.claim_due, limit=limit, lease_s=self.lease_s
        )
        for row in rows:
            await self._attempt(row)
        return len(rows)

    async def _attempt(self, row: NotificationRecord) -> None:
        channel = self.channels.get(row.channel)
        error: str | None = None
        retry_at: float | None = None
        if channel is None:
            error = f"no {row.channel!r} channel is configured"
        else:
            try:
                await channel.send(OutgoingMessage(row.address, row.subject, row.body))
            except PermanentChannelError as exc:
                error = str(exc)
            except ChannelError as exc:
                error = str(exc)
                if row.attempts < self.max_attempts:
                    retry_at = time.time() + self.backoff.delay(row.attempts)
        if error is not None:
            log.warning(
                "notification.failed",
                notification_id=row.id,
                channel=row.channel,
                attempts=row.attempts,
                error=error,
                retry=retry_at is not None,
            )
        await asyncio.to_thread(self.store.customers.finish, row.id, error=error, retry_at=retry_at)

    def poke(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        outage = OutageBackoff(log, "notifications")  # a line per outage, not a traceback a round
        while True:
            try:
                sent = await self.drain_once()
            except Exception as exc:  # noqa: BLE001 - the sender outlives any one round
                await asyncio.sleep(outage.failed(exc))
                continue
            outage.ok()
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                self._wake.clear()
