"""The shared web-auth pieces: access tokens' claims and refusals, safe redirects, tokens."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest

from portwright.webauth import AccessTokens, new_token, safe_next, token_hash


def test_access_token_round_trip_and_expiry() -> None:
    """A token says who and which tenant; it is refused once expired."""
    tokens = AccessTokens(secrets.token_bytes(32), ttl_s=60)
    token = tokens.issue(user_id="usr_1", tenant_id="ten_1", role="member", now=1_000.0)
    assert AccessTokens.looks_like(token)
    assert tokens.verify(token) is None  # issued long ago: expired
    fresh = tokens.issue(user_id="usr_1", tenant_id="ten_1", role="member")
    claims = tokens.verify(fresh)
    assert claims is not None
    assert (claims.user_id, claims.tenant_id, claims.role) == ("usr_1", "ten_1", "member")
    assert claims.expires_at <= time.time() + 61


@pytest.mark.parametrize("case", ["audience", "type", "algorithm-none", "missing-tenant"])
def test_access_tokens_with_wrong_claims_are_refused(case: str) -> None:
    """Another audience or token type, an unsigned token, or a token without its tenant is
    not an access token, even when signed with the right key."""
    key = secrets.token_bytes(32)
    now = int(time.time())
    claims = {
        "iss": "portwright",
        "aud": "portwright-api",
        "typ": "access",
        "sub": "usr_1",
        "tid": "ten_1",
        "role": "owner",
        "iat": now,
        "exp": now + 60,
    }
    if case == "audience":
        token = jwt.encode({**claims, "aud": "elsewhere"}, key, algorithm="HS256")
    elif case == "type":
        token = jwt.encode({**claims, "typ": "refresh"}, key, algorithm="HS256")
    elif case == "algorithm-none":
        token = jwt.encode(claims, None, algorithm="none")
    else:
        token = jwt.encode({k: v for k, v in claims.items() if k != "tid"}, key, algorithm="HS256")
    assert AccessTokens(key).verify(token) is None


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AccessTokens(b"short")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/app/jobs/1", "/app/jobs/1"),
        ("https://evil.test/app/", "/app/"),
        ("//evil.test/app/", "/app/"),
        ("/app//evil.test", "/app/"),
        ("/app/\\evil", "/app/"),
        ("/console/", "/app/"),
    ],
    ids=["inside", "absolute", "scheme-relative", "double-slash", "backslash", "outside"],
)
def test_safe_next_keeps_redirects_inside(target: str, expected: str) -> None:
    """After sign-in, only a path inside the portal is followed."""
    assert safe_next(target, "/app") == expected


def test_tokens_are_random_and_stored_as_hashes() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert len(token_hash(a)) == 64
    assert token_hash(a) != a


def test_customer_settings_are_checked() -> None:
    """`public_url` must be http(s); `smtp_url` must be smtp:// or smtp+starttls://; both
    errors name the setting."""
    from pydantic import ValidationError

    from portwright.notifications import SmtpChannel, channels_from
    from portwright.settings import Settings

    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url="ftp://portal.example")
    with pytest.raises(ValueError, match="smtp_url"):
        channels_from(Settings(smtp_url="http://mail.example:25"))
    channels = channels_from(Settings(smtp_url="smtp+starttls://me:p%40ss@mail.example:587"))
    smtp = channels["email"]
    assert isinstance(smtp, SmtpChannel)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.username, smtp.password) == (
        "mail.example",
        587,
        True,
        "me",
        "p@ss",
    )
    assert "sms" not in channels


def test_scoped_tokens_are_for_one_purpose_and_expire_by_the_injected_clock() -> None:
    """A scoped token verifies only for its purpose; an access token signed with the same
    key is not one (nor the reverse); expiry follows the clock the caller passes."""
    from portwright.webauth import ScopedTokens

    key = secrets.token_bytes(32)
    drivers = ScopedTokens(key, "driver", ttl_s=600, max_ttl_s=3600)
    token, expires = drivers.issue(tenant_id="ten_1", subject="d1", epoch=2, now=1_000.0)
    assert expires == 1_600.0
    claims = drivers.verify(token, now=1_599.0)
    assert claims is not None
    assert (claims.tenant_id, claims.subject, claims.epoch) == ("ten_1", "d1", 2)
    assert drivers.verify(token, now=1_600.0) is None  # expired
    assert drivers.verify(token) is None  # and by the wall clock too: issued at 1,000
    other = ScopedTokens(key, "viewer", ttl_s=600, max_ttl_s=3600)
    live, _ = drivers.issue(tenant_id="ten_1", subject="d1", epoch=0)
    assert drivers.verify(live) is not None
    assert other.verify(live) is None  # another purpose
    assert AccessTokens(key).verify(live) is None  # not an API access token
    access = AccessTokens(key).issue(user_id="usr_1", tenant_id="ten_1", role="owner")
    assert drivers.verify(access) is None
    with pytest.raises(ValueError, match="ttl_s"):
        drivers.issue(tenant_id="ten_1", subject="d1", epoch=0, ttl_s=7200)
    with pytest.raises(ValueError, match="purpose"):
        ScopedTokens(key, "access", ttl_s=60, max_ttl_s=60)
    forged = jwt.encode(
        {"iss": "portwright", "aud": "portwright-driver", "typ": "driver", "sub": "d1",
         "tid": "ten_1", "epo": True, "exp": int(time.time()) + 60},
        key,
        algorithm="HS256",
    )  # fmt: skip
    assert drivers.verify(forged) is None  # an epoch must be a number, not a boolean
