"""Matching a form's fields to an applicant's profile, with a confidence.

A field is answered only when the match is confident (its confidence at least
its threshold: `CONFIDENT` for profile facts, the matcher's own for prepared
answers and options); otherwise the adapter asks a person instead of guessing.
Prepared answers are found by their question's wording, and an answer's option
by its meaning, through a `portwright.intelligence.Matcher` (by default
`default_matcher()`: sentence embeddings when installed, else difflib). A field is described
by its label, its kind (`text`, `number`, `choice`) and, for a choice, its
options as (value, label) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from portwright.apps.jobboard._model import Applicant
from portwright.intelligence import Matcher, default_matcher, normalise

__all__ = ["CONFIDENT", "FormField", "Match", "match_field", "match_option"]

CONFIDENT = 0.8


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
    threshold: float = CONFIDENT

    @property
    def confident(self) -> bool:
        return self.value is not None and self.confidence >= self.threshold


_norm = normalise


def match_option(
    answer: str, options: Sequence[tuple[str, str]], matcher: Matcher | None = None
) -> Match:
    """The option an answer means: its value or label exactly, or the one the matcher is sure of."""
    if not options:
        return Match(None, 0.0, "no options")
    m = (matcher or default_matcher()).match(answer, [(label, value) for value, label in options])
    if m.index is not None and m.confident:
        why = "exact option" if m.stage == "exact" else f"closest option ({m.confidence:.2f})"
        return Match(options[m.index][0], m.confidence, why, threshold=m.threshold)
    return Match(None, m.confidence, f"{answer!r} matches no option clearly")


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


def _from_answers(f: FormField, answers: Mapping[str, str], matcher: Matcher) -> Match | None:
    """The applicant's prepared answers, keyed by a question's wording (or part of it)."""
    label = _norm(f.label)
    keys = [(key, answer) for key, answer in answers.items() if _norm(key)]
    if not keys:
        return None
    for key, answer in keys:
        wording = _norm(key)
        if wording in (label, _norm(f.name)):
            return Match(answer, 1.0, "prepared answer")
    for key, answer in keys:
        wording = _norm(key)
        if len(wording.split()) >= 3 and wording in label:
            return Match(answer, 0.9, "prepared answer")
    m = matcher.match(f.label, [key for key, _ in keys])
    if m.index is None:
        return None
    return Match(keys[m.index][1], m.confidence, "prepared answer", threshold=m.threshold)


def match_field(
    f: FormField,
    applicant: Applicant,
    given: Mapping[str, str] | None = None,
    matcher: Matcher | None = None,
) -> Match:
    """The value to put in `f`, with how sure we are (`given`: answers a person gave)."""
    matcher = matcher or default_matcher()
    found: Match | None
    if given and f.name in given:
        found = Match(given[f.name], 1.0, "answered by an operator")
    else:
        found = _profile_value(f, applicant) or _from_answers(f, applicant.answers, matcher)
    if found is None or not found.confident:
        return Match(None, found.confidence if found else 0.0, "nothing in the profile answers it")
    if f.kind == "choice" and found.value is not None:
        option = match_option(found.value, f.options, matcher)
        if option.value is None:
            return Match(None, option.confidence, option.why)
        return Match(option.value, option.confidence, found.why, threshold=option.threshold)
    if f.kind == "number" and found.value is not None and not found.value.strip().isdigit():
        return Match(None, 0.0, f"{found.value!r} is not a whole number")
    return found
