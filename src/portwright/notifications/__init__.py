"""Notifications to customers: templated messages through channels, queued durably in the
store and sent with retries.

    notifier = Notifier(store, {"email": SmtpChannel(...), "sms": HttpSmsChannel(...)})
    notifier.notify(user, "answer_needed", {"job_id": …, "question": …, "link": …, …})
    sender = NotificationSender(store, notifier.channels); sender.start()  # in a loop

`channels_from(settings)` builds the channels the settings configure (`smtp_url`,
`sms_url`). Events and their templates: `EVENTS`. Preferences are per user, per event
and channel (`store.customers.set_preferences`).
"""

from portwright.notifications._channels import (
    Channel,
    ChannelError,
    HttpSmsChannel,
    OutgoingMessage,
    PermanentChannelError,
    SmtpChannel,
)
from portwright.notifications._config import channels_from
from portwright.notifications._notifier import (
    NotificationSender,
    Notifier,
    chosen,
    wanted_channels,
)
from portwright.notifications._templates import EVENTS, REQUIRED_EVENTS, EventSpec, render

__all__ = [
    "EVENTS",
    "REQUIRED_EVENTS",
    "Channel",
    "ChannelError",
    "EventSpec",
    "HttpSmsChannel",
    "NotificationSender",
    "Notifier",
    "OutgoingMessage",
    "PermanentChannelError",
    "SmtpChannel",
    "channels_from",
    "chosen",
    "render",
    "wanted_channels",
]
