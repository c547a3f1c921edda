"""The job-board adapter's input: where to apply, and the applicant's profile."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

__all__ = ["Applicant", "ApplicationInput", "ResumeFile"]

MAX_RESUME_BYTES = 5 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ResumeFile(BaseModel):
    """The file to upload, base64-encoded."""

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = "application/pdf"
    content_b64: str = Field(description="the file's bytes, base64")

    @field_validator("content_b64")
    @classmethod
    def _decodes(cls, value: str) -> str:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("content_b64: not valid base64") from exc
        if not data:
            raise ValueError("content_b64: the file is empty")
        if len(data) > MAX_RESUME_BYTES:
            raise ValueError(f"content_b64: the file is larger than {MAX_RESUME_BYTES} bytes")
        return value

    def content(self) -> bytes:
        return base64.b64decode(self.content_b64)


class Applicant(BaseModel):
    """Who applies. `answers` holds prepared answers keyed by (part of) a question's wording."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=200)
    phone: str = Field(min_length=7, max_length=40)
    location: str = Field(min_length=1, max_length=200)
    resume: ResumeFile
    years_experience: int | None = Field(None, ge=0, le=60)
    work_authorised: bool | None = Field(None, description="authorised to work where the job is")
    answers: dict[str, str] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"email: {value!r} is not an email address")
        return value


class ApplicationInput(BaseModel):
    board_url: str = Field(description="the job board's base URL")
    job_id: int = Field(ge=1, description="the listing to apply for")
    applicant: Applicant
    live: bool = Field(True, description="publish the browser for the console's live view")
    approval: Literal["none", "customer"] = Field(
        "none",
        description="'customer': ask the customer to approve the application (portal or API "
        "input 'approval', answer 'yes' or 'no') before anything is sent",
    )
    approval_timeout_s: float = Field(
        86_400.0, gt=0, le=30 * 86_400, description="how long to wait for the approval"
    )
