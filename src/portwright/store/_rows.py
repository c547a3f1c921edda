"""Mapping SQLAlchemy rows to records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa

__all__ = ["to_record", "to_records"]

R = TypeVar("R")

# (record class, the row's column names) → (field, column position) pairs: worked out once
# per query shape, since records are built for every row read (hundreds a second).
_PLANS: dict[tuple[type[Any], tuple[str, ...]], tuple[tuple[str, int], ...]] = {}


def to_record(cls: type[R], row: sa.Row[Any]) -> R:
    """Build a record dataclass from a row whose column names match its fields."""
    plan = _plan(cls, row._fields)
    return cls(**{name: row[i] for name, i in plan})


def to_records(cls: type[R], rows: Iterable[sa.Row[Any]]) -> list[R]:
    """`to_record` for rows of one result: its column names are read once (a row's
    `_fields` builds them anew each time: a tenth of a batch's record step)."""
    records: list[R] = []
    plan: tuple[tuple[str, int], ...] | None = None
    for row in rows:
        if plan is None:
            plan = _plan(cls, row._fields)
        records.append(cls(**{name: row[i] for name, i in plan}))
    return records


def _plan(cls: type[Any], names: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    plan = _PLANS.get((cls, names))
    if plan is None:
        position: dict[str, int] = {}
        for i, name in enumerate(names):
            position.setdefault(name, i)
        fields = cls.__dataclass_fields__
        plan = _PLANS[(cls, names)] = tuple((f, position[f]) for f in fields if f in position)
    return plan
