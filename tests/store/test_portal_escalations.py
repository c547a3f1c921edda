"""A portal-level escalation resolved by two transactions at once (two probe ticks, two
workers) is resolved once and audited once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from portwright.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


def test_two_resolutions_at_once_audit_one(store: Store) -> None:
    """The second resolution reads the escalation open, then another transaction resolves
    it before its update: its update changes nothing, so it writes no audit row and does
    not claim the escalation (seen in a CI rehearsal as two `escalation.resolve` rows)."""
    raised = store.escalations.raise_portal(
        "site", kind="page_changed", reason="the probe of site found the page changed",
        details={"detail": "selector 'value' matched nothing"}, since=0.0,
    )  # fmt: skip
    assert raised is not None
    escalation_id = raised[0]
    other: list[list[str]] = []
    fired = threading.Event()

    def resolve_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the first UPDATE of the escalation: another transaction resolves it just before
        if fired.is_set() or not statement.lstrip().upper().startswith("UPDATE ESCALATIONS"):
            return
        fired.set()
        worker = threading.Thread(
            target=lambda: other.append(
                store.escalations.resolve_portal(
                    "site", kind="page_changed", actor="probe", reason="the other tick"
                )
            )
        )
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive()

    sa.event.listen(store.engine, "before_cursor_execute", resolve_in_between)
    try:
        mine = store.escalations.resolve_portal(
            "site", kind="page_changed", actor="probe", reason="this tick"
        )
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", resolve_in_between)
    assert fired.is_set()
    assert other == [[escalation_id]]  # the other transaction resolved it
    assert mine == []  # this one changed nothing and says so
    audit = store.audit.search(target_id=escalation_id)
    assert [(a.action, a.reason) for a in audit] == [("escalation.resolve", "the other tick")]
