"""The messages the customer side sends, one template per event (Jinja, plain text).

Templates take the context the caller passes (`link`, `job_id`, `question`, …); a missing
variable is an error, not a blank.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

__all__ = ["EVENTS", "REQUIRED_EVENTS", "STAFF_EVENTS", "EventSpec", "render"]


@dataclass(frozen=True, slots=True)
class EventSpec:
    title: str
    subject: str
    body: str
    default_channels: tuple[str, ...]


EVENTS: dict[str, EventSpec] = {
    "verify_email": EventSpec(
        "Email verification",
        "Confirm your email for Portwright",
        "Welcome to Portwright.\n\nConfirm your email address by opening this link "
        "(valid for {{ hours }} hours):\n\n{{ link }}\n\nIf you did not sign up, ignore this.",
        ("email",),
    ),
    "password_reset": EventSpec(
        "Password reset",
        "Reset your Portwright password",
        "Someone asked to reset the password of {{ email }}.\n\nChoose a new one here "
        "(valid for {{ minutes }} minutes):\n\n{{ link }}\n\nIf it was not you, ignore this.",
        ("email",),
    ),
    "answer_needed": EventSpec(
        "A job needs your answer",
        "Job {{ job_id }} needs your answer",
        "Job {{ job_id }} is waiting for you: {{ question }}\n\n"
        "Answer before {{ deadline }}: {{ link }}",
        ("email", "sms"),
    ),
    "answer_expired": EventSpec(
        "Your answer did not come in time",
        "Job {{ job_id }}: the time to answer is over",
        "Job {{ job_id }} asked: {{ question }}\n\nNo answer came in time, so it went on "
        "without one.\n\n{{ link }}",
        ("email",),
    ),
    "job_failed": EventSpec(
        "A job failed",
        "Job {{ job_id }} failed",
        "Job {{ job_id }} failed: {{ reason }}\n\n{{ link }}",
        ("email",),
    ),
    "payment_failed": EventSpec(
        "A payment failed",
        "Your Portwright payment of {{ amount }} failed",
        "We could not charge {{ amount }} for your {{ plan }} plan.\n\nYour plan stays "
        "active until {{ grace_until }}; if the payment still fails by then, your organisation "
        "goes back to the {{ free_plan }} plan.\n\n{{ link }}",
        ("email",),
    ),
    "job_succeeded": EventSpec(
        "A job succeeded (a booking confirmed, an application sent)",
        "Job {{ job_id }} finished",
        "Job {{ job_id }} succeeded.{% if summary is defined and summary %}\n\n{{ summary }}"
        "{% endif %}\n\n{{ link }}",
        ("email",),
    ),
    "report_ready": EventSpec(
        "A report is ready",
        "Report ready: order {{ job_id }}",
        "Order {{ job_id }} ({{ adapter }}) is done: {{ summary }}.\n\nDownload its report "
        "in your portal: {{ link }}",
        ("email",),
    ),
    "staff_alert": EventSpec(
        "Staff alert",
        "[{{ kind }}] {{ title }}",
        "{{ detail }}",
        ("chat",),
    ),
}
"""Every event a customer can be notified of, with its template and default channels."""

REQUIRED_EVENTS = frozenset({"verify_email", "password_reset"})
"""Account events: always sent by email, whatever the preferences say."""

STAFF_EVENTS = frozenset({"staff_alert"})
"""Events for the installation's staff (the chat webhook), never for customers."""

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - plain-text messages


def render(event: str, context: dict[str, object]) -> tuple[str, str]:
    """(subject, body) of `event` with `context`; KeyError for an unknown event."""
    spec = EVENTS[event]
    subject = _env.from_string(spec.subject).render(context)
    body = _env.from_string(spec.body).render(context)
    return subject, body
