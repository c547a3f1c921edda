"""The job board's routes: listings, and the four-page application kept per session.

Flow: `GET /jobs/{id}/apply` starts (or resumes) an application and sets the
`jobboard_app` cookie (path `/jobs/{id}/apply`), then redirects to the current
page among `profile`, `resume`, `questions`, `review`. Each page posts to its
own URL and redirects (303) to the next; errors re-render with 422. The
review page posts to `/jobs/{id}/apply/submit`; success redirects to
`/jobs/{id}/apply/done` (`#application[data-application-id]`). A second
submission for the same job and email is refused with 409
(`.error.duplicate`) unless option `allow_duplicates` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from portwright.sandbox import captcha
from portwright.sandbox._chaos import identity_of_scope
from portwright.sandbox._world import ServiceContext
from portwright.sandbox.jobboard._data import (
    FIELD_NAMES,
    QUESTIONS,
    STEPS,
    Job,
    field_id,
    make_jobs,
)
from portwright.sandbox.jobboard._forms import Checked, check_answers, check_profile, text_value
from portwright.sandbox.jobboard._session import Application, Resume, SessionStore

__all__ = ["COOKIE", "JobBoard", "build_jobboard"]

COOKIE = "jobboard_app"
RESUME_TYPES = (".pdf", ".doc", ".docx", ".txt", ".rtf", ".odt")
_PROFILE_LABELS = (
    ("name", "Full name"),
    ("email", "Email address"),
    ("phone", "Phone number"),
    ("location", "Location"),
)


class JobBoard:
    """The job board of one sandbox world: jobs, sessions, and applications received."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.jobs = make_jobs(ctx.chaos.draw, int(ctx.options.get("jobs", 24)))
        self.sessions = SessionStore(ctx.chaos.draw)
        self.applied: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.env = Environment(
            loader=PackageLoader("portwright.sandbox.jobboard", "templates"),
            autoescape=select_autoescape(default=True),
        )
        self.env.globals.update(names=FIELD_NAMES, field_id=field_id, steps=STEPS)

    # -- helpers -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.ctx.chaos.knobs.dom_version

    def render(self, template: str, status: int = 200, **data: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(v=self.version, **data)
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    def message(self, status: int, element_id: str, heading: str, message: str) -> HTMLResponse:
        return self.render(
            "message.html", status, element_id=element_id, heading=heading, message=message
        )

    def job_of(self, request: Request) -> Job | None:
        return self.jobs.get(int(request.path_params["job_id"]))

    def session_of(self, request: Request, job: Job) -> Application | None:
        return self.sessions.get(request.cookies.get(COOKIE), job.id)

    @staticmethod
    def base(job: Job) -> str:
        return f"/jobs/{job.id}/apply"

    def redirect(self, job: Job, step: str | None = None) -> RedirectResponse:
        url = self.base(job) if step is None else f"{self.base(job)}/{step}"
        return RedirectResponse(url, status_code=303)

    def no_job(self) -> HTMLResponse:
        return self.message(404, "not-found", "Job not found", "This job does not exist.")

    # -- listings ------------------------------------------------------------------------

    async def home(self, _: Request) -> Response:
        return RedirectResponse("/jobs", status_code=303)

    async def list_jobs(self, _: Request) -> Response:
        return self.render("jobs.html", jobs=list(self.jobs.values()))

    async def show_job(self, request: Request) -> Response:
        job = self.job_of(request)
        return self.no_job() if job is None else self.render("job.html", job=job)

    # -- application ---------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        job = self.job_of(request)
        if job is None:
            return self.no_job()
        app = self.session_of(request, job)
        if app is None or app.application_id is not None:
            rate = self.ctx.chaos.knobs.captcha_rate
            app = self.sessions.create(
                job.id, captcha_required=self.ctx.chaos.chance(rate, f"captcha|{job.id}")
            )
        response = self.redirect(job, app.step())
        response.set_cookie(COOKIE, app.token, path=self.base(job), httponly=True, samesite="lax")
        return response

    async def page(self, request: Request) -> Response:
        step = str(request.path_params["step"])
        if step not in STEPS:
            return self.no_job()
        resolved = self.resolve(request, posting=False)
        if isinstance(resolved, Response):
            return resolved
        job, app = resolved
        if not app.may_view(step):
            return self.redirect(job, app.step())
        return self.show_step(job, app, step)

    def show_step(
        self,
        job: Job,
        app: Application,
        step: str,
        checked: Checked | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        errors = checked.errors if checked else {}
        common: dict[str, Any] = {"job": job, "csrf": app.csrf, "errors": errors}
        action = f"{self.base(job)}/{step}"
        if step == "profile":
            values = checked.values if checked else app.profile
            return self.render("profile.html", status, action=action, values=values, **common)
        if step == "resume":
            accept = ",".join(RESUME_TYPES)
            return self.render(
                "resume.html", status, action=action, resume=app.resume, accept=accept, **common
            )
        if step == "questions":
            values = checked.values if checked else app.answers
            return self.render(
                "questions.html",
                status,
                action=action,
                values=values,
                questions=QUESTIONS,
                **common,
            )
        captcha_html = ""
        if app.captcha_required:
            challenge = captcha.new_challenge(self.ctx, key=f"jobboard|{app.token}")
            app.captcha_id = challenge.id
            captcha_html = captcha.render_challenge_html(challenge)
        return self.render(
            "review.html",
            status,
            action=f"{self.base(job)}/submit",
            app=app,
            base=self.base(job),
            questions=QUESTIONS,
            profile_labels=_PROFILE_LABELS,
            captcha_html=captcha_html,
            **common,
        )

    def resolve(self, request: Request, *, posting: bool) -> tuple[Job, Application] | Response:
        """The job and live application of a request, or the response that replaces the page."""
        job = self.job_of(request)
        if job is None:
            return self.no_job()
        app = self.session_of(request, job)
        if app is None:
            return self.redirect(job)
        if app.application_id is not None:
            if posting:
                email = app.profile.get("email", "")
                return self.duplicate(request, job, app.application_id, email)
            return self.redirect(job, "done")
        return job, app

    async def post_step(self, request: Request) -> Response:
        step = str(request.path_params["step"])
        if step not in STEPS[:-1]:
            return self.no_job()
        resolved = self.resolve(request, posting=True)
        if isinstance(resolved, Response):
            return resolved
        job, app = resolved
        if not app.may_view(step):
            return self.redirect(job, app.step())
        async with request.form(max_part_size=1024 * 1024) as form:
            if not self.csrf_ok(form, app):
                return self.bad_csrf()
            if step == "profile":
                checked = check_profile(form, self.version)
                if not checked.errors:
                    app.profile = checked.values
            elif step == "resume":
                checked = await self.read_resume(form, app)
            else:
                checked = check_answers(form, self.version)
                if not checked.errors:
                    app.answers = checked.values
        if checked.errors:
            return self.show_step(job, app, step, checked, status=422)
        return self.redirect(job, app.step())

    async def read_resume(self, form: FormData, app: Application) -> Checked:
        upload = form.get(FIELD_NAMES[self.version]["resume"])
        out = Checked()
        if not isinstance(upload, UploadFile) or not upload.filename:
            if app.resume is None:
                out.errors["resume"] = "Please choose a file to upload."
            return out
        data = await upload.read()
        limit = int(self.ctx.options.get("max_resume_bytes", 5 * 1024 * 1024))
        if not upload.filename.lower().endswith(RESUME_TYPES):
            out.errors["resume"] = "Upload a PDF, Word, RTF, ODT or text file."
        elif not data:
            out.errors["resume"] = "The file is empty."
        elif len(data) > limit:
            out.errors["resume"] = "The file is larger than 5 MB."
        else:
            app.resume = Resume(
                filename=upload.filename,
                content_type=upload.content_type or "application/octet-stream",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        return out

    @staticmethod
    def csrf_ok(form: FormData, app: Application) -> bool:
        return hmac.compare_digest(text_value(form, "csrf_token"), app.csrf)

    def bad_csrf(self) -> HTMLResponse:
        return self.message(
            403, "csrf-error", "Form expired", "Please reload the page and try again."
        )

    async def submit(self, request: Request) -> Response:
        resolved = self.resolve(request, posting=True)
        if isinstance(resolved, Response):
            return resolved
        job, app = resolved
        if app.step() != "review":
            return self.redirect(job, app.step())
        async with request.form() as form:
            if not self.csrf_ok(form, app):
                return self.bad_csrf()
            checked = self.check_review(form, app)
        if checked.errors:
            return self.show_step(job, app, "review", checked, status=422)
        return self.accept(request, job, app)

    def check_review(self, form: FormData, app: Application) -> Checked:
        """The declaration is ticked and, when drawn, the captcha issued to this page solved."""
        checked = Checked()
        if text_value(form, FIELD_NAMES[self.version]["confirm"]) != "yes":
            checked.errors["confirm"] = "Please confirm the information is accurate."
        if app.captcha_required:
            captcha_id = text_value(form, "captcha_id")
            answer = text_value(form, "captcha_answer")
            if captcha_id != app.captcha_id or not captcha.verify(self.ctx, captcha_id, answer):
                checked.errors["captcha"] = "The characters did not match. Please try again."
        return checked

    def accept(self, request: Request, job: Job, app: Application) -> Response:
        email = app.profile["email"]
        key = f"{job.id}|{email.lower()}"
        existing = self.applied.get(key)
        if existing is not None and not self.ctx.options.get("allow_duplicates"):
            return self.duplicate(request, job, existing, email)
        application_id = f"APP-{next(self._ids):05d}"
        self.applied.setdefault(key, application_id)
        app.application_id = application_id
        resume = app.resume
        self.ctx.ledger.record(
            "application",
            key,
            identity_of_scope(request.scope),
            application_id=application_id,
            job_id=job.id,
            profile=dict(app.profile),
            resume=None
            if resume is None
            else {"filename": resume.filename, "size": resume.size, "sha256": resume.sha256},
            answers=dict(app.answers),
            captcha=app.captcha_required,
        )
        return self.redirect(job, "done")

    def duplicate(self, request: Request, job: Job, application_id: str, email: str) -> Response:
        key = f"{job.id}|{email.lower()}"
        self.ctx.ledger.record(
            "duplicate_application",
            key,
            identity_of_scope(request.scope),
            application_id=application_id,
            job_id=job.id,
        )
        return self.render("duplicate.html", 409, job=job, application_id=application_id)

    async def done(self, request: Request) -> Response:
        job = self.job_of(request)
        if job is None:
            return self.no_job()
        app = self.session_of(request, job)
        if app is None or app.application_id is None:
            return self.redirect(job)
        return self.render("done.html", job=job, application_id=app.application_id)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home),
            Route("/jobs", self.list_jobs),
            Route("/jobs/{job_id:int}", self.show_job),
            Route("/jobs/{job_id:int}/apply", self.start),
            Route("/jobs/{job_id:int}/apply/done", self.done),
            Route("/jobs/{job_id:int}/apply/submit", self.submit, methods=["POST"]),
            Route("/jobs/{job_id:int}/apply/{step}", self.page),
            Route("/jobs/{job_id:int}/apply/{step}", self.post_step, methods=["POST"]),
        ]


def build_jobboard(ctx: ServiceContext) -> Starlette:
    """The job board's ASGI app; the `JobBoard` is reachable as `app.state.board`."""
    board = JobBoard(ctx)
    app = Starlette(routes=board.routes())
    app.state.board = board
    return app
