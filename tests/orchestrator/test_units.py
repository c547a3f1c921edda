"""Pure pieces of the orchestrator: backoff and replay folding."""

from __future__ import annotations

import pytest

from portwright.orchestrator import replay_events
from portwright.orchestrator._backoff import backoff_delay
from portwright.store import EventRecord


def test_backoff_grows_is_capped_and_is_the_same_on_replay() -> None:
    """Delays double per attempt within [half, full] of a capped ceiling, the same on replay."""
    delays = [backoff_delay(n, base=1.0, cap=8.0, key="job-1|step") for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays == [backoff_delay(n, base=1.0, cap=8.0, key="job-1|step") for n in range(1, 7)]
    assert delays != [backoff_delay(n, base=1.0, cap=8.0, key="job-2|step") for n in range(1, 7)]


def _event(seq: int, kind: str, src: str | None, dst: str, **meta: object) -> EventRecord:
    return EventRecord(seq, "j", "t", seq, kind, "a", src, dst, "", dict(meta), 0.0)


def test_replay_folds_transitions_and_control_events() -> None:
    """Replaying events yields the last state, the pause flag and the last sequence number."""
    events = [
        _event(1, "transition", None, "INIT"),
        _event(2, "transition", "INIT", "QUEUED"),
        _event(3, "control", "QUEUED", "QUEUED", action="pause"),
        _event(4, "transition", "QUEUED", "RUNNING"),
    ]
    assert replay_events(events) == ("RUNNING", True, 4, 3)


def test_replay_refuses_a_gap_or_a_broken_chain() -> None:
    """A missing event or a transition that does not start where the last ended is an error."""
    with pytest.raises(ValueError, match="gap"):
        replay_events([_event(1, "transition", None, "INIT"), _event(3, "transition", "INIT", "X")])
    with pytest.raises(ValueError, match="starts from"):
        replay_events([_event(1, "transition", None, "INIT"), _event(2, "transition", "Q", "X")])
