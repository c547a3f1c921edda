"""Channels: where a rendered message leaves. One small seam per provider kind.

    Channel.send(message)   raises ChannelError (transient: retried) or
                            PermanentChannelError (the address is refused: not retried)

`SmtpChannel` speaks SMTP (stdlib smtplib, in a thread); `HttpSmsChannel` posts to an
SMS provider's HTTP API (`{"to", "body"}` JSON, bearer token optional) — the sandbox's
SMS gateway stand-in speaks it, and so does any provider fronted by a small relay.
`BotChannel` sends through a Telegram-style bot API (`POST {api}/bot{token}/sendMessage`
with `{"chat_id", "text"}`); `ChatWebhookChannel` posts a Slack-style incoming-webhook
body (`{"text"}`) to the message's address, a webhook URL (staff alerts).
`MemoryChannel` (in `portwright.testing`) records messages for unit tests.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

import httpx

from portwright.resources.tls import client_context, system_context

__all__ = [
    "BotChannel",
    "Channel",
    "ChannelError",
    "ChatWebhookChannel",
    "HttpSmsChannel",
    "OutgoingMessage",
    "PermanentChannelError",
    "SmtpChannel",
]


class ChannelError(Exception):
    """The message could not be handed over now; try again later."""


class PermanentChannelError(ChannelError):
    """The provider refused the message for good (bad address, rejected content)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    to: str
    subject: str
    body: str


@runtime_checkable
class Channel(Protocol):
    """A way to reach a person: `name` is what preferences and rows call it."""

    name: str

    async def send(self, message: OutgoingMessage) -> None: ...


class SmtpChannel:
    """Email over SMTP. `starttls` upgrades the connection; `username` logs in."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout_s = timeout_s

    def _send(self, message: OutgoingMessage) -> None:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=system_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentChannelError(f"the SMTP server refused {message.to!r}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentChannelError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise ChannelError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"SMTP {self.host}:{self.port}: {exc}") from exc

    async def send(self, message: OutgoingMessage) -> None:
        await asyncio.to_thread(self._send, message)


class HttpSmsChannel:
    """SMS through a provider's HTTP API: POST `url` with `{"to", "body"}`."""

    name = "sms"

    def __init__(
        self, url: str, *, token: str | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self.token = token
        self._client = client

    async def send(self, message: OutgoingMessage) -> None:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"to": message.to, "body": message.body}
        try:
            if self._client is not None:
                response = await self._client.post(self.url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=10.0, verify=client_context()) as client:
                    response = await client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"SMS provider {self.url}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ChannelError(f"SMS provider answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentChannelError(
                f"SMS provider refused {message.to!r}: {response.status_code} {response.text[:200]}"
            )


async def _post(
    client: httpx.AsyncClient | None, url: str, body: dict[str, object], what: str
) -> httpx.Response:
    try:
        if client is not None:
            return await client.post(url, json=body)
        async with httpx.AsyncClient(timeout=10.0, verify=client_context()) as fresh:
            return await fresh.post(url, json=body)
    except httpx.HTTPError as exc:
        raise ChannelError(f"{what}: {type(exc).__name__}") from exc


def _classify(response: httpx.Response, what: str) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        raise ChannelError(f"{what} answered {response.status_code}")
    if response.status_code >= 400:
        raise PermanentChannelError(
            f"{what} refused the message: {response.status_code} {response.text[:200]}"
        )


class BotChannel:
    """A chat bot (Telegram's bot API and its look-alikes): the address is a chat id."""

    name = "telegram"

    def __init__(
        self, api_url: str, token: str, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._client = client

    async def send(self, message: OutgoingMessage) -> None:
        text = f"{message.subject}\n\n{message.body}" if message.subject else message.body
        url = f"{self.api_url}/bot{self.token}/sendMessage"
        body: dict[str, object] = {"chat_id": message.to, "text": text[:4096]}
        response = await _post(self._client, url, body, "the bot API")  # the URL holds the token
        _classify(response, "the bot API")


class ChatWebhookChannel:
    """A Slack-style incoming webhook: the address is the webhook URL (from the settings,
    never from a customer)."""

    name = "chat"

    def __init__(self, *, client: httpx.AsyncClient | None = None) -> None:
        self._client = client

    async def send(self, message: OutgoingMessage) -> None:
        text = f"*{message.subject}*\n{message.body}" if message.subject else message.body
        response = await _post(self._client, message.to, {"text": text}, "the chat webhook")
        _classify(response, "the chat webhook")
