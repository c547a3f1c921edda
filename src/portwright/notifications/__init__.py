"""Notifications to customers: templated messages through channels, queued durably in the
store and sent with retries.

    notifier = Notifier(store, {"email": SmtpChannel(...), "sms": HttpSmsChannel(...)})
    notifier.notify(user, "answer_needed", {"job_id": …, "question": …, "link": …, …})
    sender = NotificationSender(store, notifier.channels); sender.start()  # in a loop

`channels_from(settings)` builds the channels the settings configure (`smtp_url`,
`sms_url`, `bot_api_url`, `staff_chat_webhook_url`). Events and their templates: `EVENTS`.
Preferences are per user, per event and channel (`store.customers.set_preferences`).
`alert_staff(...)` queues a staff alert for the chat webhook.
"""

from portwright.notifications._channels import (
    BotChannel,
    Channel,
    ChannelError,
    ChatWebhookChannel,
    HttpSmsChannel,
    OutgoingMessage,
    PermanentChannelError,
    SmtpChannel,
)
from portwright.notifications._config import channels_from
from portwright.notifications._notifier import (
    NotificationSender,
    Notifier,
    alert_staff,
    chosen,
    wanted_channels,
)
from portwright.notifications._templates import (
    EVENTS,
    REQUIRED_EVENTS,
    STAFF_EVENTS,
    EventSpec,
    render,
)

__all__ = [
    "EVENTS",
    "REQUIRED_EVENTS",
    "STAFF_EVENTS",
    "BotChannel",
    "Channel",
    "ChannelError",
    "ChatWebhookChannel",
    "EventSpec",
    "HttpSmsChannel",
    "NotificationSender",
    "Notifier",
    "OutgoingMessage",
    "PermanentChannelError",
    "SmtpChannel",
    "alert_staff",
    "channels_from",
    "chosen",
    "render",
    "wanted_channels",
]
