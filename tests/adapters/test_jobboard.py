"""The job-board adapter (scenario 4): confident matches filled, unsure ones asked, one submit."""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from portwright.apps.jobboard import (
    Applicant,
    FormField,
    ResumeFile,
    match_field,
)
from portwright.apps.jobboard import demo as _demo_jobboard
from portwright.cli._stack import start_stack
from portwright.intelligence import DifflibMatcher, EmbeddingMatcher
from portwright.sandbox import SandboxWorld, captcha, consulate, jobboard
from portwright.settings import Settings

RESUME = b"%PDF-1.4\n% Ada's resume\n"
STYLE_OPTIONS = (
    ("collaborative", "Collaborative, most of the time"),
    ("independent", "Independent, with regular check-ins"),
    ("flexible", "Flexible: it depends on the team"),
    ("structured", "Structured, with clear direction"),
)


def applicant(email: str = "ada@example.com", **over: Any) -> dict[str, Any]:
    """An applicant who can answer everything except how they like to work."""
    return {
        "name": "Ada Lovelace",
        "email": email,
        "phone": "+44 20 7946 0000",
        "location": "London",
        "resume": {
            "filename": "ada.pdf",
            "content_type": "application/pdf",
            "content_b64": base64.b64encode(RESUME).decode(),
        },
        "years_experience": 9,
        "work_authorised": True,
        "answers": {
            "Describe a time you disagreed with a manager": (
                "I argued for more tests before a launch; we shipped a week later, calmly."
            )
        },
    } | over


def _model(**over: Any) -> Applicant:
    return Applicant.model_validate(applicant(**over))


def test_matching_is_confident_only_when_the_profile_says_so() -> None:
    """Profile fields and prepared answers match; a choice the profile does not decide is unsure,
    and an operator's answer is accepted by its option label as well as its value."""
    person = _model()
    assert match_field(FormField("full_name", "Full name", "text"), person).value == "Ada Lovelace"
    years = match_field(FormField("x", "How many years of relevant experience?", "number"), person)
    assert (years.value, years.confident) == ("9", True)
    yes_no = (("yes", "Yes"), ("no", "No"))
    auth = FormField("a", "Are you authorised to work in the UK?", "choice", yes_no)
    assert match_field(auth, person).value == "yes"
    style = FormField("working_style", "Which best describes how you like to work?", "choice",
                      STYLE_OPTIONS)  # fmt: skip
    assert not match_field(style, person).confident
    by_label = match_field(style, person, {"working_style": "Structured, with clear direction"})
    assert (by_label.value, by_label.confident) == ("structured", True)
    assert not match_field(style, person, {"working_style": "whatever"}).confident
    story = FormField("disagreement", "Describe a time you disagreed with a manager, and what "
                      "happened.", "text")  # fmt: skip
    assert match_field(story, person).confident
    unknown = FormField("q", "What is your favourite colour?", "text")
    assert not match_field(unknown, person).confident


def test_a_paraphrased_answer_is_matched_by_meaning_and_difflib_asks_instead() -> None:
    """A prepared answer in the applicant's own words picks its option through the embedding
    matcher; the difflib baseline is unsure of the same answer and asks a person."""
    style = FormField("working_style", "Which best describes how you like to work?", "choice",
                      STYLE_OPTIONS)  # fmt: skip
    person = _model(answers={"how you like to work": "I like collaborating with colleagues"})
    by_meaning = match_field(style, person, matcher=EmbeddingMatcher())
    assert (by_meaning.value, by_meaning.confident) == ("collaborative", True)
    assert not match_field(style, person, matcher=DifflibMatcher()).confident
    vague = _model(answers={"how you like to work": "I am a vegetarian"})
    assert not match_field(style, vague, matcher=EmbeddingMatcher()).confident


def test_bad_input_names_the_field() -> None:
    """The input model refuses an unusable résumé or email with the field named."""
    with pytest.raises(ValueError, match="content_b64"):
        ResumeFile(filename="a.pdf", content_b64="not base64!")
    with pytest.raises(ValueError, match="email"):
        _model(email="nobody")


@pytest.mark.browser
@pytest.mark.slow
def test_the_demo_scenario_pauses_for_an_operator_and_submits_each_application_once(
    tmp_path: Path, db_url: str
) -> None:
    """On the demo's stack (two tenants, a captcha on every application), two runs submit,
    the third parks at the question its profile does not answer until the scripted operator
    answers through `JobService.decide`, and a resubmission fails as a duplicate: the board's
    ledger holds each application once."""
    specs = [*jobboard.specs(), *captcha.specs({"solve_time_s": 0.05}), *consulate.specs()]
    with SandboxWorld(specs, seed=4) as world:
        world.chaos("jobboard").update({"captcha_rate": 1.0})
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=db_url,
            worker_id=f"jobboard-{secrets.token_hex(3)}",
            heartbeat_interval_s=0.5,
            queue_polling_interval_s=0.05,
            log_json=False,
            master_key=SecretStr("test-master-key-" + "x" * 32),
        )
        stack = start_stack(settings, world=world)
        lines: list[str] = []
        try:
            result = asyncio.run(_demo_jobboard.run(stack, world, lines.append))
        finally:
            stack.stop()
    assert result.ok, "\n".join(result.lines + lines)
    ledger = world.ledger("jobboard")
    assert sorted(e.key for e in ledger.entries("application")) == [
        "2|ada@example.com", "4|alan@example.com", "7|grace@example.com",
    ]  # fmt: skip
    assert all(e.data["captcha"] for e in ledger.entries("application"))
    assert ledger.count("duplicate_application", "2|ada@example.com") == 1
    grace = next(e for e in ledger.entries("application") if e.key.startswith("7|"))
    assert grace.data["answers"]["working_style"] == "flexible"
    assert grace.data["answers"]["years_experience"] == "8"
    assert any("waits for a person" in line for line in lines)
