"""The captcha solver chain: providers in fallback order, a breaker each, a budget per tenant.

The last solver is always a person: when every provider failed, is open, or
the tenant's budget is spent, the chain raises ChallengeError and the
orchestrator escalates the job to an operator (DESIGN.md, error classes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from portwright.observability import track_captcha_budget
from portwright.resources._breaker import BreakerConfig, CircuitBreaker
from portwright.resources._captcha import CaptchaSolver
from portwright.sdk import ChallengeError

__all__ = ["CaptchaBudget", "OperatorSolver", "SolveAttempt", "SolverChain"]

log = structlog.get_logger("portwright.captcha")


class OperatorSolver:
    """The last solver: always hands the challenge to a person (raises ChallengeError)."""

    name = "operator"

    async def solve(self, *, sitekey: str, url: str, tenant_id: str | None = None) -> str:
        raise ChallengeError(
            f"captcha on {url} needs a person", sitekey=sitekey, url=url, needs_operator=True
        )


class CaptchaBudget:
    """At most `limit` solves per tenant per `period_s` (overrides per tenant). In memory."""

    def __init__(
        self,
        limit: int,
        *,
        period_s: float = 86_400.0,
        per_tenant: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.period_s = period_s
        self.per_tenant = dict(per_tenant or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, int], int] = {}
        track_captcha_budget(self)  # portwright_captcha_budget_spent / _limit

    def _key(self, tenant: str) -> tuple[str, int]:
        return tenant, int(self._clock() // self.period_s)

    def try_spend(self, tenant: str) -> bool:
        """Reserve one solve for `tenant`; False when the period's budget is spent."""
        cap = self.per_tenant.get(tenant, self.limit)
        with self._lock:
            key = self._key(tenant)
            used = self._spent.get(key, 0)
            if used >= cap:
                return False
            self._spent[key] = used + 1
            return True

    def refund(self, tenant: str) -> None:
        """Give back a reservation no solver used."""
        with self._lock:
            key = self._key(tenant)
            self._spent[key] = max(0, self._spent.get(key, 0) - 1)

    def spent(self, tenant: str) -> int:
        with self._lock:
            return self._spent.get(self._key(tenant), 0)

    def usage(self) -> dict[str, tuple[int, int]]:
        """This period's (spent, limit) for every tenant with an override or a spend."""
        period = int(self._clock() // self.period_s)
        with self._lock:
            spent = {t: n for (t, p), n in self._spent.items() if p == period}
        tenants = set(spent) | set(self.per_tenant)
        return {t: (spent.get(t, 0), self.per_tenant.get(t, self.limit)) for t in tenants}


@dataclass(frozen=True, slots=True)
class SolveAttempt:
    """What one provider did with one challenge (kept for inspection and tests)."""

    provider: str
    ok: bool
    detail: str


class SolverChain:
    """Try `solvers` in order (a mapping name → solver); then the operator, by raising."""

    def __init__(
        self,
        solvers: Mapping[str, CaptchaSolver],
        *,
        budget: CaptchaBudget | None = None,
        breaker: BreakerConfig | None = None,
        breakers: Mapping[str, BreakerConfig] | None = None,
    ) -> None:
        """`breaker` configures every provider's breaker; `breakers` overrides it by name."""
        self.solvers = dict(solvers)
        self.budget = budget
        own = dict(breakers or {})
        self.breakers = {
            name: CircuitBreaker(name, own.get(name, breaker)) for name in self.solvers
        }
        self._lock = threading.Lock()
        self.history: list[SolveAttempt] = []
        # Told (kind, title, detail) when no provider answered because one is down or its
        # circuit is open: the runtime turns it into a staff alert. Must not block.
        self.on_alert: Callable[[str, str, str], None] | None = None

    async def solve(self, *, sitekey: str, url: str, tenant_id: str | None = None) -> str:
        tenant = tenant_id or "-"
        if self.budget is not None and not self.budget.try_spend(tenant):
            raise ChallengeError(
                f"captcha budget of tenant {tenant} is spent; an operator must solve it",
                budget_exhausted=True,
                needs_operator=True,
            )
        problems: list[str] = []
        down: list[str] = []
        for name, solver in self.solvers.items():
            breaker = self.breakers[name]
            if not breaker.allow():
                problems.append(f"{name}: circuit open")
                down.append(name)
                continue
            try:
                answer = await solver.solve(sitekey=sitekey, url=url, tenant_id=tenant_id)
            except ChallengeError as exc:
                provider_down = bool(exc.details.get("provider_down"))
                breaker.record(ok=not provider_down)
                if provider_down:
                    down.append(name)
                problems.append(f"{name}: {exc.message}")
                self._note(SolveAttempt(name, False, exc.message))
                log.warning("captcha solver failed", provider=name, error=exc.message)
                continue
            breaker.record(ok=True)
            self._note(SolveAttempt(name, True, "solved"))
            return answer
        if self.budget is not None:
            self.budget.refund(tenant)
        if down and self.on_alert is not None:
            self.on_alert(
                "captcha_provider_down",
                f"captcha provider down: {', '.join(down)}",
                f"No captcha solver answered on {url}: {'; '.join(problems)}. "
                "Challenges go to operators until a provider is back.",
            )
        raise ChallengeError(
            f"no captcha solver answered ({'; '.join(problems) or 'none configured'});"
            " an operator must solve it",
            sitekey=sitekey,
            url=url,
            needs_operator=True,
        )

    def _note(self, attempt: SolveAttempt) -> None:
        with self._lock:
            self.history.append(attempt)
            del self.history[:-100]
