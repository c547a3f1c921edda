"""Slot observations stored as runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from portwright.store import SlotFilter, Store


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    opened = Store.open(db_url)
    yield opened
    opened.close()


def test_scans_that_see_the_same_slots_extend_one_run(store: Store) -> None:
    """Repeated "nothing open" scans are one row; a release starts a row counting the new slots."""
    for at in (100.0, 160.0, 220.0):
        store.intel.observe(portal="p", kind="slots", subject="ACC/tourist", value={"open": 0,
                            "ids": [], "at": at})  # fmt: skip
    store.intel.observe(
        portal="p",
        kind="slots",
        subject="ACC/tourist",
        value={"open": 2, "ids": ["a", "b"], "at": 280.0},
    )
    store.intel.observe(
        portal="p",
        kind="slots",
        subject="ACC/tourist",
        value={"open": 2, "ids": ["b", "c"], "at": 340.0},
    )
    runs = store.intel.slots.history("p", "ACC", "tourist")
    assert [(r.open, r.new, r.first_at, r.last_at, r.scans) for r in runs] == [
        (0, 0, 100.0, 220.0, 3),
        (2, 2, 280.0, 280.0, 1),
        (2, 1, 340.0, 340.0, 1),
    ]
    assert runs[2].slot_ids == ["b", "c"]


def test_a_long_silence_starts_a_new_run(store: Store) -> None:
    """More than an hour between scans is a blind gap: the next scan does not extend the run."""
    store.intel.slots.record(portal="p", center="A", visa_type="v", at=0.0, open_slots=0)
    store.intel.slots.record(portal="p", center="A", visa_type="v", at=4000.0, open_slots=0)
    assert [r.scans for r in store.intel.slots.history("p", "A", "v")] == [1, 1]


def test_runs_filter_and_page(store: Store) -> None:
    """Runs are filtered by key and time span and paged newest first without overlap."""
    for i in range(5):
        store.intel.slots.record(portal="p", center="A", visa_type="v", at=i * 10.0,
                                 open_slots=i % 2)  # fmt: skip
    store.intel.slots.record(portal="p", center="B", visa_type="v", at=5.0, open_slots=1)
    store.intel.slots.record(portal="q", center="A", visa_type="v", at=5.0, open_slots=1)
    first = store.intel.slots.runs(SlotFilter("p", center="A"), limit=3)
    rest = store.intel.slots.runs(SlotFilter("p", center="A"), limit=3, before_id=first[-1].id)
    assert [r.first_at for r in first + rest] == [40.0, 30.0, 20.0, 10.0, 0.0]
    spanned = store.intel.slots.runs(SlotFilter("p", since=15.0, until=35.0))
    assert sorted(r.first_at for r in spanned) == [20.0, 30.0]
    assert [k[:2] for k in store.intel.slots.keys("p")] == [("A", "v"), ("B", "v")]


def test_malformed_slot_observations_are_refused(store: Store) -> None:
    """A negative count or a subject without a visa type is an error naming the problem."""
    with pytest.raises(ValueError, match="'open'"):
        store.intel.observe(portal="p", kind="slots", subject="A/v", value={"open": -1})
    with pytest.raises(ValueError, match="center/visa"):
        store.intel.observe(portal="p", kind="slots", subject="A", value={"open": 1})
