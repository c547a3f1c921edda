"""State machines: declared transitions, engine edges, statuses."""

from __future__ import annotations

import pytest

from portwright.apps.consulate import BOOKING
from portwright.sdk import IllegalTransitionError, StateMachine, linear_machine


def test_booking_machine_has_the_twenty_states_of_scenario_one() -> None:
    """The consulate booking machine declares exactly scenario 1's twenty states."""
    expected = {
        "INIT", "VALIDATING", "AWAITING_USER_SIGNUP", "QUEUED", "LOGGING_IN", "SCANNING",
        "SLOT_FOUND", "HOLDING", "OTP_REQUIRED", "OTP_SUBMITTED", "PAYMENT_REQUIRED",
        "PAYMENT_PENDING", "CONFIRMING", "CONFIRMED", "OPERATOR_ACTION_REQUIRED", "COOLDOWN",
        "RETRY_WAIT", "FAILED", "CANCELLED", "EXPIRED",
    }  # fmt: skip
    assert BOOKING.states == expected


def test_undeclared_transition_is_refused_and_engine_edges_are_implicit() -> None:
    """A jump the machine does not declare raises; engine states are reachable from any
    live state, and a job comes back from them to any live state."""
    m = BOOKING
    m.check("SCANNING", "SLOT_FOUND")
    with pytest.raises(IllegalTransitionError, match="SCANNING → CONFIRMED"):
        m.check("SCANNING", "CONFIRMED")
    assert m.allows("HOLDING", "OPERATOR_ACTION_REQUIRED")
    assert m.allows("OPERATOR_ACTION_REQUIRED", "HOLDING")
    assert m.allows("COOLDOWN", "SCANNING")
    assert not m.allows("CONFIRMED", "SCANNING"), "terminal states are final"
    assert not m.allows(None, "SCANNING"), "a job starts in the initial state"


def test_status_of_each_state() -> None:
    """Coarse statuses: queued, running, waiting for someone, and the terminal outcomes."""
    m = BOOKING
    assert m.status_of("INIT") == "queued"
    assert m.status_of("SCANNING") == "running"
    assert m.status_of("OTP_REQUIRED") == "waiting"
    assert m.status_of("OPERATOR_ACTION_REQUIRED") == "waiting"
    assert m.status_of("CONFIRMED") == "succeeded"
    assert m.status_of("EXPIRED") == "failed"
    assert m.status_of("CANCELLED") == "cancelled"


def test_malformed_machines_are_rejected_when_declared() -> None:
    """A machine missing the engine's states, or whose success state is not terminal, fails."""
    with pytest.raises(ValueError, match="'OPERATOR_ACTION_REQUIRED' is used but never declared"):
        StateMachine.build(
            "bad",
            initial="INIT",
            transitions={"INIT": ["QUEUED"], "QUEUED": ["DONE"]},
            terminal={"DONE": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"},
            success="DONE",
        )
    engine_states = {"OPERATOR_ACTION_REQUIRED": [], "COOLDOWN": [], "RETRY_WAIT": []}
    with pytest.raises(ValueError, match="must be terminal"):
        StateMachine.build(
            "bad",
            initial="INIT",
            transitions={"INIT": ["QUEUED"], "QUEUED": ["DONE"], "DONE": [], **engine_states},
            terminal={"FAILED": "failed", "CANCELLED": "cancelled"},
            success="DONE",
        )
    linear = linear_machine("ok", ["A", "B"])
    assert linear.allows("A", "B")
    assert not linear.allows("A", "SUCCEEDED")
