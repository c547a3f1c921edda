"""Structured logging: JSON lines (or console) with secrets redacted."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from portwright.settings import Settings

__all__ = ["configure_logging", "redact"]

SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|otp|code$", re.I
)
MASK = "***"


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor masking values whose key looks like a secret."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = MASK
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), format="%(message)s")
