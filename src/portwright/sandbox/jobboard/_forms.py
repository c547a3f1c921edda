"""Reading and checking each application page's form, by DOM version.

Every reader takes the submitted form and the DOM version in force, reads
the fields under that version's names (a v1 client posting to a v2 page
gets "required" errors), and returns canonical values and per-field errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from portwright.sandbox.jobboard._data import FIELD_NAMES, QUESTIONS

__all__ = ["Checked", "check_answers", "check_profile", "text_value"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{7,20}$")


@dataclass
class Checked:
    """Canonical values read from a form, and an error message per canonical field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def text_value(form: FormData, name: str) -> str:
    """A text field's stripped value, or "" when missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def check_profile(form: FormData, version: int) -> Checked:
    """Page 1: name, email, phone and location are all required and well formed."""
    names = FIELD_NAMES[version]
    keys = ("name", "email", "phone", "location")
    out = Checked({key: text_value(form, names[key]) for key in keys})
    for key, value in out.values.items():
        if not value:
            out.errors[key] = "This field is required."
        elif len(value) > 200:
            out.errors[key] = "Too long."
    if "email" not in out.errors and not _EMAIL.match(out.values["email"]):
        out.errors["email"] = "Enter a valid email address."
    phone = out.values["phone"]
    if "phone" not in out.errors and (
        not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 7
    ):
        out.errors["phone"] = "Enter a valid phone number."
    return out


def check_answers(form: FormData, version: int) -> Checked:
    """Page 3: every screening question needs a valid answer."""
    names = FIELD_NAMES[version]
    out = Checked()
    for q in QUESTIONS:
        value = text_value(form, names[q.key])
        out.values[q.key] = value
        if not value:
            out.errors[q.key] = "Please answer this question."
        elif q.kind == "number" and (not value.isdigit() or int(value) > 60):
            out.errors[q.key] = "Enter a whole number of years between 0 and 60."
        elif q.kind == "yesno" and value not in ("yes", "no"):
            out.errors[q.key] = "Choose yes or no."
        elif q.kind == "select" and value not in {v for v, _ in q.options}:
            out.errors[q.key] = "Choose one of the options."
        elif len(value) < q.min_length:
            out.errors[q.key] = f"Please write at least {q.min_length} characters."
        elif len(value) > 4000:
            out.errors[q.key] = "Too long."
    return out
