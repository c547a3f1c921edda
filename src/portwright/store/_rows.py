"""Mapping SQLAlchemy rows to records."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

__all__ = ["to_record"]

R = TypeVar("R")


def to_record(cls: type[R], row: sa.Row[Any]) -> R:
    """Build a record dataclass from a row whose column names match its fields."""
    mapping = row._mapping
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{name: mapping[name] for name in fields if name in mapping})
