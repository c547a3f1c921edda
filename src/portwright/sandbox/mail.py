"""The sandbox SMTP server: accepts mail on loopback (aiosmtpd) and files every message in
the world's inbox (`portwright.sandbox.inbox`) as channel "email", where tests and people
read it (`GET <inbox>/messages?to=…`, or the inbox's HTML page).

    smtp://127.0.0.1:<port>    what `PORTWRIGHT_SMTP_URL` points at

Chaos: `refuse_rate` (0..1) answers 451 (try again later) to that share of messages, so
senders' retries are exercised. Ledger kind "mail", key = the inbox seq.
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from portwright.sandbox._world import ServiceContext, ServiceSpec
from portwright.sandbox.inbox import send_message

__all__ = ["build_smtp", "specs"]

log = logging.getLogger(__name__)
MAX_BYTES = 1_000_000


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    return str(part.get_content())


class _InboxHandler:
    """aiosmtpd handler: each accepted message goes to the inbox, once per recipient."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.rand = random.Random(ctx.seed)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        refuse = float(self.ctx.options.get("refuse_rate", 0.0))
        if refuse and self.rand.random() < refuse:
            return "451 4.3.0 sandbox: try again later"
        raw = envelope.original_content or b""
        if len(raw) > MAX_BYTES:
            return "552 5.3.4 message too big"
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        subject = str(parsed.get("subject", ""))
        body = _text_of(parsed)
        for rcpt in envelope.rcpt_tos:
            seq = await send_message(self.ctx, to=rcpt, subject=subject, body=body)
            if seq is None:
                return "451 4.3.0 sandbox inbox unavailable"
            self.ctx.ledger.record("mail", str(seq), rcpt, subject=subject)
        return "250 OK"


def build_smtp(ctx: ServiceContext) -> Any:
    """A protocol factory: one aiosmtpd SMTP session per connection."""
    handler = _InboxHandler(ctx)
    return lambda: SMTP(handler, hostname="sandbox.smtp", data_size_limit=MAX_BYTES)


def specs(refuse_rate: float = 0.0) -> list[ServiceSpec]:
    """The SMTP service (needs the inbox service in the same world)."""
    return [
        ServiceSpec(
            "smtp",
            build_smtp,
            kind="protocol",
            scheme="smtp",
            options={"refuse_rate": refuse_rate},
            chaos_wrapped=False,
        )
    ]
