"""`insert_plain` and `update_plain` write what SQLAlchemy's executemany writes (the chunk
record step's statements, issue 14), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from portwright.store import Store
from portwright.store._bulk import insert_plain, update_plain
from portwright.store._jobs import NewJob
from portwright.store._schema import breaker_outcomes, jobs, outbox


def _payload(i: int) -> dict[str, Any]:
    return {
        "n": i,
        "ratio": 1 / 3 + i,
        "text": "ünïcødé \"quoted\" 'single' % %s \\ back",
        "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
        "none": None,
        "floats": [0.1, 1e-7, 5e-324, 123456789.125, -2.5, 1.0],
        "ints": [0, -1, 2**53 + 1, 2**70, -(2**40)],
        "unicode": {"k\u00e9y ☃": "\U0001f600 \u2028\u2029 \t\n\r\x01 </script>", "": ""},
        "deep": [{"a": [{"b": [[None, False]]}]}],
    }


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(query).mappings()]


def test_insert_plain_writes_the_rows_of_an_executemany_in_order(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        rows = [
            {
                "event_id": f"e:{i}",
                "topic": "job.succeeded",
                "tenant_id": None if i % 2 else "t1",
                "subject": f"job_{i}",
                "platform": None,
                "payload": _payload(i),
                "created_at": 1_796_602_838.3032327 + i / 7,
                "target": "https://hooks.example/x?a=1&b=%20",
            }
            for i in range(25)
        ]
        with store.engine.begin() as conn:
            insert_plain(conn, outbox, rows)
            conn.execute(
                outbox.insert(), [{**row, "event_id": f"ref:{row['event_id']}"} for row in rows]
            )
            insert_plain(
                conn,
                breaker_outcomes,
                [{"name": "p", "ok": i % 3 > 0, "at": 0.5} for i in range(5)],
            )
            conn.execute(
                breaker_outcomes.insert(),
                [{"name": "q", "ok": i % 3 > 0, "at": 0.5} for i in range(5)],
            )
        with store.engine.connect() as conn:
            written = _rows(conn, sa.select(outbox).order_by(outbox.c.id))
            outcomes = _rows(conn, sa.select(breaker_outcomes).order_by(breaker_outcomes.c.id))
        ours, theirs = written[:25], written[25:]
        assert [row["event_id"] for row in ours] == [row["event_id"] for row in rows]  # in order
        for mine, ref, given in zip(ours, theirs, rows, strict=True):
            assert {**mine, "id": 0} == {**ref, "id": 0, "event_id": given["event_id"]}
            assert mine["payload"] == given["payload"]
            assert repr(mine["payload"]) == repr(ref["payload"])  # 1.0 stays 1.0, True True
            assert mine["created_at"] == given["created_at"]
        assert [(r["ok"], r["at"]) for r in outcomes[:5]] == [
            (r["ok"], r["at"]) for r in outcomes[5:]
        ]
    finally:
        store.close()


def test_update_plain_sets_what_an_executemany_sets_and_counts_matched_rows(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        ids = [f"job_{i:03d}" for i in range(12)]
        _insert_jobs(store, tenant, ids)
        columns = ("output", "paused", "reason", "state", "finished_at", "seq")
        half = len(ids) // 2

        def values(i: int) -> tuple[Any, ...]:
            output = None if i % 4 == 0 else _payload(i)
            return (output, i % 2 == 0, f"done {i} %s ü", "DONE", 1.5 + i / 9, 2)

        with store.engine.begin() as conn:
            # ours: all but the last of our half matched (the last one's seq is stale)
            rows = [
                (job_id, 1 if i < half - 1 else 7, *values(i))
                for i, job_id in enumerate(ids[:half])
            ]
            assert update_plain(conn, jobs, ("id", "seq"), columns, rows) == half - 1
            statement = (
                jobs.update()
                .where(jobs.c.id == sa.bindparam("b_id"), jobs.c.seq == sa.bindparam("b_seq"))
                .values({k: sa.bindparam(f"v_{k}", type_=jobs.c[k].type) for k in columns})
            )
            reference = [
                {
                    "b_id": job_id,
                    "b_seq": 1,
                    **{f"v_{k}": v for k, v in zip(columns, values(i), strict=True)},
                }
                for i, job_id in enumerate(ids[half:])
            ]
            conn.execute(statement, reference)
        with store.engine.connect() as conn:
            found = {row["id"]: row for row in _rows(conn, sa.select(jobs))}
            nulls = dict(conn.execute(sa.select(jobs.c.id, jobs.c.output.is_(None))).all())
        untouched = found[ids[half - 1]]
        assert (untouched["state"], untouched["seq"], untouched["output"]) == ("INIT", 1, None)
        for i in range(half - 1):
            mine, ref = found[ids[i]], found[ids[i + half]]
            assert {k: mine[k] for k in columns} == {k: ref[k] for k in columns}
            assert {k: mine[k] for k in columns} == dict(zip(columns, values(i), strict=True))
            assert nulls[ids[i]] == nulls[ids[i + half]]  # JSON null, not SQL NULL, alike
    finally:
        store.close()


def test_update_plain_with_shared_values_sets_what_an_executemany_sets(db_url: str) -> None:
    """Columns set to the same value in every row (sent once on PostgreSQL) and columns that
    vary, including values equal across types (1, 1.0, True) and a shared dict: the rows
    read back as an executemany's; a row whose seq is stale is not matched, nor is a job
    not named."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        ids = [f"job_{i:03d}" for i in range(21)]
        _insert_jobs(store, tenant, ids)
        shared = {"same": [1, 2.5], "k": {}}
        columns = ("output", "notes", "attempts", "finished_at", "state", "waiting_for", "seq")
        cases = [
            lambda i: (_payload(i), shared, 3, 1.5, "DONE", None, 2),  # output varies
            lambda i: (shared, {"n": i}, i, 2.0 + i, "DONE", None, 2),  # notes, times vary
            lambda i: ({}, [1, 1.0, True][i % 3], 1, 1.0, f"S{i}", "x", 2),  # equal across types
        ]
        for n, values in enumerate(cases):
            mine, theirs = ids[n * 7 : n * 7 + 3], ids[n * 7 + 3 : n * 7 + 6]
            with store.engine.begin() as conn:
                rows = [(job_id, 1, *values(i)) for i, job_id in enumerate(mine)]
                rows.append((ids[n * 7 + 6], 5, *values(9)))  # stale seq: not matched
                assert update_plain(conn, jobs, ("id", "seq"), columns, rows) == len(mine)
                statement = (
                    jobs.update()
                    .where(jobs.c.id == sa.bindparam("b_id"), jobs.c.seq == 1)
                    .values({k: sa.bindparam(f"v_{k}", type_=jobs.c[k].type) for k in columns})
                )
                conn.execute(
                    statement,
                    [
                        {
                            "b_id": job_id,
                            **{f"v_{k}": v for k, v in zip(columns, values(i), strict=True)},
                        }
                        for i, job_id in enumerate(theirs)
                    ],
                )
            with store.engine.connect() as conn:
                found = {row["id"]: row for row in _rows(conn, sa.select(jobs))}
            for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                assert {k: found[a][k] for k in columns} == {k: found[b][k] for k in columns}
                assert {k: found[a][k] for k in columns} == dict(
                    zip(columns, values(i), strict=True)
                )
                assert repr(found[a]["notes"]) == repr(found[b]["notes"])  # True stays True
            stale = found[ids[n * 7 + 6]]
            assert (stale["state"], stale["seq"], stale["output"]) == ("INIT", 1, None)
        assert found[ids[-1]]["state"] == "INIT"
    finally:
        store.close()


def test_json_values_are_serialized_as_json_dumps_serializes_them() -> None:
    """A JSON column's text on SQLite is `json.dumps`'s, character for character, through
    `_dumps`'s prebuilt encoder too; what it cannot encode fails as `json.dumps` fails."""
    import json

    from portwright.store._bulk import _dumps

    values: list[Any] = [
        {},
        [],
        {"a": 1},
        _payload(7),
        [_payload(1), _payload(2), [], {}],
        {"floats": [0.1, 1 / 3, 1e300, -0.0, 5e-324, 2.5], "big": 2**70, "neg": -(2**40)},
        {"ascii": 'é\u2028\x00\t\n"', "emoji": "\U0001f600", "k\u00e9y": None},
        {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
        {"tuple": (1, "two", None), "nested": {"deep": [{"x": [[[]]]}]}},
        {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
        "a string",
        42,
        1.5,
        None,
        True,
    ]
    for value in values:
        assert _dumps(value) == json.dumps(value), value
    for bad in ({"set": {1, 2}}, [object()], {("tuple", "key"): 1}):
        with pytest.raises(TypeError) as expected:
            json.dumps(bad)
        with pytest.raises(TypeError) as raised:
            _dumps(bad)
        assert str(raised.value) == str(expected.value)


def test_jsonb_parameters_read_back_as_json_dumps_values() -> None:
    """The rows' jsonb parameter on PostgreSQL (`_jsonb_text`, orjson's text) reads back as
    the values `json.dumps`'s text does: floats to the last bit, 1.0 apart from 1, every
    escape; what orjson refuses (an integer beyond 64 bits, a key that is not a string, a
    lone surrogate) is `json.dumps`'s compact text itself; what neither can encode fails as
    `json.dumps` fails. NaN and the infinities read back as null (PostgreSQL refused them)."""
    import json

    from portwright.store._bulk import _jsonb_text

    values: list[Any] = [
        [],
        {},
        [_payload(1), _payload(2), {"meta": {}}, [None, True, 1.0, 1, "1"]],
        {"floats": [0.1, 1 / 3, 1e300, 1e16, -0.0, 5e-324, 2.5e-8, 1e22, 123456789012345678.0]},
        {"ascii": 'é\u2028\x00\t\n"\\\x7f', "emoji": "\U0001f600", "k\u00e9y": None},
        ({"tuple": (1, "two", None)},),
    ]
    for value in values:
        assert repr(json.loads(_jsonb_text(value))) == repr(json.loads(json.dumps(value)))
    for refused in ({1: "int key", "big": 2**64}, [2**64], ["\ud800 lone"], {"n": -(2**63) - 1}):
        assert _jsonb_text(refused) == json.dumps(refused, separators=(",", ":"))
    assert json.loads(_jsonb_text([float("nan"), float("inf"), -float("inf")])) == [None] * 3
    for bad in ([{"set": {1, 2}}], [object()], {("tuple", "key"): 1}):
        with pytest.raises(TypeError) as expected:
            json.dumps(bad)
        with pytest.raises(TypeError) as raised:
            _jsonb_text(bad)
        assert str(raised.value) == str(expected.value)


def test_as_jsonb_returns_what_postgresql_returns_or_says_it_cannot(db_url: str) -> None:
    """`as_jsonb_returns(v)` is what jsonb gives back for `v`, key order included (compared
    on the JSON text), or LookupError where that is not certain."""
    import enum
    import json

    from portwright.store._bulk import as_jsonb_returns

    class Level(enum.IntEnum):
        LOW = 1

    sure: list[Any] = [
        {},
        [],
        _payload(3),
        {"b": 1, "a": 2, "aa": 3, "é": 4, "e": 5, "\U0001f600": 6, "": 7, "Z": 8, "z": 9},
        {"floats": [0.1, 1 / 3, 2.5, 1e-7, 5e-324, 123456789.125], "big": 2**70},
        {"deep": [{"yy": [{"b": None, "a": True}], "x": "ünï"}]},
        "text",
        3,
        None,
        False,
    ]
    unsure: list[Any] = [
        {"f": 1e16},
        [-0.0],
        {"t": (1, 2)},
        {1: "int key"},
        {"e": Level.LOW},
        {"n": float("nan")},
    ]
    for value in sure:
        assert as_jsonb_returns(value) == value  # the same tree (its keys maybe reordered)
    for value in unsure:
        with pytest.raises(LookupError):
            as_jsonb_returns(value)
    if not db_url.startswith("postgresql"):
        return
    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            for value in sure:
                back = conn.execute(sa.text("SELECT CAST(:v AS jsonb)"), {"v": json.dumps(value)})
                assert json.dumps(as_jsonb_returns(value)) == json.dumps(back.scalar()), value
    finally:
        store.close()


def test_insert_linked_stores_what_insert_plain_stores_with_shared_values_sent_once(
    db_url: str,
) -> None:
    """`insert_linked` sends a column whose value every row shares once (PostgreSQL): the
    rows stored are `insert_plain`'s all the same, including values equal across types
    (1, 1.0 and True are not the same value), empty and shared dicts, and shared Nones."""
    from portwright.store._bulk import insert_linked

    shared = {"b": [1, {"yy": None, "x": "ü"}], "a": 1}
    cases: list[list[Any]] = [
        [1, True, 1.0, 1],  # equal, not the same
        [{}, {}, {}, {}],  # empty dicts: the same
        [shared, shared, shared, shared],  # one object
        [{"a": 1}, {"a": True}, {"a": 1}, {"a": 1.0}],  # equal dicts, not the same
        [_payload(1), _payload(1), _payload(1), _payload(1)],  # equal copies
        ["s", "s", "s", "s"],
    ]
    store = Store.open(db_url)
    try:
        with store.engine.begin() as conn:
            for n, payloads in enumerate(cases):
                rows = [
                    {
                        "event_id": f"{n}:{i}",
                        "topic": "t",
                        "tenant_id": None,  # None in every row
                        "subject": "same",
                        "platform": "p" if i else None,
                        "payload": payload,
                        "created_at": 1.5 if i % 2 else 1,  # 1.5 and an int
                        "target": "x",
                    }
                    for i, payload in enumerate(payloads)
                ]
                insert_linked(conn, [(outbox, rows)])
                insert_plain(
                    conn, outbox, [{**r, "event_id": f"ref:{r['event_id']}"} for r in rows]
                )
        with store.engine.connect() as conn:
            written = _rows(conn, sa.select(outbox).order_by(outbox.c.id))
        ours = [r for r in written if not r["event_id"].startswith("ref:")]
        theirs = {r["event_id"]: r for r in written if r["event_id"].startswith("ref:")}
        assert len(ours) == len(theirs) == 4 * len(cases)
        for mine in ours:
            ref = theirs[f"ref:{mine['event_id']}"]
            assert {**mine, "id": 0, "event_id": ""} == {**ref, "id": 0, "event_id": ""}
            assert repr(mine["payload"]) == repr(ref["payload"])  # True stays True, 1.0 1.0
            assert type(mine["created_at"]) is type(ref["created_at"])
        assert [r["event_id"] for r in ours] == [
            f"{n}:{i}" for n in range(len(cases)) for i in range(4)
        ]
    finally:
        store.close()


def _insert_jobs(store: Store, tenant: str, ids: list[str]) -> None:
    """Queued scrape jobs of these ids, in one transaction."""
    new = [
        NewJob(
            job_id=job_id,
            tenant_id=tenant,
            adapter="scrape",
            adapter_version="1",
            portal="scrape",
            state="INIT",
            status="queued",
            input={"url": "http://x"},
            lock_key=None,
            priority=0,
            actor="test",
        )
        for job_id in ids
    ]
    with store.engine.begin() as conn:
        store.jobs.insert_many(conn, new)
