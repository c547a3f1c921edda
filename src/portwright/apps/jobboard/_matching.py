"""Matching a form's fields to an applicant's profile, with a confidence.

A field is answered only when the match is confident (`CONFIDENT` or more);
otherwise the adapter asks a person instead of guessing. A field is described
by its label, its kind (`text`, `number`, `choice`) and, for a choice, its
options as (value, label) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from portwright.apps.jobboard._model import Applicant

__all__ = ["CONFIDENT", "FormField", "Match", "match_field", "match_option"]

CONFIDENT = 0.8
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a page as the adapter reads it."""

    name: str
    label: str
    kind: str  # "text", "number", "choice", "file"
    options: tuple[tuple[str, str], ...] = ()
    required: bool = True

    def as_question(self, *, reason: str) -> dict[str, object]:
        return {
            "field": self.name,
            "label": self.label,
            "kind": self.kind,
            "options": [list(o) for o in self.options],
            "reason": reason,
        }


@dataclass(frozen=True, slots=True)
class Match:
    value: str | None
    confidence: float
    why: str = ""
    alternatives: list[str] = field(default_factory=list)

    @property
    def confident(self) -> bool:
        return self.value is not None and self.confidence >= CONFIDENT


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, _norm(a), _norm(b)).ratio()


def match_option(answer: str, options: Sequence[tuple[str, str]]) -> Match:
    """The option an answer means: its value or label exactly, or one clearly closest label."""
    wanted = _norm(answer)
    for value, label in options:
        if wanted in (_norm(value), _norm(label)):
            return Match(value, 1.0, "exact option")
    scored = sorted(
        ((max(_similar(answer, text), _similar(answer, value)), value) for value, text in options),
        reverse=True,
    )
    if not scored:
        return Match(None, 0.0, "no options")
    best, runner_up = scored[0], scored[1] if len(scored) > 1 else (0.0, "")
    if best[0] >= 0.85 and best[0] - runner_up[0] >= 0.1:
        return Match(best[1], best[0], "closest option")
    return Match(None, best[0], f"{answer!r} matches no option clearly")


def _profile_value(f: FormField, applicant: Applicant) -> Match | None:
    """A profile field recognised by the words of its label."""
    words = set(_norm(f.label).split())
    facts: list[tuple[bool, str | None, float, str]] = [
        ("email" in words, applicant.email, 1.0, "email"),
        (bool(words & {"phone", "telephone"}), applicant.phone, 1.0, "phone"),
        ("name" in words and ("full" in words or len(words) <= 2), applicant.name, 1.0, "name"),
        (bool(words & {"location", "city", "based", "town"}), applicant.location, 1.0, "location"),
        (
            {"years", "experience"} <= words,
            None if applicant.years_experience is None else str(applicant.years_experience),
            0.95,
            "years of experience",
        ),
        (
            bool(words & {"authorised", "authorized", "right"}) and "work" in words,
            None
            if applicant.work_authorised is None
            else "yes"
            if applicant.work_authorised
            else "no",
            0.95,
            "work authorisation",
        ),
    ]
    for applies, value, confidence, why in facts:
        if applies and value is not None:
            return Match(value, confidence, why)
    return None


def _from_answers(f: FormField, answers: Mapping[str, str]) -> Match | None:
    """The applicant's prepared answers, keyed by a question's wording (or part of it)."""
    best: tuple[float, str] | None = None
    label = _norm(f.label)
    for key, answer in answers.items():
        wording = _norm(key)
        if not wording:
            continue
        score = 1.0 if wording == label or wording == _norm(f.name) else _similar(key, f.label)
        if score < 1.0 and len(wording.split()) >= 3 and wording in label:
            score = 0.9
        if best is None or score > best[0]:
            best = (score, answer)
    if best is None:
        return None
    return Match(best[1], best[0], "prepared answer")


def match_field(
    f: FormField, applicant: Applicant, given: Mapping[str, str] | None = None
) -> Match:
    """The value to put in `f`, with how sure we are (`given`: answers a person gave)."""
    found: Match | None
    if given and f.name in given:
        found = Match(given[f.name], 1.0, "answered by an operator")
    else:
        found = _profile_value(f, applicant) or _from_answers(f, applicant.answers)
    if found is None or found.confidence < CONFIDENT:
        return Match(None, found.confidence if found else 0.0, "nothing in the profile answers it")
    if f.kind == "choice" and found.value is not None:
        option = match_option(found.value, f.options)
        if option.value is None:
            return Match(None, option.confidence, option.why)
        return Match(option.value, min(found.confidence, option.confidence), found.why)
    if f.kind == "number" and found.value is not None and not found.value.strip().isdigit():
        return Match(None, 0.0, f"{found.value!r} is not a whole number")
    return found
