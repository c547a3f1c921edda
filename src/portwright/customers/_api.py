"""`POST /v1/auth/token`: a customer user's email and password for a short-lived access
token (a JWT) the API accepts as `Authorization: Bearer …`, beside API keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from portwright.customers._accounts import Accounts
from portwright.gateway.kernel import ERROR_RESPONSES, ApiError
from portwright.webauth import LoginLimiter

__all__ = ["TOKEN_PATH", "token_router"]

TOKEN_PATH = "/v1/auth/token"  # noqa: S105 - a route, not a secret


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=400)]


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int = Field(description="seconds until the token expires")
    tenant_id: str
    user_id: str
    role: str


def token_router(accounts: Accounts, limiter: LoginLimiter) -> APIRouter:
    router = APIRouter(tags=["account"])

    @router.post(
        TOKEN_PATH,
        response_model=TokenAnswer,
        responses=ERROR_RESPONSES,
        summary="Get an access token",
    )
    async def token(body: TokenRequest, request: Request) -> TokenAnswer:
        """A customer user's access token (15 minutes). Wrong credentials are a 401, an
        unverified email a 403; repeated failures from one address or for one email a 429."""
        client = request.client.host if request.client else "unknown"
        keys = (f"ip:{client}", f"email:{body.email.strip().lower()}")
        if limiter.blocked(*keys):
            raise ApiError(
                429, "too_many_auth_failures", "too many failed sign-ins; retry in a few minutes"
            )
        user = await asyncio.to_thread(accounts.authenticate, body.email, body.password)
        if user is None:
            limiter.fail(*keys)
            raise ApiError(401, "unauthorized", "email or password: wrong email or password")
        if user.verified_at is None:
            raise ApiError(
                403, "email_unverified", "email: not verified yet; open the link we emailed you"
            )
        signed = accounts.issue_token(user)
        return TokenAnswer(
            access_token=signed.access_token,
            expires_in=signed.expires_in,
            tenant_id=user.tenant_id,
            user_id=user.id,
            role=user.role,
        )

    return router
