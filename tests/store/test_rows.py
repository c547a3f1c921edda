"""`to_records` builds the records `to_record` builds, whatever the query's columns: in
the table's order or another, some left out (a frozen slotted record's slots filled where
the row holds all its fields, positionally where it holds the record's first fields, by
keyword otherwise), on SQLite and PostgreSQL; the engines' JSON reader reads what
`json.loads` reads."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from portwright.store import JobRecord, Store
from portwright.store._jobs import NewJob
from portwright.store._rows import loads_json, to_record, to_records
from portwright.store._schema import jobs


@dataclasses.dataclass(frozen=True, slots=True)
class _Head:
    id: str
    state: str
    seq: int = 0
    notes: dict[str, object] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    id: str
    state: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", self.state.lower())


@dataclasses.dataclass(frozen=True)
class _Later:
    id: str
    state: str = ""
    seq: int = dataclasses.field(default=0, kw_only=True)


def test_to_records_builds_what_to_record_builds_for_any_column_order(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("rows").id
        new = [
            NewJob(
                job_id=f"job_{i:03d}",
                tenant_id=tenant,
                adapter="scrape",
                adapter_version="1",
                portal="web",
                state="QUEUED",
                status="queued",
                input={"url": f"http://x.test/{i}", "n": [i, None]},
                lock_key=None,
                priority=i,
                actor="api",
                notes={"chunk": "c"} if i % 2 else None,
            )
            for i in range(5)
        ]
        with store.engine.begin() as conn:
            store.jobs.insert_many(conn, new)
        c = jobs.c
        shapes: list[tuple[type, list[sa.ColumnElement[object]]]] = [
            (JobRecord, list(jobs.c)),  # the table's order (not the record's)
            (JobRecord, list(reversed(jobs.c))),
            (_Head, [c.seq, c.id, c.state]),  # a trailing field left out: positional
            (_Head, [c.notes, c.id, c.state]),  # a middle one: by keyword
            (_Head, [c.id, c.state, c.seq, c.notes, c.status]),  # a column not a field
            (_Later, [c.seq, c.state, c.id]),  # a keyword-only field
            (_Head, [c.notes, c.seq, c.state, c.id]),  # every field: its slots filled
            (_Checked, [c.state, c.id]),  # every field, but a __post_init__: __init__
        ]
        with store.engine.connect() as conn:
            for cls, columns in shapes:
                query = sa.select(*columns).order_by(c.id)
                rows = conn.execute(query).all()
                records = to_records(cls, conn.execute(query))
                assert records == [to_record(cls, row) for row in rows]
                assert [r.id for r in records] == [n.job_id for n in new]
                for record, row in zip(records, rows, strict=True):
                    mapping = row._mapping
                    made = cls(
                        **{
                            f.name: mapping[f.name]
                            for f in dataclasses.fields(cls)
                            if f.name in mapping
                        }
                    )
                    assert (record, repr(record)) == (made, repr(made))
                    with pytest.raises(dataclasses.FrozenInstanceError):
                        record.id = "changed"  # type: ignore[misc]
                    if cls is _Checked:
                        assert record.state == "queued"  # its __post_init__ ran
                        continue
                    for field in dataclasses.fields(cls):
                        if field.name in mapping:
                            assert getattr(record, field.name) == mapping[field.name]
                        else:
                            assert getattr(record, field.name) == field.default
            jobs_read = to_records(JobRecord, conn.execute(sa.select(jobs).order_by(c.id)))
        assert [j.input for j in jobs_read] == [n.input for n in new]
        assert [j.notes for j in jobs_read] == [n.notes for n in new]
        assert [j.priority for j in jobs_read] == list(range(5))
        assert all(j.created_at <= time.time() for j in jobs_read)
    finally:
        store.close()


def test_loads_json_reads_what_json_loads_reads_and_fails_as_it_fails() -> None:
    """The engines' JSON column reader (`loads_json`) gives `json.loads`'s value for what a
    database returns (str from SQLite, bytes or a buffer from psycopg) and for anything
    else (whitespace around, a byte order mark, UTF-16, trailing data), and raises the
    same error for what is not JSON."""
    texts = [
        '{"url": "http://x/0", "engine": "auto", "extract": {}}',
        "{}",
        "[]",
        "null",
        "true",
        '"s"',
        "12",
        "-0.0",
        "1e+300",
        "5e-324",
        "123456789012345678901234567890",
        '{"a": [1, 2.5, null, true, "\\u00e9\\ud83d\\ude00"], "b": {"c": NaN, "d": -Infinity}}',
        '{"k\u00e9y ☃": "ünï \U0001f600"}',
        '{"a": 1, "a": 2}',
        '  {"padded": 1}\n',
        '{"x": 1} ',
    ]
    samples: list[Any] = []
    for text in texts:
        samples += [text, text.encode(), bytearray(text.encode())]
    samples += ['\ufeff{"bom": 1}'.encode(), '{"utf16": "é"}'.encode("utf-16")]
    for data in samples:
        assert repr(loads_json(data)) == repr(json.loads(data)), data
    bad: list[Any] = ["", "{", '{"a": }', "[1,]", "{} {}", "nul", '\ufeff{"bom": 1}', b"\xff{}"]
    # not a text: SQLite hands SQLAlchemy a number stored as such, read from the TypeError
    bad += [1, 2.5, memoryview(b"{}"), None]
    for data in bad:
        with pytest.raises((ValueError, TypeError)) as expected:
            json.loads(data)
        with pytest.raises((ValueError, TypeError)) as raised:
            loads_json(data)
        assert (type(raised.value), str(raised.value)) == (
            type(expected.value),
            str(expected.value),
        )
