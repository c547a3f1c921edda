"""Captcha solvers behind one interface. The 2captcha-compatible HTTP client is the first.

A solver that cannot help raises ChallengeError, which sends the job to the
next solver or, at the end of the chain, to an operator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httpx

from portwright.sdk import ChallengeError

__all__ = ["CaptchaSolver", "TwoCaptchaSolver"]


class CaptchaSolver(Protocol):
    """Solve a challenge identified by its site key on the page `url`; return the answer."""

    async def solve(self, *, sitekey: str, url: str) -> str: ...


class TwoCaptchaSolver:
    """A client for services speaking 2captcha's `in.php` / `res.php` API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.poll_s = poll_s
        self.timeout_s = timeout_s

    async def solve(self, *, sitekey: str, url: str) -> str:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            try:
                task = await client.post(
                    f"{self.base_url}/in.php",
                    data={
                        "key": self._key,
                        "method": "userrecaptcha",
                        "googlekey": sitekey,
                        "pageurl": url,
                        "json": "1",
                    },
                )
                body = task.json()
                if body.get("status") != 1:
                    raise ChallengeError(f"solver refused the task: {body.get('request')}")
                task_id = str(body["request"])
                deadline = time.monotonic() + self.timeout_s
                while time.monotonic() < deadline:
                    await asyncio.sleep(self.poll_s)
                    result = await client.get(
                        f"{self.base_url}/res.php",
                        params={"key": self._key, "action": "get", "id": task_id, "json": "1"},
                    )
                    answer = result.json()
                    if answer.get("status") == 1:
                        return str(answer["request"])
                    if answer.get("request") != "CAPCHA_NOT_READY":
                        raise ChallengeError(f"solver failed: {answer.get('request')}")
            except (httpx.HTTPError, ValueError) as exc:
                raise ChallengeError(f"solver unreachable: {exc!r}") from exc
        raise ChallengeError(f"solver gave no answer within {self.timeout_s:g}s")
