"""The one Retry-After parser: both forms, a clock, and hostile values."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from portwright.resilience import DEFAULT_CAP_S, parse_retry_after

NOW = 1_800_000_000.0  # a fixed clock: 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("7", 7.0), (" 120 ", 120.0), ("1.5", 1.5), ("2.0", 2.0)],
    ids=["zero", "seven", "padded", "fraction", "float-form"],
)
def test_delta_seconds(value: str, expected: float) -> None:
    """Digits (with an optional fraction, as some servers send) are seconds."""
    assert parse_retry_after(value, now=NOW) == expected


def test_http_date_is_seconds_from_the_injected_clock() -> None:
    """An IMF-fixdate 90 s after `now` means 90 s; the wall clock plays no part."""
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), now=NOW) == 90.0


def test_obsolete_date_forms_and_zoneless_dates_are_read_as_utc() -> None:
    """RFC 850 and asctime forms parse too; a date without a zone is taken as UTC."""
    assert parse_retry_after("Friday, 15-Jan-27 08:01:00 GMT", now=NOW) == 60.0
    assert parse_retry_after("Fri Jan 15 08:02:00 2027", now=NOW) == 120.0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:30 -0000", now=NOW) == 30.0


def test_a_date_in_the_past_means_now() -> None:
    """A date already gone is no wait at all, never a negative one."""
    assert parse_retry_after(formatdate(NOW - 3600, usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    ["", "   ", "soon", "-5", "+5", "1e3", "inf", "nan", "0x10", "5 s", "Mon, 99 Foo", "9" * 200],
    ids=["empty", "blank", "word", "negative", "plus", "exponent", "inf", "nan", "hex", "unit",
         "bad-date", "too-long"],
)  # fmt: skip
def test_garbage_and_negative_values_say_nothing(value: str) -> None:
    """Neither form: None, so the caller falls back to its own default."""
    assert parse_retry_after(value, now=NOW) is None


def test_missing_header_says_nothing() -> None:
    assert parse_retry_after(None, now=NOW) is None


def test_huge_values_are_capped() -> None:
    """A huge delta or a far-future date waits at most the cap (an hour unless told)."""
    assert parse_retry_after("99999999999999999999", now=NOW) == DEFAULT_CAP_S
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) == DEFAULT_CAP_S
    assert parse_retry_after("600", now=NOW, cap_s=60.0) == 60.0
