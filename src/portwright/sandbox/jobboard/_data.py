"""The job board's content: generated jobs, the screening questions, and the field names
each DOM version uses.

Field names are addressed by a canonical key (e.g. `"name"`); `FIELD_NAMES[v]`
gives the `name` attribute version `v` serves, and `field_id(v, key)` the
element id. Version 2 renames fields, changes element ids, the forms' and
buttons' selectors, and turns the work-authorisation radios into a select.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FIELD_NAMES",
    "QUESTIONS",
    "STEPS",
    "Job",
    "Question",
    "field_id",
    "make_jobs",
]

STEPS = ("profile", "resume", "questions", "review")

FIELD_NAMES: dict[int, dict[str, str]] = {
    1: {
        "name": "name",
        "email": "email",
        "phone": "phone",
        "location": "location",
        "resume": "resume",
        "years_experience": "years_experience",
        "uk_work_authorisation": "uk_work_authorisation",
        "working_style": "working_style",
        "disagreement": "disagreement",
        "confirm": "confirm",
    },
    2: {
        "name": "full_name",
        "email": "email_address",
        "phone": "phone_number",
        "location": "city",
        "resume": "cv_file",
        "years_experience": "experience_years",
        "uk_work_authorisation": "right_to_work_uk",
        "working_style": "work_style",
        "disagreement": "manager_disagreement",
        "confirm": "declaration",
    },
}


def field_id(version: int, key: str) -> str:
    """The element id of field `key` in DOM version `version`."""
    name = FIELD_NAMES[version][key]
    return name if version == 1 else f"fld-{name}"


@dataclass(frozen=True, slots=True)
class Question:
    """A screening question: `key` is canonical, `kind` picks the widget."""

    key: str
    label: str
    kind: Literal["number", "yesno", "select", "text"]
    options: tuple[tuple[str, str], ...] = ()
    min_length: int = 0


QUESTIONS: tuple[Question, ...] = (
    Question("years_experience", "How many years of relevant experience do you have?", "number"),
    Question("uk_work_authorisation", "Are you authorised to work in the UK?", "yesno"),
    Question(
        "working_style",
        "Which best describes how you like to work?",
        "select",
        options=(
            ("collaborative", "Collaborative, most of the time"),
            ("independent", "Independent, with regular check-ins"),
            ("flexible", "Flexible: it depends on the team"),
            ("structured", "Structured, with clear direction"),
        ),
    ),
    Question(
        "disagreement",
        "Describe a time you disagreed with a manager, and what happened.",
        "text",
        min_length=30,
    ),
)


@dataclass(frozen=True, slots=True)
class Job:
    """One job listing."""

    id: int
    title: str
    company: str
    location: str
    salary: str
    remote: bool
    description: str


_TITLES = (
    "Backend Engineer",
    "Data Analyst",
    "Product Designer",
    "Site Reliability Engineer",
    "Customer Success Manager",
    "QA Engineer",
    "Technical Writer",
    "Frontend Developer",
    "Operations Coordinator",
    "Security Analyst",
    "Machine Learning Engineer",
    "Recruiter",
)
_COMPANIES = (
    "Acme Widgets",
    "Northwind Logistics",
    "Blue Heron Health",
    "Tidewater Energy",
    "Copperleaf Software",
    "Harbour & Finch",
    "Quill Analytics",
    "Stonebridge Retail",
)
_LOCATIONS = ("London", "Manchester", "Leeds", "Bristol", "Edinburgh", "Cardiff", "Belfast")


def make_jobs(draw: Callable[[str], float], count: int) -> dict[int, Job]:
    """`count` jobs with ids 1..count, deterministic under the seeded `draw`."""
    jobs: dict[int, Job] = {}
    for jid in range(1, count + 1):

        def d(name: str, jid: int = jid) -> float:
            return draw(f"job|{jid}|{name}")

        title = _TITLES[int(d("title") * len(_TITLES))]
        company = _COMPANIES[int(d("company") * len(_COMPANIES))]
        low = 25 + int(d("salary") * 60)
        jobs[jid] = Job(
            id=jid,
            title=title,
            company=company,
            location=_LOCATIONS[int(d("location") * len(_LOCATIONS))],
            salary=f"£{low},000 to £{low + 10 + int(d('band') * 20)},000",
            remote=d("remote") < 0.4,
            description=(
                f"{company} is hiring a {title.lower()} to join a small, friendly team. "
                "You will own your work end to end and help others do the same."
            ),
        )
    return jobs
