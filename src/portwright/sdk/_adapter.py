"""The adapter contract: what an adapter declares and the contexts its code receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from portwright.sdk._machine import StateMachine
from portwright.sdk._selectors import Page, SelectorMap
from portwright.sdk._tolerance import ShadowTolerance

if TYPE_CHECKING:
    import httpx
    from playwright.async_api import Page as BrowserPage

    from portwright.engines.ladder import FetchResult

__all__ = ["Adapter", "IntakeForm", "Job", "Logger", "RetryPolicy", "StepContext"]

InputT = TypeVar("InputT", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the orchestrator retries one adapter step, by error class."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    degraded_after: int = 3
    max_rotations: int = 3


class Logger(Protocol):
    """The slice of a structlog logger adapters use; every line carries the job's ids."""

    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...
    def exception(self, event: str, **kw: Any) -> Any: ...


class StepContext(Protocol):
    """What a step function receives. Steps do I/O; their results are checkpointed."""

    @property
    def job_id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def http(self) -> httpx.AsyncClient:
        """An HTTP client with this job's cookie session and current identity (proxy)."""
        ...

    @property
    def selectors(self) -> SelectorMap:
        """The adapter's selector map, with the latest operator patch applied."""
        ...

    @property
    def log(self) -> Logger: ...

    def page(self, response: httpx.Response) -> Page:
        """Classify the response (429, 5xx, block page) and read it through the selector map."""
        ...

    def check(self, response: httpx.Response) -> httpx.Response:
        """Raise the error class a response means (rate limit, 5xx, block), else return it."""
        ...

    async def observe(self, kind: str, subject: str, value: Mapping[str, Any]) -> None:
        """Record an observation (e.g. the slots seen by a scan) for the intelligence layer."""
        ...

    async def attach(self, kind: str, data: bytes | str, *, content_type: str, **meta: Any) -> str:
        """Store a piece of evidence for this job; returns its id."""
        ...

    async def solve_captcha(self, *, sitekey: str, url: str) -> str:
        """Ask the solver chain for an answer; ChallengeError (→ operator) if none can."""
        ...

    async def remember(self, key: str, value: Any) -> None:
        """Write a durable note for this job now (not at the step's end): after a crash, a
        re-run of the step can `recall` it, e.g. to know a form was already sent."""
        ...

    async def recall(self, key: str) -> Any:
        """A note written by `remember` in this or an earlier run of the job; None if absent."""
        ...

    async def secret(self, name: str) -> str:
        """A credential the job may use, decrypted only inside this step (never logged)."""
        ...

    async def intake(self, form: str) -> Mapping[str, Any] | None:
        """The job's tenant's saved intake form `form` (what the customer filled in the
        portal's intake page or with `PUT /v1/intake/{form}`), or None if not saved yet."""
        ...

    async def browser(self, *, hardened: bool = False, profile: str | None = None) -> BrowserPage:
        """A Playwright page in this step's isolated context: the job's proxy and fingerprint,
        cookies and storage carried from the job's earlier browser steps (or, with `profile`,
        a persistent profile of that user). After the step, each open page's screenshot, DOM,
        URL and timings are recorded (secrets masked), the step joins the job's trace, and
        the context closes. Playwright errors are translated like any engine's."""
        ...

    async def fetch(self, url: str, **options: Any) -> FetchResult:
        """Fetch through the engine ladder (`portwright.engines.ladder.Ladder.fetch` options:
        engine, wait_for, extract, screenshot, session_id, proxy_tier, country); a banned
        identity is burned and rotated, an exhausted pool raises BlockedError."""
        ...


StepFn = Callable[..., Awaitable[T]]


class Job(Protocol[InputT]):  # type: ignore[misc]
    """What `Adapter.run` receives. Its code must be deterministic: do I/O only in steps."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def input(self) -> InputT: ...
    @property
    def state(self) -> str: ...
    @property
    def log(self) -> Logger: ...

    async def transition(self, to_state: str, reason: str = "", **meta: Any) -> None:
        """Move to `to_state`, writing an audit event in the same transaction."""
        ...

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        """Run `fn(step_context, *args, **kw)` as a checkpointed step under the retry policy."""
        ...

    async def wait_for_input(
        self, name: str, timeout_s: float, *, state: str | None = None, reason: str = ""
    ) -> Any:
        """Wait durably for input `name` (moving to `state` first); InputTimeoutError if none."""
        ...

    async def ask_customer(
        self,
        name: str,
        question: str,
        timeout_s: float,
        *,
        state: str | None = None,
        kind: str = "text",
        fallback: str = "raise",
    ) -> Any:
        """Ask the job's customer (its tenant's users) for input `name`: they are notified
        (email, SMS, as each prefers), see `question` in the portal (`/app/jobs/{id}`, a
        code field when `kind` is "code", Yes and No buttons answering "yes" or "no" when it
        is "yes_no"; the first line is the heading, the rest shown as written below it) and
        answer there or with `POST
        /v1/jobs/{id}/input`; the answer is returned. After `timeout_s` they are told it
        expired, then `fallback` "raise" raises InputTimeoutError (the adapter's own way
        back) and "operator" hands the question to an operator and returns their value."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def spawn(
        self, adapter: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        """Fan out: one child job per (item key, input) of `adapter`, queued in this order.
        Idempotent: after a crash the same children are found, not created again."""
        ...

    async def progress(self) -> Mapping[str, int]:
        """This job's children by status (each item's latest attempt), plus "total"."""
        ...

    async def alert(self, kind: str, reason: str, **details: Any) -> None:
        """Tell staff (an open escalation of `kind`) without stopping the job; once per kind."""
        ...

    async def now(self) -> float:
        """The current time, checkpointed (the same value on replay)."""
        ...


@dataclass(frozen=True, slots=True)
class IntakeForm:
    """A form the customer fills once per tenant (in the portal or over the API) and the
    adapter's jobs read (`sc.intake(name)`): `model` validates it, naming each bad field."""

    name: str
    title: str
    model: type[BaseModel]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Site:
    """The target site one job reaches, for a portal whose jobs reach many sites.

    `host` is the site's identity (host, with the port when not the default): its
    cooldown, breaker and politeness are its own, so one site's 429 slows that site only.
    `own_identity`: the request runs on the tenant's own identity (a sticky session);
    a rate limit it meets is that tenant's, and cools down only that tenant's jobs there.
    """

    host: str
    own_identity: bool = False


class Adapter(Generic[InputT]):
    """Subclass per portal. Declare the class attributes and implement `run`.

    Register explicitly with `registry.register(MyAdapter)` or through the
    `portwright.adapters` entry-point group.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    # A candidate version never becomes the default: it runs only where a rollout names
    # it (canary or shadow), so installing it changes nothing until an operator says so.
    candidate: ClassVar[bool] = False
    # Steps that only read the portal, by the name `job.step` runs them under: a shadow
    # version runs its own function of that name on the same inputs beside the live one
    # (writes refused) and the two outputs are compared (docs/adapters.md).
    read_only_steps: ClassVar[Mapping[str, Callable[..., Awaitable[Any]]]] = {}
    # Per read-only step, differences a shadow comparison tolerates (keys to ignore,
    # numeric tolerance); the live version's setting applies. Default: exact JSON equality.
    shadow_tolerance: ClassVar[Mapping[str, ShadowTolerance]] = {}
    # After this version is rolled back automatically, its jobs parked by the break (page
    # changed, adapter error) are cancelled and started again on the live version: only
    # for adapters whose `run` is safe to start over from the beginning.
    retry_on_rollback: ClassVar[bool] = False
    portal: ClassVar[str | None] = None
    input_model: ClassVar[type[BaseModel]]
    machine: ClassVar[StateMachine]
    selectors: ClassVar[Mapping[str, str]] = {}
    inputs: ClassVar[frozenset[str]] = frozenset()
    # The tenant-wide form this adapter's jobs may wait for (the portal shows it at
    # /app/intake); saving it sends input "intake" to the tenant's unfinished jobs of it.
    intake: ClassVar[IntakeForm | None] = None
    max_concurrency: ClassVar[int] = 4
    retry: ClassVar[RetryPolicy] = RetryPolicy()
    # Batchable: `run` is short work that is safe to repeat (e.g. an idempotent GET) and
    # needs no wait of its own. A batch of such jobs then runs as chunk workflows of
    # `batch_size` items (more, up to 1,000, when that makes no more chunks than the portal
    # runs at once: `max_concurrency // batch_concurrency`), `batch_concurrency` of them
    # fetched at once, their results
    # recorded together; an item that needs a retry, a person or a wait leaves its chunk
    # and goes on as its own job.
    batchable: ClassVar[bool] = False
    batch_size: ClassVar[int] = 100
    batch_concurrency: ClassVar[int] = 8
    # Engine tiers with a queue each (their concurrency caps are settings), so one tier's
    # work never starves another's; `tier_of` picks a job's. Empty: one queue.
    tiers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def portal_name(cls) -> str:
        return cls.portal or cls.name

    def lock_key(self, data: InputT) -> str | None:
        """Jobs with the same lock key never run at the same time (e.g. one per account)."""
        return None

    def site_of(self, data: InputT) -> Site | None:
        """The target site this input reaches, when the portal's jobs reach many sites
        (cooldowns, breaker and politeness are then per site); None: the portal is one."""
        return None

    @classmethod
    def tier_of(cls, stored: Mapping[str, Any]) -> str | None:
        """The engine tier (one of `tiers`) whose queue runs a job with this stored input."""
        return None

    def watch_key(self, data: InputT) -> tuple[str, str] | None:
        """(center, visa type) — or any two-part subject of the portal — whose shared watch
        job hands this job a slot as input "slot", when the job waits for one; None (the
        default) when the job watches nothing (see `portwright.intelligence.WatchService`)."""
        return None

    def batch_item(self, data: InputT) -> bool:
        """Whether this job may run inside a chunk (only asked when `batchable`): an
        adapter can keep some inputs out, e.g. ones that need a browser."""
        return True

    async def probe(self, sc: StepContext, data: InputT) -> Any:
        """A synthetic check of the portal: run read-only steps on a sample input (`data`,
        the portal's probe input) and read the page as a job would, so a changed page
        raises PageChangedError here first. Runs read-only (writes are refused); its result
        is not kept. The default: this adapter has no probe."""
        raise NotImplementedError(f"adapter {self.name!r} declares no probe")

    async def run(self, job: Job[InputT]) -> Mapping[str, Any] | None:
        raise NotImplementedError
