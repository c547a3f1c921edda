"""Captcha solvers behind one interface. The 2captcha-compatible HTTP client is the first.

A solver that cannot help raises ChallengeError, which sends the job to the
next solver or, at the end of the chain, to an operator. A failure of the
service itself (unreachable, 5xx, out of balance, bad key) is marked with
`provider_down=True` in the error's details, so a chain's circuit breaker
counts it; an unsolvable challenge is not the provider's fault. Given an SSRF
`guard` (the runtime passes its own), every call checks the service's address
and connects to the address checked, like every other request a job makes: a
solver on a private address must be on `Settings.url_allowlist`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from portwright.resources.ssrf import GuardedTransport, UrlGuard, UrlRefusedError
from portwright.resources.tls import client_context
from portwright.sdk import ChallengeError

__all__ = ["CaptchaSolver", "HttpSolverClient", "TwoCaptchaSolver"]

# Answers of the 2captcha API that mean the service (or our account) is at fault.
_PROVIDER_ERRORS = frozenset(
    {
        "ERROR_WRONG_USER_KEY",
        "ERROR_KEY_DOES_NOT_EXIST",
        "ERROR_ZERO_BALANCE",
        "ERROR_NO_SLOT_AVAILABLE",
        "ERROR_IP_NOT_ALLOWED",
        "IP_BANNED",
    }
)


class CaptchaSolver(Protocol):
    """Solve a challenge identified by its site key on the page `url`; return the answer.

    `tenant_id` lets a chain charge the right tenant's budget; solvers may ignore it.
    """

    async def solve(self, *, sitekey: str, url: str, tenant_id: str | None = None) -> str: ...


class HttpSolverClient:
    """What the HTTP solver clients share: the service's address and key, polling, the
    SSRF-guarded client, and one translation of transport failures into ChallengeError
    (`provider_down`, naming the solver by host and the error by type: a URL may carry
    the key)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_s: float,
        timeout_s: float,
        guard: UrlGuard | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = urlsplit(self.base_url).netloc or self.base_url
        self._key = api_key
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.guard = guard

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        transport = GuardedTransport(self.guard) if self.guard is not None else None
        try:
            async with httpx.AsyncClient(
                timeout=10.0, trust_env=False, transport=transport, verify=client_context()
            ) as client:
                yield client
        except httpx.HTTPError as exc:
            raise ChallengeError(
                f"solver {self.name} unreachable: {type(exc).__name__}", provider_down=True
            ) from exc
        except UrlRefusedError as exc:
            raise ChallengeError(
                f"solver {self.name} refused by the SSRF guard: {exc.reason}",
                provider_down=True,
                url=exc.url,
            ) from None

    def _no_answer(self) -> ChallengeError:
        return ChallengeError(
            f"solver {self.name} gave no answer within {self.timeout_s:g}s", provider_down=True
        )


class TwoCaptchaSolver(HttpSolverClient):
    """A client for services speaking 2captcha's `in.php` / `res.php` API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float = 60.0,
        method: str = "userrecaptcha",
        guard: UrlGuard | None = None,
    ) -> None:
        super().__init__(base_url, api_key, poll_s=poll_s, timeout_s=timeout_s, guard=guard)
        self.method = method

    async def solve(self, *, sitekey: str, url: str, tenant_id: str | None = None) -> str:
        async with self._session() as client:
            task = await client.post(
                f"{self.base_url}/in.php",
                data={
                    "key": self._key,
                    "method": self.method,
                    "googlekey": sitekey,
                    "pageurl": url,
                    "json": "1",
                },
            )
            body = _json_of(task)
            if body.get("status") != 1:
                _raise_refusal("solver refused the task", str(body.get("request")))
            task_id = str(body["request"])
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                await asyncio.sleep(self.poll_s)
                result = await client.get(
                    f"{self.base_url}/res.php",
                    params={"key": self._key, "action": "get", "id": task_id, "json": "1"},
                )
                answer = _json_of(result)
                if answer.get("status") == 1:
                    return str(answer["request"])
                if answer.get("request") != "CAPCHA_NOT_READY":
                    _raise_refusal("solver failed", str(answer.get("request")))
        raise self._no_answer()

    async def balance(self) -> float:
        """The account's balance (checks reachability and the key); ChallengeError if not."""
        async with self._session() as client:
            answer = _json_of(
                await client.get(
                    f"{self.base_url}/res.php",
                    params={"key": self._key, "action": "getbalance", "json": "1"},
                )
            )
        if answer.get("status") != 1:
            _raise_refusal("solver refused getbalance", str(answer.get("request"))[:64])
        try:
            return float(str(answer.get("request")))
        except ValueError:
            raise ChallengeError(
                f"solver {self.name} gave no balance", provider_down=True
            ) from None


def _json_of(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 500:
        raise ChallengeError(f"solver answered {response.status_code}", provider_down=True)
    try:
        body = response.json()
    except ValueError:
        raise ChallengeError(
            f"solver answered {response.status_code} without JSON", provider_down=True
        ) from None
    if not isinstance(body, dict):
        raise ChallengeError("solver answered with a non-object", provider_down=True)
    return body


def _raise_refusal(what: str, code: str) -> None:
    raise ChallengeError(f"{what}: {code}", provider_down=code in _PROVIDER_ERRORS, code=code)
