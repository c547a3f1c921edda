"""portwright.testing's sync poll: returns the first truthy value, or fails naming the last."""

from __future__ import annotations

import itertools

import pytest

from portwright.testing import wait_until_sync


def test_wait_until_sync_returns_the_first_truthy_value() -> None:
    """The predicate is polled until it answers something truthy, which is returned."""
    answers = itertools.chain([0, None, ""], itertools.repeat("ready"))
    assert wait_until_sync(lambda: next(answers), timeout=5, every=0.001) == "ready"


def test_wait_until_sync_fails_at_its_deadline_with_the_last_value() -> None:
    """A predicate that never holds ends in an AssertionError quoting its last answer."""
    with pytest.raises(AssertionError, match="last value: 0"):
        wait_until_sync(lambda: 0, timeout=0.05, every=0.01)
