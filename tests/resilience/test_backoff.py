"""The one backoff: growth, the cap as a hard bound, jitter within its band, bad settings."""

from __future__ import annotations

import random

import pytest

from portwright.resilience import Backoff, keyed_random


def test_ceiling_doubles_from_first_and_stops_at_the_cap() -> None:
    """Without jitter the n-th pause is first·2^(n-1) until the cap, then the cap forever."""
    backoff = Backoff(0.5, 4.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(0) == 0.5  # attempt 0 or below is the first pause, not less


def test_huge_attempt_numbers_stay_at_the_cap_without_overflow() -> None:
    """factor**attempt would overflow a float; the cap answers instead."""
    assert Backoff(1.0, 60.0).delay(10**6) == 60.0
    assert Backoff(1.0, 60.0, factor=10.0).delay(5000) == 60.0


def test_a_factor_of_one_is_a_constant_pause() -> None:
    """factor 1 makes the fixed-interval retry some loops want."""
    assert {Backoff(0.3, 5.0, factor=1.0).delay(n) for n in range(1, 50)} == {0.3}


@pytest.mark.parametrize("jitter", [0.2, 0.5, 1.0])
def test_jitter_only_shortens_within_its_band(jitter: float) -> None:
    """Each pause lies in [(1 - jitter)·ceiling, ceiling]; the cap is never exceeded."""
    rng = random.Random(7)
    backoff = Backoff(1.0, 8.0, jitter=jitter)
    for attempt in range(1, 12):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        for _ in range(200):
            delay = backoff.delay(attempt, rand=rng.random)
            assert (1 - jitter) * ceiling <= delay <= ceiling <= 8.0


def test_jitter_uses_the_injected_random_source_at_both_ends() -> None:
    """rand 0 gives the ceiling, rand near 1 the floor; out-of-range answers are clamped."""
    backoff = Backoff(2.0, 100.0, jitter=0.25)
    assert backoff.delay(3, rand=lambda: 0.0) == 8.0
    assert backoff.delay(3, rand=lambda: 0.999999) == pytest.approx(6.0, abs=1e-4)
    assert backoff.delay(3, rand=lambda: 7.0) == 6.0
    assert backoff.delay(3, rand=lambda: -1.0) == 8.0


def test_keyed_random_is_the_same_for_a_key_and_differs_between_keys() -> None:
    """The orchestrator's replay-stable jitter: one key, one fraction in [0, 1)."""
    first = [keyed_random(f"job-1|{n}")() for n in range(20)]
    assert first == [keyed_random(f"job-1|{n}")() for n in range(20)]
    assert first != [keyed_random(f"job-2|{n}")() for n in range(20)]
    assert all(0.0 <= f < 1.0 for f in first)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"first_s": -1.0, "cap_s": 1.0}, "first_s"),
        ({"first_s": 1.0, "cap_s": float("inf")}, "cap_s"),
        ({"first_s": 1.0, "cap_s": 2.0, "factor": 0.5}, "factor"),
        ({"first_s": 1.0, "cap_s": 2.0, "jitter": 1.5}, "jitter"),
    ],
    ids=["negative-first", "infinite-cap", "shrinking-factor", "jitter-above-one"],
)
def test_bad_settings_are_refused_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    """A backoff that could wait forever or go negative is refused when it is built."""
    with pytest.raises(ValueError, match=f"Backoff.{field}"):
        Backoff(**kwargs)
