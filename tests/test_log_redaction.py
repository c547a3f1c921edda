"""The log redaction processor: secrets masked by key at any depth, and by shape anywhere."""

from __future__ import annotations

from pydantic import SecretStr

from portwright.observability import mask_text, redact

KEY = "pw_0123456789ab_" + "Z" * 43


def test_redact_masks_secret_keys_at_any_depth_and_secret_shapes_in_any_text() -> None:
    """Nested `authorization`/`password` keys, SecretStr values, API keys, bearer and basic
    credentials, webhook secrets and URL passwords are masked; plain values are kept."""
    event = {
        "event": f"rejected {KEY}",
        "request": {"headers": {"Authorization": f"Bearer {KEY}", "accept": "json"}},
        "attempts": [{"password": "hunter2"}, f"Basic {'QWxhZGRpbjpvcGVu'}"],
        "value": SecretStr("x"),
        "exception": "Traceback …\nValueError: whsec_c2VjcmV0 at postgresql://u:pa55@db/x",
        "database": "pw_test_1a2b3c4d",
        "count": 3,
    }
    out = redact(None, "info", event)
    assert out["event"] == "rejected ***"
    assert out["request"] == {"headers": {"Authorization": "***", "accept": "json"}}
    assert out["attempts"] == [{"password": "***"}, "***"]
    assert out["value"] == "***"
    assert out["exception"] == "Traceback …\nValueError: *** at postgresql://***@db/x"
    assert out["database"] == "pw_test_1a2b3c4d"  # not key-shaped: kept
    assert out["count"] == 3


def test_mask_text_leaves_ordinary_text_alone() -> None:
    """Words near the patterns (a `pw_` database name, 'Bearer' alone) are not masked."""
    assert mask_text("the bearer; new_pw_value; https://example.test/a@b") == (
        "the bearer; new_pw_value; https://example.test/a@b"
    )


def test_status_and_error_codes_stay_readable_while_one_time_codes_are_masked() -> None:
    """A key ending in `code` is a one-time code unless it names a status, error or exit code."""
    event = {"status_code": 503, "error_code": "unavailable", "code": "123456", "sms_code": "42"}
    out = redact(None, "info", event)
    assert out == {
        "status_code": 503,
        "error_code": "unavailable",
        "code": "***",
        "sms_code": "***",
    }
