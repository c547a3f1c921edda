"""Set-based inserts: many rows in one statement, cheap to build on either database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["insert_rows"]


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
