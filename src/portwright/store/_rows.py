"""Mapping SQLAlchemy rows to records."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

__all__ = ["to_record"]

R = TypeVar("R")

# (record class, the row's column names) → (field, column position) pairs: worked out once
# per query shape, since records are built for every row read (hundreds a second).
_PLANS: dict[tuple[type[Any], tuple[str, ...]], tuple[tuple[str, int], ...]] = {}


def to_record(cls: type[R], row: sa.Row[Any]) -> R:
    """Build a record dataclass from a row whose column names match its fields."""
    names = row._fields
    plan = _PLANS.get((cls, names))
    if plan is None:
        position: dict[str, int] = {}
        for i, name in enumerate(names):
            position.setdefault(name, i)
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        plan = _PLANS[(cls, names)] = tuple((f, position[f]) for f in fields if f in position)
    return cls(**{name: row[i] for name, i in plan})
