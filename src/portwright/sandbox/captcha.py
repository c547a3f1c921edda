"""The captcha every sandbox portal shows, and a solver service speaking 2captcha's HTTP API.

A portal issues a `Challenge`: an id, a sitekey naming that id, and a short
text a person can read off the rendered image. The text is an HMAC of the id
under a secret derived from the world's seed, so the solver service
("captcha-solver") computes the same answer from the sitekey alone, without
talking to the portal, as a real solving service answers for a site key and a
page URL. The image draws its characters in shuffled document order, placed
left to right by coordinates: a person reads it, naive text scraping does not.

Solver endpoints (2captcha's legacy API)::

    /in.php   key, method=userrecaptcha, googlekey=<sitekey>, pageurl, json=1
              -> {"status": 1, "request": "<task id>"}
    /res.php  key, action=get&id=<task id>  -> CAPCHA_NOT_READY | the answer
              key, action=getbalance | action=reportbad&id | action=reportgood&id

A second service, "captcha-tasks" (`task_specs`, `build_task_solver`), speaks the JSON
task API style over the same challenges::

    POST /createTask     {"clientKey", "task": {"type", "websiteURL", "websiteKey"}}
                         -> {"errorId": 0, "taskId": <id>}
    POST /getTaskResult  {"clientKey", "taskId"} -> {"errorId": 0, "status": "processing"}
                         | {"errorId": 0, "status": "ready", "solution": {"gRecaptchaResponse"}}
    POST /getBalance     {"clientKey"} -> {"errorId": 0, "balance": <float>}

Options: api_key ("sandbox-key"), solve_time_s (1.0), fail_rate (0.0),
balance (10.0), price (0.003 per solved challenge). Ledger kind "solve".
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from portwright.sandbox._world import ServiceContext, ServiceSpec

__all__ = [
    "ALPHABET",
    "Challenge",
    "answer_for",
    "build_solver",
    "build_task_solver",
    "captcha_id_of",
    "new_challenge",
    "render_challenge_html",
    "sitekey_for",
    "specs",
    "task_specs",
    "verify",
    "world_secret",
]

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: a person must read it
ANSWER_LENGTH = 5
SITEKEY_PREFIX = "sbx-"
_secret_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One captcha shown on a page: `text` is what a person (or the solver) types back."""

    id: str
    sitekey: str
    text: str


def world_secret(seed: int) -> bytes:
    """The captcha secret of a world: every portal and the solver derive it from the seed."""
    return hashlib.sha256(f"portwright-sandbox|captcha|{seed}".encode()).digest()


def _secret(ctx_or_secret: ServiceContext | bytes) -> bytes:
    if isinstance(ctx_or_secret, bytes):
        return ctx_or_secret
    return world_secret(ctx_or_secret.seed)


def answer_for(secret: bytes, captcha_id: str) -> str:
    """The text that solves challenge `captcha_id` under `secret`."""
    digest = hmac.new(secret, captcha_id.encode(), hashlib.sha256).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:ANSWER_LENGTH])


def sitekey_for(captcha_id: str) -> str:
    return SITEKEY_PREFIX + captcha_id


def captcha_id_of(sitekey: str) -> str | None:
    """The challenge id a sandbox sitekey names, or None for a foreign sitekey."""
    if sitekey.startswith(SITEKEY_PREFIX) and len(sitekey) > len(SITEKEY_PREFIX):
        return sitekey[len(SITEKEY_PREFIX) :]
    return None


def new_challenge(ctx_or_secret: ServiceContext | bytes, *, key: str = "captcha") -> Challenge:
    """Issue a challenge; with a service context its id is reproducible under the world seed."""
    secret = _secret(ctx_or_secret)
    if isinstance(ctx_or_secret, bytes):
        nonce = f"secret|{next(_secret_counter)}"
    else:
        nonce = f"{ctx_or_secret.name}|{key}|{ctx_or_secret.chaos.draw('captcha-id|' + key)!r}"
    captcha_id = hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()[:20]
    return Challenge(captcha_id, sitekey_for(captcha_id), answer_for(secret, captcha_id))


def verify(secret: ServiceContext | bytes, captcha_id: str, answer: str) -> bool:
    """Whether `answer` solves challenge `captcha_id` (case and surrounding space ignored)."""
    if not captcha_id or not answer:
        return False
    expected = answer_for(_secret(secret), captcha_id)
    return hmac.compare_digest(answer.strip().upper().encode(), expected.encode())


def render_challenge_html(challenge: Challenge) -> str:
    """The challenge block a form embeds: `div.captcha[data-sitekey]`, an image and two inputs."""
    shape = hashlib.sha256(challenge.id.encode()).digest()
    glyphs = []
    for i, char in enumerate(challenge.text):
        x = 16 + 24 * i
        y = 30 + shape[i] % 7 - 3
        angle = shape[i + 8] % 31 - 15
        glyphs.append(
            (
                shape[i + 16],
                f'<text x="{x}" y="{y}" transform="rotate({angle} {x} {y})">'
                f"{html.escape(char)}</text>",
            )
        )
    glyphs.sort()  # document order differs from reading order
    noise = "".join(
        f'<line x1="{shape[j] % 140}" y1="{shape[j + 1] % 44}" '
        f'x2="{shape[j + 2] % 140}" y2="{shape[j + 3] % 44}" />'
        for j in range(0, 12, 4)
    )
    return (
        f'<div class="captcha" data-sitekey="{html.escape(challenge.sitekey)}">'
        '<p class="captcha-prompt">Type the characters you see:</p>'
        '<svg class="captcha-image" xmlns="http://www.w3.org/2000/svg" width="140" height="44"'
        ' viewBox="0 0 140 44" role="img">'
        '<rect width="140" height="44" fill="#f4f1e8" />'
        f'<g stroke="#9a8f7a" stroke-width="1">{noise}</g>'
        '<g font-family="monospace" font-size="24" font-weight="bold" fill="#2d2a24">'
        f"{''.join(g for _, g in glyphs)}</g></svg>"
        f'<input type="hidden" name="captcha_id" value="{html.escape(challenge.id)}">'
        '<label>Characters <input type="text" name="captcha_answer" autocomplete="off"'
        " required></label></div>"
    )


# -- the solver service -------------------------------------------------------------------


@dataclass
class _Task:
    id: str
    sitekey: str
    pageurl: str
    ready_at: float
    unsolvable: bool
    delivered: bool = False
    reported: str | None = None


class _Solver:
    """2captcha's legacy API over the world's challenges; state lives in the service options."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.opts = ctx.options
        self.secret = world_secret(ctx.seed)
        self.tasks: dict[str, _Task] = {}
        self.ids = itertools.count(int(ctx.chaos.draw("task-base") * 9e8) + 10**8)

    @staticmethod
    def reply(params: dict[str, str], ok: bool, value: str) -> Response:
        if params.get("json") == "1":
            body: dict[str, Any] = {"status": 1 if ok else 0, "request": value}
            if not ok and value.startswith("ERROR_"):
                body["error_text"] = value
            return JSONResponse(body)
        return PlainTextResponse(f"OK|{value}" if ok and value != "OK_REPORT_RECORDED" else value)

    @staticmethod
    async def params_of(request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    def authorized(self, params: dict[str, str]) -> bool:
        expected = str(self.opts.get("api_key", "sandbox-key"))
        return hmac.compare_digest(params.get("key", "").encode(), expected.encode())

    def charge(self, sign: int) -> None:
        balance = float(self.opts.get("balance", 10.0))
        self.opts["balance"] = round(balance + sign * float(self.opts.get("price", 0.003)), 6)

    async def submit(self, request: Request) -> Response:
        params = await self.params_of(request)
        error = self.refusal(params)
        if error:
            return self.reply(params, False, error)
        return self.reply(params, True, await self.submit_params(params))

    async def submit_params(self, params: dict[str, str]) -> str:
        """Queue an accepted task; its id."""
        task = _Task(
            id=str(next(self.ids)),
            sitekey=params.get("googlekey") or params.get("sitekey") or "",
            pageurl=params["pageurl"],
            ready_at=time.monotonic() + float(self.opts.get("solve_time_s", 1.0)),
            unsolvable=self.ctx.chaos.chance(float(self.opts.get("fail_rate", 0.0)), "unsolvable"),
        )
        self.tasks[task.id] = task
        return task.id

    def refusal(self, params: dict[str, str]) -> str | None:
        if not self.authorized(params):
            return "ERROR_WRONG_USER_KEY"
        if float(self.opts.get("balance", 10.0)) < float(self.opts.get("price", 0.003)):
            return "ERROR_ZERO_BALANCE"
        if params.get("method", "") not in ("userrecaptcha", "hcaptcha", "turnstile"):
            return "ERROR_BAD_PARAMETERS"
        if not (params.get("googlekey") or params.get("sitekey")):
            return "ERROR_GOOGLEKEY"
        if not params.get("pageurl"):
            return "ERROR_PAGEURL"
        return None

    def result(self, params: dict[str, str]) -> Response:
        task = self.tasks.get(params.get("id", ""))
        if task is None:
            return self.reply(params, False, "ERROR_WRONG_CAPTCHA_ID")
        answer = self.answer(task)
        if answer is None:
            return self.reply(params, False, "CAPCHA_NOT_READY")
        if not answer:
            return self.reply(params, False, "ERROR_CAPTCHA_UNSOLVABLE")
        return self.reply(params, True, answer)

    def answer(self, task: _Task) -> str | None:
        """None while the task is not ready; "" when unsolvable; else the answer (the first
        delivery is charged and recorded in the ledger)."""
        if time.monotonic() < task.ready_at:
            return None
        captcha_id = captcha_id_of(task.sitekey)
        solved = not task.unsolvable and captcha_id is not None
        if not task.delivered:
            task.delivered = True
            if solved:
                self.charge(-1)
            outcome = "solved" if solved else "unsolvable"
            self.ctx.ledger.record(
                "solve", task.id, "solver", sitekey=task.sitekey, outcome=outcome
            )
        if not solved or captcha_id is None:
            return ""
        return answer_for(self.secret, captcha_id)

    def report(self, params: dict[str, str], verdict: str) -> Response:
        task = self.tasks.get(params.get("id", ""))
        if task is None:
            return self.reply(params, False, "ERROR_WRONG_CAPTCHA_ID")
        if verdict == "bad" and task.reported is None and task.delivered and not task.unsolvable:
            self.charge(+1)
        task.reported = task.reported or verdict
        return self.reply(params, True, "OK_REPORT_RECORDED")

    async def res(self, request: Request) -> Response:
        params = await self.params_of(request)
        if not self.authorized(params):
            return self.reply(params, False, "ERROR_WRONG_USER_KEY")
        action = params.get("action", "")
        if action == "get":
            return self.result(params)
        if action == "getbalance":
            balance = f"{float(self.opts.get('balance', 10.0)):.5f}".rstrip("0").rstrip(".")
            if params.get("json") == "1":
                return JSONResponse({"status": 1, "request": balance})
            return PlainTextResponse(balance)
        if action in ("reportbad", "reportgood"):
            return self.report(params, action.removeprefix("report"))
        return self.reply(params, False, "ERROR_BAD_ACTION")


def build_solver(ctx: ServiceContext) -> Starlette:
    """The "captcha-solver" service: 2captcha's in.php / res.php over the world's challenges."""
    solver = _Solver(ctx)
    return Starlette(
        routes=[
            Route("/in.php", solver.submit, methods=["GET", "POST"]),
            Route("/res.php", solver.res, methods=["GET", "POST"]),
        ]
    )


def specs(options: Mapping[str, Any] | None = None) -> list[ServiceSpec]:
    """The captcha solver service of a default world; `options` override the defaults."""
    defaults: dict[str, Any] = {
        "api_key": "sandbox-key",
        "solve_time_s": 1.0,
        "fail_rate": 0.0,
        "balance": 10.0,
        "price": 0.003,
    }
    return [ServiceSpec("captcha-solver", build_solver, options=defaults | dict(options or {}))]


# -- the JSON task API stand-in ------------------------------------------------------------

_TASK_TYPES = frozenset(
    {
        "RecaptchaV2TaskProxyless",
        "RecaptchaV2Task",
        "HCaptchaTaskProxyless",
        "TurnstileTaskProxyless",
    }
)


class _TaskApi:
    """createTask / getTaskResult / getBalance over `_Solver`'s tasks and ledger."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.solver = _Solver(ctx)

    @staticmethod
    def error(code: str) -> Response:
        return JSONResponse({"errorId": 1, "errorCode": code, "errorDescription": code})

    async def body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        if not self.solver.authorized({"key": str(body.get("clientKey", ""))}):
            return None
        return body

    async def create(self, request: Request) -> Response:
        body = await self.body(request)
        if body is None:
            return self.error("ERROR_KEY_DOES_NOT_EXIST")
        task = body.get("task")
        if not isinstance(task, dict) or task.get("type") not in _TASK_TYPES:
            return self.error("ERROR_TASK_NOT_SUPPORTED")
        params = {
            "key": str(body["clientKey"]),
            "method": "userrecaptcha",
            "sitekey": str(task.get("websiteKey") or ""),
            "pageurl": str(task.get("websiteURL") or ""),
        }
        refusal = self.solver.refusal(params)
        if refusal:
            return self.error(refusal.replace("ERROR_WRONG_USER_KEY", "ERROR_KEY_DOES_NOT_EXIST"))
        reply = await self.solver.submit_params(params)
        return JSONResponse({"errorId": 0, "taskId": int(reply)})

    async def result(self, request: Request) -> Response:
        body = await self.body(request)
        if body is None:
            return self.error("ERROR_KEY_DOES_NOT_EXIST")
        task = self.solver.tasks.get(str(body.get("taskId", "")))
        if task is None:
            return self.error("ERROR_NO_SUCH_CAPCHA_ID")
        answer = self.solver.answer(task)
        if answer is None:
            return JSONResponse({"errorId": 0, "status": "processing"})
        if answer == "":
            return self.error("ERROR_CAPTCHA_UNSOLVABLE")
        return JSONResponse(
            {"errorId": 0, "status": "ready", "solution": {"gRecaptchaResponse": answer}}
        )

    async def balance(self, request: Request) -> Response:
        if await self.body(request) is None:
            return self.error("ERROR_KEY_DOES_NOT_EXIST")
        return JSONResponse({"errorId": 0, "balance": float(self.solver.opts.get("balance", 10.0))})


def build_task_solver(ctx: ServiceContext) -> Starlette:
    """The "captcha-tasks" service: the JSON createTask / getTaskResult API."""
    api = _TaskApi(ctx)
    return Starlette(
        routes=[
            Route("/createTask", api.create, methods=["POST"]),
            Route("/getTaskResult", api.result, methods=["POST"]),
            Route("/getBalance", api.balance, methods=["POST"]),
        ]
    )


def task_specs(options: Mapping[str, Any] | None = None) -> list[ServiceSpec]:
    """The JSON task API solver service ("captcha-tasks"); `options` as for `specs`."""
    defaults: dict[str, Any] = {
        "api_key": "sandbox-key",
        "solve_time_s": 1.0,
        "fail_rate": 0.0,
        "balance": 10.0,
        "price": 0.003,
    }
    return [ServiceSpec("captcha-tasks", build_task_solver, options=defaults | dict(options or {}))]
