"""The channels the settings configure."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from portwright.notifications._channels import (
    BotChannel,
    Channel,
    ChatWebhookChannel,
    HttpSmsChannel,
    SmtpChannel,
)
from portwright.settings import Settings

__all__ = ["channels_from"]


def channels_from(settings: Settings) -> dict[str, Channel]:
    """`smtp_url` (smtp://[user:pass@]host:port, smtp+starttls://…) → "email";
    `sms_url` → "sms"; `bot_api_url` + `bot_token` → "telegram";
    `staff_chat_webhook_url` → "chat" (staff alerts). Unset settings leave the channel out."""
    channels: dict[str, Channel] = {}
    if settings.smtp_url:
        url = urlsplit(settings.smtp_url)
        if url.scheme not in ("smtp", "smtp+starttls") or not url.hostname:
            raise ValueError(
                "smtp_url: expected smtp://host:port or smtp+starttls://host:port, "
                f"not {url.scheme}://…"
            )
        channels["email"] = SmtpChannel(
            url.hostname,
            url.port or 25,
            sender=settings.smtp_sender,
            starttls=url.scheme == "smtp+starttls",
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
        )
    if settings.sms_url:
        token = settings.sms_token.get_secret_value() if settings.sms_token else None
        channels["sms"] = HttpSmsChannel(settings.sms_url, token=token)
    if settings.bot_api_url and settings.bot_token:
        channels["telegram"] = BotChannel(
            settings.bot_api_url, settings.bot_token.get_secret_value()
        )
    if settings.staff_chat_webhook_url:
        channels["chat"] = ChatWebhookChannel()
    return channels
