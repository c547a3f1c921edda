"""A captcha client for the JSON task API style: `createTask` then `getTaskResult`.

The second common solver API (after 2captcha's `in.php`/`res.php`): every call is a
JSON POST carrying `clientKey`; an answer has `errorId` 0 or an `errorCode`::

    POST /createTask     {"clientKey", "task": {"type", "websiteURL", "websiteKey"}}
                         -> {"errorId": 0, "taskId": 123}
    POST /getTaskResult  {"clientKey", "taskId"}
                         -> {"errorId": 0, "status": "processing"}
                          | {"errorId": 0, "status": "ready", "solution": {"gRecaptchaResponse"}}
    POST /getBalance     {"clientKey"} -> {"errorId": 0, "balance": 1.5}

Failures are sorted as the 2captcha client sorts them: the service's (unreachable, 5xx,
bad key, no balance, no slot) carry `provider_down=True` for the chain's breaker; an
unsolvable challenge does not. Given an SSRF `guard`, every call is checked and pinned.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from portwright.resources._captcha import HttpSolverClient
from portwright.resources.ssrf import UrlGuard
from portwright.sdk import ChallengeError

__all__ = ["CreateTaskSolver"]

_PROVIDER_ERRORS = frozenset(
    {
        "ERROR_KEY_DOES_NOT_EXIST",
        "ERROR_ZERO_BALANCE",
        "ERROR_NO_SLOT_AVAILABLE",
        "ERROR_IP_NOT_ALLOWED",
        "ERROR_IP_BLOCKED",
        "ERROR_ACCOUNT_SUSPENDED",
        "ERROR_SERVICE_UNAVAILABLE",
    }
)


class CreateTaskSolver(HttpSolverClient):
    """A client for services speaking the JSON `createTask` / `getTaskResult` API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float = 120.0,
        task_type: str = "RecaptchaV2TaskProxyless",
        guard: UrlGuard | None = None,
    ) -> None:
        super().__init__(base_url, api_key, poll_s=poll_s, timeout_s=timeout_s, guard=guard)
        self.task_type = task_type

    async def _call(self, client: httpx.AsyncClient, method: str, **body: Any) -> dict[str, Any]:
        response = await client.post(
            f"{self.base_url}/{method}", json={"clientKey": self._key, **body}
        )
        if response.status_code >= 500:
            raise ChallengeError(
                f"solver {self.name} answered {response.status_code}", provider_down=True
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ChallengeError(
                f"solver {self.name} answered {response.status_code} without a JSON object",
                provider_down=True,
            )
        if answer.get("errorId") not in (0, None):
            code = str(answer.get("errorCode") or "ERROR_UNKNOWN")[:64]
            raise ChallengeError(
                f"solver {self.name} refused {method}: {code}",
                provider_down=code in _PROVIDER_ERRORS,
                code=code,
            )
        return answer

    async def solve(self, *, sitekey: str, url: str, tenant_id: str | None = None) -> str:
        task = {"type": self.task_type, "websiteURL": url, "websiteKey": sitekey}
        async with self._session() as client:
            created = await self._call(client, "createTask", task=task)
            task_id = created.get("taskId")
            if not isinstance(task_id, int | str) or isinstance(task_id, bool):
                raise ChallengeError(f"solver {self.name} gave no task id", provider_down=True)
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                await asyncio.sleep(self.poll_s)
                result = await self._call(client, "getTaskResult", taskId=task_id)
                if result.get("status") == "processing":
                    continue
                solution = result.get("solution")
                if result.get("status") == "ready" and isinstance(solution, dict):
                    token = solution.get("gRecaptchaResponse") or solution.get("token")
                    if isinstance(token, str) and token:
                        return token
                raise ChallengeError(
                    f"solver {self.name} answered without a solution", provider_down=True
                )
        raise self._no_answer()

    async def balance(self) -> float:
        """The account's balance (checks reachability and the key); ChallengeError if not."""
        async with self._session() as client:
            answer = await self._call(client, "getBalance")
        value = answer.get("balance")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ChallengeError(f"solver {self.name} gave no balance", provider_down=True)
        return float(value)
