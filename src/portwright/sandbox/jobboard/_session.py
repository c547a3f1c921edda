"""Server-side application sessions: one per (browser, job), found by cookie."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from portwright.sandbox.jobboard._data import STEPS

__all__ = ["Application", "Resume", "SessionStore"]


@dataclass(frozen=True, slots=True)
class Resume:
    """The uploaded résumé, as the board keeps it (metadata and a digest, not the bytes)."""

    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass
class Application:
    """One application in progress; `step()` is the first page not yet completed."""

    token: str
    job_id: int
    csrf: str
    captcha_required: bool
    profile: dict[str, str] = field(default_factory=dict)
    resume: Resume | None = None
    answers: dict[str, str] = field(default_factory=dict)
    captcha_id: str | None = None
    application_id: str | None = None

    def step(self) -> str:
        """The page the applicant should be on now."""
        if not self.profile:
            return "profile"
        if self.resume is None:
            return "resume"
        if not self.answers:
            return "questions"
        return "review"

    def may_view(self, step: str) -> bool:
        """Whether `step` is reachable: completed pages and the current one are."""
        return STEPS.index(step) <= STEPS.index(self.step())


class SessionStore:
    """Thread-safe map from cookie token to application; tokens come from seeded draws."""

    def __init__(self, draw: Callable[[str], float]) -> None:
        self._draw = draw
        self._lock = threading.Lock()
        self._sessions: dict[str, Application] = {}

    def _token(self, purpose: str) -> str:
        high = int(self._draw(f"{purpose}|high") * 2**32)
        low = int(self._draw(f"{purpose}|low") * 2**32)
        return f"{high:08x}{low:08x}"

    def create(self, job_id: int, *, captcha_required: bool) -> Application:
        """A fresh application for `job_id` with its own token and CSRF value."""
        with self._lock:
            token = self._token("session")
            while token in self._sessions:
                token = self._token("session")
            app = Application(token, job_id, self._token("csrf"), captcha_required)
            self._sessions[token] = app
            return app

    def get(self, token: str | None, job_id: int) -> Application | None:
        """The application behind `token`, if it exists and belongs to `job_id`."""
        if not token:
            return None
        with self._lock:
            app = self._sessions.get(token)
        return app if app is not None and app.job_id == job_id else None
