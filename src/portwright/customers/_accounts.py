"""Customer accounts: signup with email verification, login, password reset, members, and
access tokens for the API.

A signup creates a tenant and its owner (unverified) and emails a verification link; an
unverified user cannot sign in or get tokens. Links carry a random token whose hash is
stored, spent once, and expiring (verification: 48 h; reset: 30 min). A password reset
ends every session of the user. Owners invite members: a member gets a link to choose
their password (which also verifies their email).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from portwright.notifications import Notifier
from portwright.store import CustomerRecord, EmailTakenError, Store
from portwright.webauth import (
    DUMMY_HASH,
    AccessTokens,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)

__all__ = ["ROLES", "AccountError", "Accounts", "SignedIn"]

ROLES = ("member", "owner")
VERIFY_TTL_S = 48 * 3600.0
RESET_TTL_S = 30 * 60.0
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


class AccountError(ValueError):
    """Bad input to an account operation: `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful login: the user, and an access token for the API."""

    user: CustomerRecord
    access_token: str
    expires_in: int


def check_email(email: str) -> str:
    clean = email.strip().lower()
    if not _EMAIL.match(clean):
        raise AccountError("email", "is not an email address")
    return clean


def check_password(password: str) -> str:
    if len(password) < 10:
        raise AccountError("password", "needs at least 10 characters")
    if len(password) > 200:
        raise AccountError("password", "may have at most 200 characters")
    return password


def check_phone(phone: str) -> str | None:
    clean = phone.replace(" ", "").replace("-", "")
    if not clean:
        return None
    if not _PHONE.match(clean):
        raise AccountError("phone", "use the international form, e.g. +4915123456789")
    return clean


class Accounts:
    """The account operations, for the portal's pages and the API's token route."""

    def __init__(
        self, store: Store, notifier: Notifier, tokens: AccessTokens, *, public_url: str
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.tokens = tokens
        self.public_url = public_url.rstrip("/")

    def link(self, path: str) -> str:
        return f"{self.public_url}/app{path}"

    # -- signup and verification ---------------------------------------------------------

    def signup_problems(self, *, organisation: str, email: str, password: str) -> dict[str, str]:
        """Every field of a sign-up that is wrong, by name (empty: all fine)."""
        problems: dict[str, str] = {}
        name = organisation.strip().lower()
        if not _TENANT.match(name):
            problems["organisation"] = (
                "use 3-40 lowercase letters, digits and dashes (not at the ends)"
            )
        elif self.store.accounts.tenant_by_name(name) is not None:
            problems["organisation"] = f"{name!r} is taken; choose another name"
        for field, check, value in (("email", check_email, email),
                                    ("password", check_password, password)):  # fmt: skip
            try:
                check(value)
            except AccountError as exc:
                problems[field] = exc.message
        if "email" not in problems and self.store.customers.user_by_email(email) is not None:
            problems["email"] = "an account with this email exists already"
        return problems

    def signup(self, *, organisation: str, email: str, password: str) -> CustomerRecord:
        """A new tenant named `organisation` and its unverified owner; emails the link.
        AccountError names the first wrong field (`signup_problems` lists them all)."""
        problems = self.signup_problems(organisation=organisation, email=email, password=password)
        if problems:
            field, message = next(iter(problems.items()))
            raise AccountError(field, message)
        name = organisation.strip().lower()
        clean_email = check_email(email)
        tenant = self.store.tenants.ensure(name)
        try:
            user = self.store.customers.create_user(
                tenant_id=tenant.id,
                email=clean_email,
                password_hash=hash_password(password),
                role="owner",
            )
        except EmailTakenError as exc:
            raise AccountError("email", "an account with this email exists already") from exc
        self.send_verification(user)
        return user

    def send_verification(self, user: CustomerRecord) -> None:
        token = new_token()
        self.store.customers.create_token(
            token_hash=token_hash(token), user=user, purpose="verify", ttl_s=VERIFY_TTL_S
        )
        link = self.link(f"/verify?token={quote(token)}")
        self.notifier.notify(
            user, "verify_email", {"link": link, "hours": int(VERIFY_TTL_S // 3600)}
        )

    def verify(self, token: str) -> CustomerRecord | None:
        """Spend a verification token; the now verified user, or None (unknown, used, old)."""
        user = self.store.customers.use_token(token_hash(token), "verify")
        if user is None:
            return None
        if user.verified_at is None:
            self.store.customers.update_user(user.id, verified_at=time.time())
        return self.store.customers.user(user.id)

    # -- login ---------------------------------------------------------------------------

    def authenticate(self, email: str, password: str) -> CustomerRecord | None:
        """The enabled user with this email and password (verified or not), else None.
        Hashes even for an unknown email, so timing tells nothing."""
        found = self.store.customers.user_by_email(email)
        stored = found.password_hash if found and found.disabled_at is None else DUMMY_HASH
        ok = verify_password(password, stored)
        if found is None or not ok or found.disabled_at is not None:
            return None
        return found

    def issue_token(self, user: CustomerRecord) -> SignedIn:
        token = self.tokens.issue(user_id=user.id, tenant_id=user.tenant_id, role=user.role)
        return SignedIn(user, token, int(self.tokens.ttl_s))

    # -- password reset ------------------------------------------------------------------

    def request_reset(self, email: str) -> None:
        """Email a reset link if the account exists (silently nothing otherwise)."""
        user = self.store.customers.user_by_email(email)
        if user is None or user.disabled_at is not None:
            return
        token = new_token()
        self.store.customers.create_token(
            token_hash=token_hash(token), user=user, purpose="reset", ttl_s=RESET_TTL_S
        )
        link = self.link(f"/reset?token={quote(token)}")
        self.notifier.notify(
            user,
            "password_reset",
            {"link": link, "email": user.email, "minutes": int(RESET_TTL_S // 60)},
        )

    def reset(self, token: str, password: str) -> CustomerRecord | None:
        """Set a new password with a reset token; ends the user's sessions. None if the
        token is unknown, spent or expired."""
        check_password(password)
        user = self.store.customers.use_token(token_hash(token), "reset")
        if user is None:
            return None
        values: dict[str, object] = {"password_hash": hash_password(password)}
        if user.verified_at is None:  # the link proves the mailbox too
            values["verified_at"] = time.time()
        self.store.customers.update_user(user.id, **values)
        self.store.customers.close_sessions_of(user.id)
        return self.store.customers.user(user.id)

    # -- members -------------------------------------------------------------------------

    def invite(self, owner: CustomerRecord, *, email: str, role: str) -> CustomerRecord:
        """Add a user to the owner's tenant; they get a link to choose a password."""
        if owner.role != "owner":
            raise AccountError("role", "only an owner can invite")
        if role not in ROLES:
            raise AccountError("role", f"must be one of {', '.join(ROLES)}")
        clean_email = check_email(email)
        try:
            user = self.store.customers.create_user(
                tenant_id=owner.tenant_id,
                email=clean_email,
                password_hash=hash_password(new_token()),
                role=role,
            )
        except EmailTakenError as exc:
            raise AccountError("email", "an account with this email exists already") from exc
        token = new_token()
        self.store.customers.create_token(
            token_hash=token_hash(token), user=user, purpose="reset", ttl_s=VERIFY_TTL_S
        )
        link = self.link(f"/reset?token={quote(token)}")
        self.notifier.notify(
            user,
            "password_reset",
            {"link": link, "email": user.email, "minutes": int(VERIFY_TTL_S // 60)},
        )
        return user

    def set_phone(self, user: CustomerRecord, phone: str) -> CustomerRecord:
        self.store.customers.update_user(user.id, phone=check_phone(phone))
        found = self.store.customers.user(user.id)
        assert found is not None
        return found
