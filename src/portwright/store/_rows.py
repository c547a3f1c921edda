"""Mapping SQLAlchemy rows to records."""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Iterable
from types import MemberDescriptorType
from typing import Any, TypeVar

import sqlalchemy as sa

__all__ = ["loads_json", "to_record", "to_records"]

R = TypeVar("R")

# (record class, the row's column names) → how to build the record from such a row: worked
# out once per query shape, since records are built for every row read (hundreds a second).
# When the row holds every field of a frozen, slotted record (most are), the record's slots
# are filled directly (`_filler`: half the CPU of its `__init__`, ~1.3 µs less for a job's 25
# fields, read twice per item of a chunk); else, when it holds the record's first fields (in
# any column order) and nothing after a missing one, it is built positionally, ~40 % cheaper
# than by keyword; otherwise by keyword.
_BUILDERS: dict[tuple[type[Any], tuple[str, ...]], Callable[[Any], Any]] = {}


# json.loads's own scanner (`json.loads` = detect the bytes' encoding, decode, skip leading
# whitespace, scan, check that nothing follows; its checks are Python code around the C scan)
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads_json(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`: the same value, or the same error, for ~1.3 µs less CPU a value
    (the engines' JSON column reader: psycopg's for jsonb, SQLAlchemy's for SQLite's JSON
    text; three a job row, and a chunk reads each item's job twice). The text a database
    returns is one UTF-8 document without surrounding whitespace, which the scanner reads
    directly; anything else (whitespace, a byte order mark, another encoding, an error, a
    value that is no text: SQLite gives a number stored as such, which SQLAlchemy reads
    from `json.loads`'s TypeError) is left to `json.loads`."""
    kind = type(data)
    try:
        if kind is str:
            text = data
        elif kind is bytes or kind is bytearray:
            text = data.decode("utf-8", "surrogatepass")  # type: ignore[union-attr]
        else:
            return json.loads(data)
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError):  # json.loads says what is wrong, or reads it
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return value


def to_record(cls: type[R], row: sa.Row[Any]) -> R:
    """Build a record dataclass from a row whose column names match its fields."""
    return _builder(cls, row._fields)(row)  # type: ignore[no-any-return]


def to_records(cls: type[R], rows: Iterable[sa.Row[Any]]) -> list[R]:
    """`to_record` for rows of one result: its column names are read once (a row's
    `_fields` builds them anew each time: a tenth of a batch's record step)."""
    records: list[R] = []
    build: Callable[[Any], Any] | None = None
    for row in rows:
        if build is None:
            build = _builder(cls, row._fields)
        records.append(build(row))
    return records


def _builder(cls: type[Any], names: tuple[str, ...]) -> Callable[[Any], Any]:
    build = _BUILDERS.get((cls, names))
    if build is None:
        position: dict[str, int] = {}
        for i, name in enumerate(names):
            position.setdefault(name, i)
        plan = tuple((f, position[f]) for f in cls.__dataclass_fields__ if f in position)
        # positional parameters, in order (a field left out of __init__ or keyword-only
        # ends them)
        params: list[str] = []
        for f in dataclasses.fields(cls):
            if not f.init or f.kw_only:
                break
            params.append(f.name)
        if len(plan) > 1 and _slotted(cls, [name for name, _ in plan]):
            build = _filler(cls, plan)
        elif len(plan) > 1 and [name for name, _ in plan] == params[: len(plan)]:
            get = operator.itemgetter(*(i for _, i in plan))

            def build(row: Any) -> Any:
                return cls(*get(row))

        else:

            def build(row: Any) -> Any:
                return cls(**{name: row[i] for name, i in plan})

        _BUILDERS[(cls, names)] = build
    return build


def _slotted(cls: type[Any], names: list[str]) -> bool:
    """Whether a record of `cls` may be built by filling its slots: a frozen dataclass
    with slots whose `__init__` is the one dataclasses wrote (every field an init field,
    no `__post_init__`, no InitVar), with every field among `names`. Its `__init__` then
    only sets each field, through `object.__setattr__` (a frozen class's own refuses),
    which looks the slot up by name anew each time: ~2.6 µs for a job's 25 fields."""
    params = cls.__dataclass_params__
    fields = dataclasses.fields(cls)
    return (
        params.frozen
        and params.init
        and all(isinstance(cls.__dict__.get(f.name), MemberDescriptorType) for f in fields)
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and len(fields) == len(cls.__dataclass_fields__)  # no InitVar / ClassVar
        and sorted(names) == sorted(f.name for f in fields)
    )


def _filler(cls: type[Any], plan: tuple[tuple[str, int], ...]) -> Callable[[Any], Any]:
    """A builder that makes the record with `object.__new__` and sets each slot through
    its own descriptor, already at hand (generated once per class and row shape, as
    dataclasses generates `__init__`): the same record as `cls(**fields)` (see `_slotted`)
    in half its CPU."""
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = ["def build(row):", "    record = _new(_cls)"]
    for k, (name, i) in enumerate(plan):
        scope[f"_set{k}"] = cls.__dict__[name].__set__
        lines.append(f"    _set{k}(record, row[{int(i)}])")
    lines.append("    return record")
    exec("\n".join(lines), scope)  # noqa: S102 - generated from the class's own field names
    return scope["build"]  # type: ignore[no-any-return]
