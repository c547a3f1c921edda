"""Set-based writes: many rows in one statement, cheap to build on either database."""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

K = TypeVar("K")  # a row's key: a column's name (dict rows) or position (tuples)

__all__ = ["as_jsonb_returns", "insert_linked", "insert_plain", "insert_rows", "update_plain"]


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    returning: Sequence[sa.ColumnElement[Any]],
) -> list[sa.Row[Any]]:
    """Insert `rows` (dicts with the same keys) in one multi-row statement, in the caller's
    transaction, and return `returning` for each (in no particular order).

    PostgreSQL: `INSERT … SELECT … FROM jsonb_to_recordset(:rows)`: the rows travel as one
    JSON parameter that the server unpacks, since psycopg rewrites every placeholder of a
    statement in Python (~1 ms per 1,000 placeholders: a second for 1,000 job rows).
    SQLite: SQLAlchemy's "insertmanyvalues" (`INSERT … VALUES (…), (…) … RETURNING`, a
    statement per 1,000 rows, compiled once and cached)."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        names = list(rows[0])
        source = (
            sa.func.jsonb_to_recordset(sa.literal(list(rows), JSONB))
            .table_valued(*(sa.column(name, table.c[name].type) for name in names))
            .render_derived(with_types=True)
        )
        statement = table.insert().from_select(
            names, sa.select(*(source.c[name] for name in names))
        )
        return list(conn.execute(statement.returning(*returning)))
    return list(conn.execute(table.insert().returning(*returning), list(rows)))


# Statements of `insert_plain` and `update_plain`, by (dialect, table, columns): built once.
_STATEMENTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], str] = {}


def insert_plain(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) in the caller's transaction, in the order
    given (ids drawn in that order), returning nothing: what `conn.execute(table.insert(),
    rows)` writes, for a fraction of its CPU. That executemany processes every row's
    parameters in SQLAlchemy (and on PostgreSQL psycopg sends every row as a statement of
    its own); this sends the driver one statement built once per table and columns:

    - PostgreSQL: `INSERT … SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)
      WITH ORDINALITY … ORDER BY ordinality`: the rows as one JSON parameter, unpacked by
      the server into the table's own column types, in order; a column whose value is the
      same in every row sent once (`insert_linked`'s statement, of one part): less JSON
      for the server to parse, a third of a chunk's events' text (their tenant, time,
      kind, empty `meta`);
    - SQLite: the driver's executemany of `INSERT … VALUES (?, …)` with each JSON column
      serialized as SQLAlchemy's JSON type does (`json.dumps`).

    A JSON column holding None (SQLAlchemy writes the JSON `null`, the recordset SQL NULL)
    takes SQLAlchemy's path on PostgreSQL, so the stored values are the same either way."""
    if not rows:
        return
    names = tuple(rows[0])
    dialect = conn.dialect.name
    json_columns = [name for name in names if _is_json(table.c[name])]
    if dialect == "postgresql":
        if any(row[name] is None for row in rows for name in json_columns):
            conn.execute(table.insert(), list(rows))
            return
        insert_linked(conn, [(table, rows)])  # no JSON None: its values are ours
        return
    if dialect != "sqlite":  # pragma: no cover - the two databases Portwright runs on
        conn.execute(table.insert(), list(rows))
        return
    key = (dialect, table.name, names, ())
    sql = _STATEMENTS.get(key)
    if sql is None:
        columns = ", ".join(_quote(conn, name) for name in names)
        marks = ", ".join("?" for _ in names)
        sql = _STATEMENTS[key] = (
            f"INSERT INTO {_quote(conn, table.name)} ({columns}) VALUES ({marks})"  # noqa: S608
        )
    conn.exec_driver_sql(sql, _tuples(rows, names, set(json_columns)))


def update_plain(
    conn: sa.Connection,
    table: sa.Table,
    where: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    """Update one row per item of `rows` in the caller's transaction: each is the values
    of the `where` columns (matched by equality) then of `columns` (set); how many rows
    changed. What an executemany of `table.update().where(…).values(…)` does, for a
    fraction of its CPU (see `insert_plain`): on PostgreSQL one `UPDATE … FROM
    jsonb_to_recordset(:rows)` statement, on SQLite the driver's executemany. A JSON
    column set to None takes SQLAlchemy's path on PostgreSQL (see `insert_plain`).
    Each row must match a different table row (as a primary key does).

    On PostgreSQL a column set to the same value in every row (a sub-chunk's state,
    status, times) is sent once (`jsonb_to_record`, joined; as `insert_linked` does).
    The rows are found by joining the recordset on the `where` columns: on a large table
    the planner probes the primary key's index once a row (100,000 jobs, with row-level
    security or without); on a small one (~1,000) it may hash-join a sequential scan.
    Adding `key = ANY(:keys)` makes the index certain, but under row-level security the
    planner then estimates the table's side at one row and joins the recordset to it in
    a nested loop that compares every pair: more CPU than it saves (benchmarks/README.md,
    issue 14, "The record transaction's statements")."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    where, columns = tuple(where), tuple(columns)
    json_at = [i for i, name in enumerate(columns, len(where)) if _is_json(table.c[name])]
    if dialect == "postgresql" and not any(row[i] is None for row in rows for i in json_at):
        return _update_pg(conn, table, where, columns, rows)
    key = (dialect, table.name, where, columns)
    sql = _STATEMENTS.get(key)
    if dialect == "sqlite":
        if sql is None:
            assignments = ", ".join(f"{_quote(conn, name)} = ?" for name in columns)
            matches = " AND ".join(f"{_quote(conn, name)} = ?" for name in where)
            sql = _STATEMENTS[key] = (
                f"UPDATE {_quote(conn, table.name)} SET {assignments} WHERE {matches}"  # noqa: S608
            )
        # the SET values first, as the statement's placeholders come
        n = len(where)
        params = [(*_json_values(row[n:], [i - n for i in json_at]), *row[:n]) for row in rows]
        return int(conn.exec_driver_sql(sql, params).rowcount)
    statement = (
        table.update()
        .where(*(table.c[name] == sa.bindparam(f"w_{name}") for name in where))
        .values({name: sa.bindparam(f"s_{name}", type_=table.c[name].type) for name in columns})
    )
    params_by_name = [
        {
            **{f"w_{name}": value for name, value in zip(where, row, strict=False)},
            **{f"s_{name}": value for name, value in zip(columns, row[len(where) :], strict=True)},
        }
        for row in rows
    ]
    return sum(int(conn.execute(statement, [params]).rowcount) for params in params_by_name)


# Statements of `_update_pg`, by table, columns and the columns sent once
_UPDATES: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, ...]], str] = {}


def _update_pg(
    conn: sa.Connection,
    table: sa.Table,
    where: tuple[str, ...],
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    """`update_plain` on PostgreSQL (no JSON column set to None)."""
    n = len(where)
    aliases = [f"w{i}" for i in range(n)] + [f"s{i}" for i in range(len(columns))]
    same = _same_in_every_row(rows, range(n, n + len(columns)))
    varying = [i for i in range(len(aliases)) if i not in same]
    key = (table.name, where, columns, tuple(same))
    sql = _UPDATES.get(key)
    if sql is None:
        names = (*where, *columns)
        name = _quote(conn, table.name)

        def typed(i: int) -> str:
            return f"{aliases[i]} {table.c[names[i]].type.compile(dialect=conn.dialect)}"

        source = f"jsonb_to_recordset(%s::jsonb) AS r({', '.join(map(typed, varying))})"
        if same:
            source += f" CROSS JOIN jsonb_to_record(%s::jsonb) AS k({', '.join(map(typed, same))})"
        assignments = ", ".join(
            f"{_quote(conn, column)} = {'k' if i + n in same else 'r'}.s{i}"
            for i, column in enumerate(columns)
        )
        matches = [f"{name}.{_quote(conn, column)} = r.w{i}" for i, column in enumerate(where)]
        sql = (
            f"UPDATE {name} SET {assignments} "  # noqa: S608 - see _quote
            f"FROM {source} WHERE {' AND '.join(matches)}"
        )
        if len(_UPDATES) < 256:  # bounded: a few shapes of rows are met
            _UPDATES[key] = sql
    params: list[Any] = [_jsonb_text([{aliases[i]: row[i] for i in varying} for row in rows])]
    if same:
        params.append(_jsonb_text({aliases[i]: value for i, value in same.items()}))
    return int(conn.exec_driver_sql(sql, tuple(params)).rowcount)


def insert_linked(
    conn: sa.Connection, parts: Sequence[tuple[sa.Table, Sequence[dict[str, Any]]]]
) -> None:
    """Insert each part's `rows` (dicts with the same keys) into its table, the parts in the
    order given (a part's rows may refer to an earlier part's: a foreign key), each part's
    rows in order (ids drawn in that order), returning nothing, in the caller's
    transaction.

    PostgreSQL: ONE statement, whatever the number of parts (a data-modifying CTE per part
    but the last, each `INSERT … SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)
    WITH ORDINALITY … ORDER BY ordinality` as `insert_plain`'s): a round trip, and a
    statement's fixed cost, for all of them. The foreign keys are checked at its end, when
    every part is written. A column whose value is the same in every row (a batch's
    tenant, adapter, state, time…) is sent once (`jsonb_populate_record`, joined), the
    rows carrying only the others: a fraction of the JSON to encode and to parse. A JSON
    column's None is stored as SQL NULL (what `jsonb_to_recordset`, `insert_rows`, stores;
    `insert_plain` stores the JSON `null`). Elsewhere: `insert_plain` per part (SQLite
    stores such a None as the JSON `null`, as before)."""
    parts = [(table, rows) for table, rows in parts if rows]
    if not parts:
        return
    if conn.dialect.name != "postgresql":
        for table, rows in parts:
            insert_plain(conn, table, rows)
        return
    shapes, params = [], []
    for table, rows in parts:
        names = tuple(rows[0])
        same = _same_in_every_row(rows, names)
        varying = tuple(name for name in names if name not in same)
        shapes.append((table.name, names, tuple(same)))
        params.append(_jsonb_text([{name: row[name] for name in varying} for row in rows]))
        if same:
            params.append(_jsonb_text(same))
    key = tuple(shapes)
    sql = _LINKED.get(key)
    if sql is None:
        inserts = []
        for name, names, constant in key:
            columns = ", ".join(_quote(conn, column) for column in names)
            values = ", ".join(
                f"{'k' if column in constant else 'r'}.{_quote(conn, column)}" for column in names
            )
            source = (
                f"jsonb_populate_recordset(NULL::{_quote(conn, name)}, %s::jsonb) "
                "WITH ORDINALITY AS r"
            )
            if constant:
                source += (
                    f" CROSS JOIN jsonb_populate_record(NULL::{_quote(conn, name)}, %s::jsonb) AS k"
                )
            inserts.append(
                f"INSERT INTO {_quote(conn, name)} ({columns}) "  # noqa: S608 - see _quote
                f"SELECT {values} FROM {source} ORDER BY r.ordinality"
            )
        ctes = ", ".join(f"w{i} AS ({insert})" for i, insert in enumerate(inserts[:-1]))
        sql = (f"WITH {ctes} " if ctes else "") + inserts[-1]
        if len(_LINKED) < 256:  # bounded: a few shapes of rows are met
            _LINKED[key] = sql
    conn.exec_driver_sql(sql, tuple(params))


# Statements of `insert_linked`, by the tables, columns and columns sent once of its parts
_LINKED: dict[tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...], str] = {}
# values the same in every row when equal and of the same type (1 == 1.0 == True: not)
_BY_VALUE = frozenset({str, int, bool, type(None)})


def _same_in_every_row(rows: Sequence[Any], keys: Iterable[K]) -> dict[K, Any]:
    """The columns whose value is the same in every row (of more than one), with it: sent
    once, not once a row. `rows` are dicts (`keys`: column names) or tuples (`keys`:
    positions). The same: equal and of the same type for a str, int, bool or None; an empty
    dict each; else the same object in every row."""
    same: dict[K, Any] = {}
    if len(rows) < 2:
        return same
    first, second = rows[0], rows[1]
    for key in keys:
        value = first[key]
        if second[key] is not value and second[key] != value:
            continue  # the common case of a column that varies, seen at once
        if _alike(value, [row[key] for row in rows]):
            same[key] = value
    return same


def _alike(value: Any, values: list[Any]) -> bool:
    """Whether each of `values` is `value` as `_same_in_every_row` means it."""
    kind = type(value)
    if len(set(map(type, values))) != 1:
        return False  # of different types
    if kind in _BY_VALUE:
        return values.count(value) == len(values)
    if kind is dict and not value:
        return not any(values)
    return all(map(operator.is_, values, itertools.repeat(value)))


class _UnsureError(Exception):
    """A value whose jsonb round trip `as_jsonb_returns` does not work out."""


def as_jsonb_returns(value: Any) -> Any:
    """`value` (a JSON column's, as given to an INSERT) as PostgreSQL's jsonb returns it
    once stored: the same tree, each object's keys in jsonb's order (shorter keys first,
    then by their UTF-8 bytes), which a record built from the rows written must show to
    show what is stored. Raises LookupError when that is not certain: anything but dicts
    with str keys, lists, str, int, bool, None and floats written as plain decimals (a
    float printed with an exponent, `1e+16`, comes back an int; -0.0 as 0.0; a tuple as a
    list); the caller reads the value back then."""
    try:
        return _jsonb_tree(value)
    except (_UnsureError, UnicodeEncodeError, RecursionError):
        raise LookupError("no certain jsonb round trip") from None


# jsonb's key order of each tuple of keys met (a batch's inputs share a few shapes)
_KEY_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, bool, type(None)})


def _jsonb_tree(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        keys = tuple(value)
        order = _KEY_ORDERS.get(keys)
        if order is None:
            if any(type(key) is not str for key in keys):
                raise _UnsureError
            order = tuple(sorted(keys, key=_jsonb_key_rank))
            if len(_KEY_ORDERS) < 4096:  # bounded: shapes come from callers' inputs
                _KEY_ORDERS[keys] = order
        out = {}
        for key in order:  # a scalar as it is, without a call
            item = value[key]
            out[key] = item if type(item) in _SCALARS else _jsonb_tree(item)
        return out
    if kind is list:
        return [item if type(item) in _SCALARS else _jsonb_tree(item) for item in value]
    if kind is float:
        text = repr(value)
        if "e+" in text or text in ("-0.0", "nan", "inf", "-inf"):
            raise _UnsureError
        return value
    raise _UnsureError


def _jsonb_key_rank(key: str) -> tuple[int, bytes]:
    data = key.encode("utf-8")
    return len(data), data


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.JSON)


def _quote(conn: sa.Connection, name: str) -> str:
    """A table's or column's name (from the schema, never from a caller's data), quoted
    for the dialect: the statements above hold no value, every value is bound."""
    return str(conn.dialect.identifier_preparer.quote(name))


def _tuples(
    rows: Sequence[dict[str, Any]], names: tuple[str, ...], json_columns: set[str]
) -> list[Sequence[Any]]:
    """Each row's values in `names` order (its JSON columns serialized)."""
    if len(names) == 1:
        (name,) = names
        if name in json_columns:
            return [(_dumps(row[name]),) for row in rows]
        return [(row[name],) for row in rows]
    get = operator.itemgetter(*names)
    json_at = [i for i, name in enumerate(names) if name in json_columns]
    if not json_at:
        return [get(row) for row in rows]
    out: list[Sequence[Any]] = []
    for row in rows:
        values = list(get(row))
        for i in json_at:
            values[i] = _dumps(values[i])
        out.append(tuple(values))
    return out


def _json_values(values: tuple[Any, ...], json_at: list[int]) -> tuple[Any, ...]:
    if not json_at:
        return values
    out = list(values)
    for i in json_at:
        out[i] = _dumps(out[i])
    return tuple(out)


def _make_encoder(
    key_separator: str, item_separator: str
) -> Callable[[Any, int], list[str]] | None:
    """The C encoder `json.dumps` builds on every call, built once with `json.dumps`'s
    defaults (ensure_ascii, NaN allowed; circular references not looked for: a row's
    values are trees, and a cycle still fails, as a RecursionError) but for the
    separators given. None where the C module is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return None
    return make(  # type: ignore[no-any-return]
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        key_separator,
        item_separator,
        False,
        False,
        True,
    )


# `json.dumps`'s own text (SQLite stores it: the same text SQLAlchemy's JSON type writes),
# ~1.2 µs less a value than `json.dumps` (four values an item of a chunk's record step)
_ENCODE = _make_encoder(": ", ", ")
# the text of a jsonb parameter (see `_jsonb_text`)
_COMPACT = _make_encoder(":", ",")


def _dumps(value: Any) -> str:
    """`json.dumps`, as SQLAlchemy's JSON type serializes (an empty dict, most events'
    `meta`, without the encoder's call; dicts and lists through the prebuilt encoder)."""
    kind = type(value)
    if kind is dict and not value:
        return "{}"
    if _ENCODE is not None and (kind is dict or kind is list):
        return "".join(_ENCODE(value, 0))
    return json.dumps(value)


def _jsonb_text(value: list[Any] | dict[str, Any]) -> str:
    """`value` as the text of a jsonb parameter, which PostgreSQL parses (the text itself
    is stored nowhere): orjson's compact UTF-8 text, a tenth of the CPU of `json.dumps` on a
    sub-chunk's rows (the values PostgreSQL reads are the same: tests/store/test_bulk.py).
    What orjson refuses and `json.dumps` writes (an integer beyond 64 bits, a key that is
    not a string, a lone surrogate) goes through `_compact_text`, as before. Unlike
    `json.dumps`, orjson writes NaN and the infinities as null, where PostgreSQL refused
    the statement (values dumped by pydantic in JSON mode, results and events, are null
    already)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _compact_text(value)


def _compact_text(value: list[Any] | dict[str, Any]) -> str:
    """`json.dumps`'s values, escapes and floats (ASCII only; NaN written as `json.dumps`
    does, which PostgreSQL refuses) without the separators' spaces, through one encoder
    built once."""
    if _COMPACT is None:  # pragma: no cover - CPython has it
        return json.dumps(value, separators=(",", ":"))
    return "".join(_COMPACT(value, 0))
