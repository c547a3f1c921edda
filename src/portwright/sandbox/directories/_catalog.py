"""The master list of sandbox directories: the data file's schema, loader and business key.

`directories.json` beside this module is both the simulator's configuration and
what a generic form adapter reads to fill each directory's form from a
business profile. Everything under a record's `sandbox` key describes how the
simulator misbehaves; an adapter must not read it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DATA_FILE",
    "PROFILE_KEYS",
    "Catalog",
    "DirectoryRecord",
    "FieldMap",
    "FormStep",
    "SandboxBehaviour",
    "business_key",
    "load_catalog",
]

DATA_FILE = Path(__file__).with_name("directories.json")

PROFILE_KEYS: dict[str, str] = {
    "name": "business name",
    "address": "whole address on one line: '{street}, {postcode} {city}, {country}'",
    "address.street": "street and number",
    "address.city": "city",
    "address.postcode": "postal code",
    "address.country": "country",
    "phone": "phone number as the customer wrote it",
    "website": "absolute http(s) URL",
    "category": "free-text business category",
    "hours": "opening hours, free text",
    "logo_url": "absolute URL of the logo image (optional in the profile)",
    "tagline": "one-line tagline (optional in the profile)",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Frozen):
    """One input of a step's form, filled from one profile key."""

    profile: str = Field(description="profile key, see PROFILE_KEYS")
    input: str = Field(description="the form control's name attribute")
    required: bool = Field(description="the directory refuses the step when it is empty")


class FormStep(_Frozen):
    """One page of a directory's submission flow.

    Step 1 is served at the record's `url_path`; each later step is the page
    answered to the previous step's submission. Hidden inputs are posted back
    unchanged.
    """

    form: str = Field(description="CSS selector of the <form>")
    action: str = Field(description="path the form posts to")
    fields: list[FieldMap]
    captcha: bool = Field(description="the step carries div.captcha[data-sitekey]")


class SandboxBehaviour(_Frozen):
    """How the simulator treats this directory (not for adapters)."""

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered 5xx")
    outage: Literal["down", "gone"] | None = Field(
        None, description="down: always 503; gone: always 502 'site gone'"
    )


class DirectoryRecord(_Frozen):
    """One directory site hosted under /d/{slug}/."""

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    category: str
    url_path: str
    steps: list[FormStep] = Field(min_length=1, max_length=2)
    captcha: bool
    success_selector: str
    duplicate_selector: str
    error_selector: str
    sandbox: SandboxBehaviour = SandboxBehaviour()

    def fields(self) -> list[FieldMap]:
        """Every mapped input across all steps, in form order."""
        return [f for step in self.steps for f in step.fields]

    def input_for(self, profile_key: str) -> str | None:
        """The input name that carries `profile_key`, if the directory asks for it."""
        return next((f.input for f in self.fields() if f.profile == profile_key), None)


class Catalog(_Frozen):
    """The whole data file."""

    version: int
    seed: int
    generated_by: str
    profile_keys: dict[str, str]
    directories: list[DirectoryRecord]

    def by_slug(self) -> dict[str, DirectoryRecord]:
        return {d.slug: d for d in self.directories}


@cache
def load_catalog(path: Path = DATA_FILE) -> Catalog:
    """Parse and validate the data file (cached per path)."""
    return Catalog.model_validate_json(path.read_bytes())


def business_key(name: str, phone: str) -> str:
    """The normalised identity of a business: lower-case alphanumeric name, phone digits.

    >>> business_key("Joe's Pizza, Ltd.", "+1 (555) 010-2030")
    'joespizzaltd:15550102030'
    """
    norm_name = re.sub(r"[^a-z0-9]", "", name.casefold())
    digits = re.sub(r"\D", "", phone)
    return f"{norm_name}:{digits}"
