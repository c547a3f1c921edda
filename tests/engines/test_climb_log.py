"""A rung attempt is logged at debug level only, and always noted on the climb: with a
structlog level that drops debug lines the line is not built at all (`Climb.note`)."""

from __future__ import annotations

import logging
import time

import pytest
import structlog

from portwright.engines.ladder import Session
from portwright.engines.ladder._climb import Climb
from portwright.engines.ladder._http import FetchRequest
from portwright.engines.ladder._rungs import DEFAULT_RUNGS


@pytest.mark.parametrize(
    ("wrapper", "lines"),
    [
        (structlog.make_filtering_bound_logger(logging.INFO), 0),
        (structlog.make_filtering_bound_logger(logging.WARNING), 0),
        (structlog.make_filtering_bound_logger(logging.DEBUG), 1),
        (structlog.make_filtering_bound_logger(logging.NOTSET), 1),
        (structlog.BoundLogger, 1),  # a wrapper class that filters nothing
    ],
)
def test_a_rung_attempt_is_logged_at_debug_and_always_noted(wrapper: type, lines: int) -> None:
    climb = Climb(
        site="https://shop.test",
        request=FetchRequest("https://shop.test/p/1"),
        session=Session(None),
        sticky=None,
    )
    structlog.configure(wrapper_class=wrapper)
    try:
        with structlog.testing.capture_logs() as logs:
            climb.note(DEFAULT_RUNGS[0], None, "blocked", "403 from the edge", time.monotonic())
    finally:
        structlog.reset_defaults()
    attempts = [line for line in logs if line["event"] == "rung attempt"]
    assert len(attempts) == lines
    if lines:
        assert attempts[0]["rung"] == "http"
        assert attempts[0]["outcome"] == "blocked"
        assert attempts[0]["site"] == "https://shop.test"
    assert [(a.rung, a.outcome, a.detail) for a in climb.attempts] == [
        ("http", "blocked", "403 from the edge")
    ]
