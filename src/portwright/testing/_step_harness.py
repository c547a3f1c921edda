"""A fake step context: unit-test one adapter step without DBOS, a database or a worker.

`FakeStepContext` offers what the worker's step context offers a step (`sc.http`,
`sc.page`, `sc.check`, `sc.secret`, `sc.observe`, `sc.attach`, `sc.remember`/`sc.recall`,
`sc.solve_captcha`, `sc.selectors`, `sc.log`) and records what the step did. `sc.page` and
`sc.check` are the real ones: the same status classification (429 → RateLimitedError,
500-504 and 520+ → TransientError, 403/407 → BlockedError) and the same selector reading.

HTTP goes to a real server (a loopback one in tests) unless `routes` gives canned answers
per URL; then a URL with no answer fails the request naming the URL. What the fake cannot
stand in for (`sc.browser()`, `sc.fetch()`) raises `NotFakedError` saying so.

Unlike a worker, the fake has no SSRF guard, no proxy and no evidence store: it is for
testing what a step does with what it reads, not the runtime around it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from portwright.engines.http import classify_response, translate_exception
from portwright.sdk import ChallengeError, JobError, Page, PermanentError, SelectorMap

if TYPE_CHECKING:
    from playwright.async_api import Page as BrowserPage

    from portwright.engines.ladder import FetchResult

__all__ = ["FakeStepContext", "NotFakedError", "RecordingLogger", "StepOutcome", "StepRecord"]

# What a worker does after a step fails with each error class (orchestrator/_driver.py).
WORKER_ACTIONS = {
    "transient": "retry",  # backoff in RETRY_WAIT, portal degraded, fails after max_attempts
    "rate_limited": "cooldown",  # portal-wide cooldown for Retry-After, then again
    "blocked": "rotate",  # burn and rotate the identity; with none left, an operator
    "challenge": "operator",
    "page_changed": "operator",  # parks in OPERATOR_ACTION_REQUIRED with the HTML
    "unexpected": "operator",  # an exception outside the error tree, with its traceback
    "permanent": "fail",
}


class NotFakedError(NotImplementedError):
    """The fake step context cannot stand in for this part of a real one."""


@dataclass
class RecordingLogger:
    """A `Logger` that keeps every line: `(level, event, fields)`."""

    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def _add(self, level: str, event: str, kw: dict[str, Any]) -> None:
        self.lines.append((level, event, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._add("exception", event, kw)


@dataclass
class StepRecord:
    """What a step did through its context, in order within each kind."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)
    """(method, url, status) of every response, each redirect hop included."""
    secrets: list[str] = field(default_factory=list)
    """Names of the secrets read (never their values)."""
    observations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    attachments: list[tuple[str, bytes | str, str, dict[str, Any]]] = field(default_factory=list)
    """(kind, data, content_type, meta) of each piece of evidence attached."""
    captchas: list[tuple[str, str]] = field(default_factory=list)
    """(sitekey, url) of each captcha the step asked the solver chain for."""
    notes: dict[str, Any] = field(default_factory=dict)
    """What `remember` wrote (seeded by `notes=`, as an earlier run of the job would have)."""
    outcomes: list[StepOutcome] = field(default_factory=list)
    """How each step run through `run_step` ended."""


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended, as a worker would classify it.

    `error_class` is the SDK class's `error_class` ("transient", "rate_limited", "blocked",
    "challenge", "page_changed", "permanent"), or "unexpected" for an exception a worker
    cannot map (a bug in the step); `action` is what the worker does next: "return",
    "retry", "cooldown", "rotate", "operator" (an escalation to staff) or "fail".
    """

    value: Any = None
    error: BaseException | None = None
    error_class: str | None = None
    action: str = "return"


def _canned(routes: Mapping[str, httpx.Response | str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        found = routes.get(url)
        if found is None:
            found = routes.get(str(request.url.copy_with(query=None)))
        if found is None:
            raise httpx.ConnectError(
                f"FakeStepContext: no canned answer for {request.method} {url} "
                f"(routes has: {', '.join(sorted(routes)) or 'nothing'})",
                request=request,
            )
        if isinstance(found, str):
            return httpx.Response(200, text=found, headers={"content-type": "text/html"})
        return httpx.Response(
            found.status_code, headers=found.headers, content=found.content, request=request
        )

    return httpx.MockTransport(answer)


class FakeStepContext:
    """A step context for one step of one job, in memory. Use as an async context manager
    (or call `aclose()`) so the HTTP client closes.

    - `selectors`: the adapter's selector map (a mapping or a `SelectorMap`).
    - `secrets`: name → value, what `PUT /v1/credentials/{name}` would have stored for the
      tenant; reading a missing one raises PermanentError as a worker does.
    - `routes`: canned answers by URL (a body string means 200 text/html, or an
      `httpx.Response`); without it `sc.http` makes real requests (through `transport`,
      if given: e.g. a `Cassette`'s, which records a portal's answers once and replays them).
    - `captcha_answers`: sitekey → answer; without one `solve_captcha` raises ChallengeError
      as a worker with no solver does.
    - `notes`: what `remember` stored in an earlier run of the job (for `recall`).
    - `intake`: form name → what the tenant saved (for `sc.intake`); a missing one is None.
    """

    def __init__(
        self,
        *,
        selectors: Mapping[str, str] | SelectorMap | None = None,
        secrets: Mapping[str, str] | None = None,
        routes: Mapping[str, httpx.Response | str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        captcha_answers: Mapping[str, str] | None = None,
        notes: Mapping[str, Any] | None = None,
        intake: Mapping[str, Mapping[str, Any]] | None = None,
        job_id: str = "job-test",
        tenant_id: str = "tenant-test",
        step: str = "step",
        attempt: int = 1,
    ) -> None:
        if isinstance(selectors, SelectorMap):
            self._selectors = selectors
        else:
            self._selectors = SelectorMap(dict(selectors or {}))
        self._secrets = dict(secrets or {})
        self._intake = {k: dict(v) for k, v in (intake or {}).items()}
        self._routes = dict(routes) if routes is not None else None
        self._transport = transport
        self._captcha = dict(captcha_answers or {})
        self._job_id = job_id
        self._tenant_id = tenant_id
        self._step = step
        self._attempt = attempt
        self._client: httpx.AsyncClient | None = None
        self._log = RecordingLogger()
        self.record = StepRecord(notes=dict(notes or {}))

    # -- identity of the attempt -----------------------------------------------------------

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    @property
    def step(self) -> str:
        return self._step

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def selectors(self) -> SelectorMap:
        return self._selectors

    @property
    def log(self) -> RecordingLogger:
        return self._log

    # -- HTTP ------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """Follows redirects like a worker's client (httpx's default limit, 20 hops)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=_canned(self._routes) if self._routes is not None else self._transport,
                follow_redirects=True,
                trust_env=False,
                timeout=httpx.Timeout(20.0, connect=5.0),
                event_hooks={"response": [self._saw]},
            )
        return self._client

    async def _saw(self, response: httpx.Response) -> None:
        request = response.request
        self.record.requests.append((request.method, str(request.url), response.status_code))

    def check(self, response: httpx.Response) -> httpx.Response:
        classify_response(response)
        return response

    def page(self, response: httpx.Response) -> Page:
        classify_response(response)
        return Page(response.text, self._selectors, url=str(response.url))

    # -- the rest of the step context ------------------------------------------------------

    async def secret(self, name: str) -> str:
        self.record.secrets.append(name)
        try:
            return self._secrets[name]
        except KeyError:
            raise PermanentError(
                f"no credential named {name!r} is stored for this tenant "
                f"(give it to FakeStepContext(secrets={{{name!r}: ...}}))"
            ) from None

    async def observe(self, kind: str, subject: str, value: Mapping[str, Any]) -> None:
        self.record.observations.append((kind, subject, dict(value)))

    async def attach(self, kind: str, data: bytes | str, *, content_type: str, **meta: Any) -> str:
        self.record.attachments.append((kind, data, content_type, dict(meta)))
        return f"evidence-{len(self.record.attachments)}"

    async def solve_captcha(self, *, sitekey: str, url: str) -> str:
        self.record.captchas.append((sitekey, url))
        try:
            return self._captcha[sitekey]
        except KeyError:
            raise ChallengeError(f"captcha on {url} and no solver is configured") from None

    async def remember(self, key: str, value: Any) -> None:
        self.record.notes[key] = value

    async def recall(self, key: str) -> Any:
        return self.record.notes.get(key)

    async def intake(self, form: str) -> Mapping[str, Any] | None:
        return self._intake.get(form)

    async def browser(self, *, hardened: bool = False, profile: str | None = None) -> BrowserPage:
        raise NotFakedError(
            "FakeStepContext has no browser: sc.browser() needs a worker's browser fleet; "
            "test a browser step against a real Chromium with a worker (see tests/engines)"
        )

    async def fetch(self, url: str, **options: Any) -> FetchResult:
        raise NotFakedError(
            f"FakeStepContext cannot sc.fetch({url!r}): the engine ladder needs a worker; "
            "use sc.http in the step under test or run it on a worker"
        )

    async def run_step(
        self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any
    ) -> StepOutcome:
        """Run `fn(self, *args, **kw)` and say how a worker would treat its end: httpx and
        browser exceptions translated onto the error tree as a worker translates them.
        Each outcome is also appended to `record.outcomes`."""
        try:
            value = await fn(self, *args, **kw)
        except Exception as exc:  # noqa: BLE001 - every end of the step is an outcome
            error: JobError | None = exc if isinstance(exc, JobError) else translate_exception(exc)
            error_class = "unexpected" if error is None else error.error_class
            outcome = StepOutcome(
                error=error or exc,
                error_class=error_class,
                action=WORKER_ACTIONS.get(error_class, "operator"),
            )
        else:
            outcome = StepOutcome(value=value)
        self.record.outcomes.append(outcome)
        return outcome

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> FakeStepContext:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
