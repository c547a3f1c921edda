"""Structured logging: JSON lines (or console) with secrets redacted."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from portwright.observability._tracing import add_trace_ids, tracing_enabled
from portwright.settings import Settings

__all__ = ["add_ids", "configure_logging", "redact"]

SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|otp|code$", re.I
)
MASK = "***"
SECRET_VALUES = re.compile(r"whsec_[A-Za-z0-9+/=]+|pw_[A-Za-z0-9]+_[A-Za-z0-9_-]+|Bearer\s+\S+")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor masking values whose key looks like a secret."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = MASK
        elif isinstance(event[key], str):
            event[key] = SECRET_VALUES.sub(MASK, event[key])
    return event


def add_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A job's DBOS workflow id is its job id: a line naming one names both."""
    if "job_id" in event and "workflow_id" not in event:
        event["workflow_id"] = event["job_id"]
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer()
    )
    # The current span's trace and span ids, when traces are on (configure_tracing).
    traced = [add_trace_ids] if settings.otel_exporter != "none" or tracing_enabled() else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_ids,
            *traced,
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), format="%(message)s")
