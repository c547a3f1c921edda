"""Set-based writes: many rows in one statement, cheap to build on either database."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["insert_plain", "insert_rows", "update_plain"]


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
      the server into the table's own column types, in order;
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
        key = (dialect, table.name, names, ())
        sql = _STATEMENTS.get(key)
        if sql is None:
            columns = ", ".join(_quote(conn, name) for name in names)
            sql = _STATEMENTS[key] = (
                f"INSERT INTO {_quote(conn, table.name)} ({columns}) "  # noqa: S608 - see _quote
                f"SELECT {columns} FROM jsonb_populate_recordset("
                f"NULL::{_quote(conn, table.name)}, %s::jsonb) WITH ORDINALITY "
                "ORDER BY ordinality"
            )
        conn.exec_driver_sql(sql, (json.dumps(list(rows)),))
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
    Each row must match a different table row (as a primary key does)."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    where, columns = tuple(where), tuple(columns)
    json_at = [i for i, name in enumerate(columns, len(where)) if _is_json(table.c[name])]
    key = (dialect, table.name, where, columns)
    sql = _STATEMENTS.get(key)
    if dialect == "postgresql" and any(row[i] is None for row in rows for i in json_at):
        sql, dialect = None, ""  # SQLAlchemy's path, below
    if dialect == "postgresql":
        aliases = [f"w{i}" for i in range(len(where))] + [f"s{i}" for i in range(len(columns))]
        if sql is None:
            types = ", ".join(
                f"{alias} {table.c[name].type.compile(dialect=conn.dialect)}"
                for alias, name in zip(aliases, (*where, *columns), strict=True)
            )
            assignments = ", ".join(
                f"{_quote(conn, name)} = r.s{i}" for i, name in enumerate(columns)
            )
            matches = " AND ".join(
                f"{_quote(conn, table.name)}.{_quote(conn, name)} = r.w{i}"
                for i, name in enumerate(where)
            )
            sql = _STATEMENTS[key] = (
                f"UPDATE {_quote(conn, table.name)} SET {assignments} "  # noqa: S608
                f"FROM jsonb_to_recordset(%s::jsonb) AS r({types}) WHERE {matches}"
            )
        payload = json.dumps([dict(zip(aliases, row, strict=True)) for row in rows])
        return int(conn.exec_driver_sql(sql, (payload,)).rowcount)
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


def _make_encoder() -> Callable[[Any, int], list[str]] | None:
    """The C encoder `json.dumps` builds on every call, built once with `json.dumps`'s
    defaults (ensure_ascii, ", " and ": ", NaN allowed; circular references not looked
    for: a row's values are trees): the same text for ~1.2 µs less a value (four values
    an item of a chunk's record step on SQLite). None where the C module is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return None
    return make(  # type: ignore[no-any-return]
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )


_ENCODE = _make_encoder()


def _dumps(value: Any) -> str:
    """`json.dumps`, as SQLAlchemy's JSON type serializes (an empty dict, most events'
    `meta`, without the encoder's call; dicts and lists through the prebuilt encoder)."""
    kind = type(value)
    if kind is dict and not value:
        return "{}"
    if _ENCODE is not None and (kind is dict or kind is list):
        return "".join(_ENCODE(value, 0))
    return json.dumps(value)
