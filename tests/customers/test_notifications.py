"""Notifications: who gets what on which channel (preferences), and the durable outbox —
retries with backoff, permanent refusals, leases — on SQLite and PostgreSQL, with the
in-memory channel and with the real SMTP server refusing, then accepting."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from portwright.notifications import (
    NotificationSender,
    Notifier,
    OutgoingMessage,
    SmtpChannel,
    render,
    wanted_channels,
)
from portwright.resilience import Backoff
from portwright.sandbox import SandboxWorld, inbox, mail
from portwright.store import CustomerRecord, Store
from portwright.testing import MemoryChannel, wait_until_sync
from portwright.webauth import hash_password
from tests.customers._support import run

NOW = Backoff(0.0, 0.0)  # retry at once: the tests drive each attempt


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    try:
        yield opened
    finally:
        opened.close()


def _user(store: Store, *, phone: str | None = None, verified: bool = True) -> CustomerRecord:
    tenant = store.tenants.ensure(f"t-{secrets.token_hex(3)}")
    return store.customers.create_user(
        tenant_id=tenant.id,
        email=f"u-{secrets.token_hex(3)}@example.test",
        password_hash=hash_password("x" * 12),
        role="owner",
        phone=phone,
        verified=verified,
    )


def _ctx(job_id: str = "job_1") -> dict[str, object]:
    return {"job_id": job_id, "question": "Approve?", "deadline": "soon", "link": "http://x/app"}


def test_channels_follow_preferences(store: Store) -> None:
    """Defaults per event; SMS only with a phone; a user's choices win; account mail is
    always sent by email."""
    channels = {"email", "sms"}
    no_phone = _user(store)
    assert wanted_channels(no_phone, "answer_needed", {}, channels) == ["email"]
    phoned = _user(store, phone="+4915123456789")
    assert wanted_channels(phoned, "answer_needed", {}, channels) == ["email", "sms"]
    assert wanted_channels(phoned, "job_failed", {}, channels) == ["email"]
    store.customers.set_preferences(phoned, {("answer_needed", "email"): False})
    prefs = store.customers.preferences(phoned.id)
    assert wanted_channels(phoned, "answer_needed", prefs, channels) == ["sms"]
    off = {("verify_email", "email"): False}
    assert wanted_channels(phoned, "verify_email", off, channels) == ["email"]


def test_notify_queues_rendered_rows_per_channel(store: Store) -> None:
    """`notify` renders the event's template and writes one row per wanted channel."""
    user = _user(store, phone="+4915123456789")
    notifier = Notifier(store, {"email": MemoryChannel("email"), "sms": MemoryChannel("sms")})
    ids = notifier.notify(user, "answer_needed", _ctx("job_42"))
    rows = store.customers.notifications_of(user.tenant_id)
    assert sorted(r.id for r in rows) == sorted(ids)
    by_channel = {r.channel: r for r in rows}
    assert by_channel["sms"].address == "+4915123456789"
    assert by_channel["email"].address == user.email
    subject, body = render("answer_needed", _ctx("job_42"))
    assert by_channel["email"].subject == subject == "Job job_42 needs your answer"
    assert by_channel["email"].body == body
    with pytest.raises(Exception, match="link"):  # a missing variable is an error, not a blank
        render("answer_needed", {"job_id": "j", "question": "q", "deadline": "d"})


def test_transient_failures_are_retried_until_sent(store: Store) -> None:
    """Two refusals, then the message goes: three attempts, sent once, status 'sent'."""
    user = _user(store)
    email = MemoryChannel("email")
    email.fail(2)
    sender = NotificationSender(store, {"email": email}, backoff=NOW)
    (nid,) = Notifier(store, {"email": email}).notify(
        user, "job_failed", {"job_id": "j1", "reason": "r", "link": "l"}
    )
    for _ in range(3):
        run(sender.drain_once())
    (row,) = store.customers.notifications_of(user.tenant_id)
    assert (row.id, row.status, row.attempts) == (nid, "sent", 3)
    assert email.attempts == 3
    assert [m.to for m in email.sent] == [user.email]
    assert run(sender.drain_once()) == 0  # nothing left: never sent twice


def test_permanent_refusals_and_exhausted_retries_fail_for_good(store: Store) -> None:
    """A permanent refusal fails at once; transient ones fail after `max_attempts`."""
    user = _user(store)
    email = MemoryChannel("email")
    email.fail(1, permanent=True)
    email.fail(10)
    notifier = Notifier(store, {"email": email})
    sender = NotificationSender(store, {"email": email}, backoff=NOW, max_attempts=3)
    notifier.notify(user, "job_failed", {"job_id": "a", "reason": "r", "link": "l"})
    run(sender.drain_once())
    notifier.notify(user, "job_failed", {"job_id": "b", "reason": "r", "link": "l"})
    for _ in range(5):
        run(sender.drain_once())
    rows = {r.subject: r for r in store.customers.notifications_of(user.tenant_id)}
    assert rows["Job a failed"].status == "failed"
    assert rows["Job a failed"].attempts == 1
    assert "refused" in (rows["Job a failed"].last_error or "")
    assert rows["Job b failed"].status == "failed"
    assert rows["Job b failed"].attempts == 3
    assert email.sent == []


def test_a_leased_row_goes_to_one_sender(store: Store) -> None:
    """Two senders draining at once: each row is claimed by one of them."""
    user = _user(store)
    notifier = Notifier(store, {"email": MemoryChannel()})
    for i in range(6):
        notifier.notify(user, "job_failed", {"job_id": str(i), "reason": "r", "link": "l"})
    first = store.customers.claim_due(limit=4, lease_s=60)
    second = store.customers.claim_due(limit=10, lease_s=60)
    assert len(first) == 4
    assert len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}
    assert store.customers.claim_due(limit=10, lease_s=60) == []


def test_smtp_refusal_is_retried_through_the_real_server(store: Store) -> None:
    """The sandbox SMTP server answers 451 while told to; the row stays pending with the
    error; once it accepts, the mail lands in the inbox."""
    user = _user(store)
    with SandboxWorld([*inbox.specs(), *mail.specs(refuse_rate=1.0)], seed=3) as world:
        host, port = world.url("smtp").removeprefix("smtp://").split(":")
        smtp = SmtpChannel(host, int(port), sender="Portwright <no-reply@pw.test>")
        sender = NotificationSender(store, {"email": smtp}, backoff=NOW)
        Notifier(store, {"email": smtp}).notify(
            user, "job_succeeded", {"job_id": "j9", "link": "l"}
        )
        run(sender.drain_once())
        (row,) = store.customers.notifications_of(user.tenant_id)
        assert row.status == "pending"
        assert "451" in (row.last_error or "")
        world.context("smtp").options["refuse_rate"] = 0.0
        run(sender.drain_once())
        (row,) = store.customers.notifications_of(user.tenant_id)
        assert row.status == "sent"

        def delivered() -> list[dict[str, object]]:
            got: list[dict[str, object]] = httpx.get(
                world.url("inbox") + "/messages", params={"to": user.email}
            ).json()
            return got

        found = wait_until_sync(delivered, timeout=10)
        assert isinstance(found, list)
        assert found[0]["subject"] == "Job j9 finished"


def test_unknown_channel_fails_the_row_naming_it(store: Store) -> None:
    """A row for a channel this process does not have fails with a clear error."""
    user = _user(store, phone="+4915123456789")
    Notifier(store, {"sms": MemoryChannel("sms")}).notify(user, "answer_needed", _ctx())
    run(NotificationSender(store, {}, backoff=NOW).drain_once())
    (row,) = store.customers.notifications_of(user.tenant_id)
    assert row.status == "failed"
    assert row.last_error == "no 'sms' channel is configured"


def test_memory_channel_records_and_fails_as_scripted() -> None:
    """The public fake: records what it is handed; scripted failures come first."""
    channel = MemoryChannel("email")
    channel.fail(1)
    message = OutgoingMessage("a@b.test", "s", "b")
    with pytest.raises(Exception, match="unavailable"):
        run(channel.send(message))
    run(channel.send(message))
    assert channel.sent == [message]
    assert channel.attempts == 2
