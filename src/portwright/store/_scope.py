"""Which tenant's rows a transaction may see, for PostgreSQL's row-level security.

Migration 0009 puts every table with a `tenant_id` column under a policy: a row is
visible (and writable) in a transaction scoped to its tenant, or in the system scope.
A connection that set neither sees no tenant rows.

- The store's own connections start in the system scope (`install_system_scope`, a
  session setting made when the pool opens a connection): workers, the janitor, the
  relay, migrations and the other platform-wide work read across tenants by design.
- A query made for one tenant runs in `tenant_transaction(engine, tenant_id)`: for
  that transaction only (`set_config(..., true)`), the system scope is off and the
  tenant on, so a query that forgot its `WHERE tenant_id = …` still cannot return
  another tenant's rows.

On SQLite these are no-ops: the WHERE clauses are the only isolation there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ["install_system_scope", "scope_to_tenant", "tenant_transaction"]

_SYSTEM = "SELECT set_config('portwright.scope', 'system', false)"
_TENANT = sa.text(
    "SELECT set_config('portwright.scope', 'tenant', true), "
    "set_config('portwright.tenant_id', :tenant_id, true)"
)


def install_system_scope(engine: sa.Engine) -> None:
    """Every connection `engine` opens starts in the system scope (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return
    if event.contains(engine, "connect", _system_scope_on_connect):
        return
    event.listen(engine, "connect", _system_scope_on_connect)


def _system_scope_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(_SYSTEM)
    finally:
        cursor.close()
    dbapi_conn.commit()  # psycopg opened a transaction for the SELECT; keep the setting


def scope_to_tenant(conn: sa.Connection, tenant_id: str) -> None:
    """Narrow the caller's current transaction to one tenant's rows."""
    if conn.dialect.name == "postgresql":
        conn.execute(_TENANT, {"tenant_id": tenant_id})


@contextmanager
def tenant_transaction(engine: sa.Engine, tenant_id: str | None) -> Iterator[sa.Connection]:
    """A transaction that sees only `tenant_id`'s rows, or, for None, the caller's
    platform-wide (system) view. Commits on success."""
    with engine.begin() as conn:
        if tenant_id is not None:
            scope_to_tenant(conn, tenant_id)
        yield conn
