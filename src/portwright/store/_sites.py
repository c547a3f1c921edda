"""Per target site state: cooldown and degraded mark, for portals whose jobs reach many sites.

A site's name is `<portal>:<host>` (`site_name`), and `<portal>:<host>#<tenant>` for what
one tenant's own identity caused (a rate limit met on the tenant's sticky session). Its
breaker is the breakers row `site:<portal>:<host>`. Rows are created on first need.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._portals import extend_cooldown_row
from portwright.store._rows import to_records
from portwright.store._schema import sites

__all__ = ["SiteRecord", "SiteRepository", "site_name"]

_MAX_HOST = 160  # a longer host is named by its digest (breaker names hold 200 characters)


def site_name(portal: str, host: str, tenant_id: str | None = None) -> str:
    """The row name of `host` of `portal`, or of one tenant's use of it."""
    key = host if len(host) <= _MAX_HOST else hashlib.sha256(host.encode()).hexdigest()
    name = f"{portal}:{key}"
    return f"{name}#{tenant_id}" if tenant_id else name


# built once (its SQLAlchemy cache key with it): a chunk's fetch step reads it per sub-chunk
_READ = sa.select(sites).where(sites.c.name.in_(sa.bindparam("names", expanding=True)))


@dataclass(frozen=True, slots=True)
class SiteRecord:
    name: str
    portal: str
    host: str
    tenant_id: str | None
    cooldown_until: float | None
    cooldown_reason: str | None
    degraded_since: float | None
    degraded_reason: str | None
    updated_at: float


class SiteRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def read(self, conn: sa.Connection, names: Sequence[str]) -> list[SiteRecord]:
        """The rows of `names` that exist, in the caller's transaction."""
        if not names:
            return []
        rows = conn.execute(_READ, {"names": list(names)})
        return to_records(SiteRecord, rows)

    def get_many(self, names: Sequence[str]) -> list[SiteRecord]:
        with self.engine.connect() as conn:
            return self.read(conn, names)

    def all(self, portal: str | None = None, *, limit: int = 500) -> list[SiteRecord]:
        """Sites most recently changed first (at most `limit`)."""
        query = sa.select(sites).order_by(sites.c.updated_at.desc(), sites.c.name).limit(limit)
        if portal is not None:
            query = query.where(sites.c.portal == portal)
        with self.engine.connect() as conn:
            return to_records(SiteRecord, conn.execute(query))

    def _ensure(
        self, conn: sa.Connection, name: str, portal: str, host: str, tenant_id: str | None
    ) -> None:
        exists = conn.execute(sa.select(sites.c.name).where(sites.c.name == name)).first()
        if exists is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    sites.insert().values(
                        name=name,
                        portal=portal,
                        host=host[:260],
                        tenant_id=tenant_id,
                        updated_at=time.time(),
                    )
                )
        except sa.exc.IntegrityError:
            pass  # another process created it first

    def extend_cooldown(
        self,
        portal: str,
        host: str,
        *,
        tenant_id: str | None = None,
        until: float,
        reason: str,
        cause: str,
        actor: str = "engine",
    ) -> float:
        """Cool the site (or the tenant's use of it) down until at least `until`; returns
        the effective end. An extension is audited like a portal's (`site.cooldown`)."""
        name = site_name(portal, host, tenant_id)
        with self.engine.begin() as conn:
            self._ensure(conn, name, portal, host, tenant_id)
            return extend_cooldown_row(
                conn, sites, name, until=until, reason=reason, audit=(
                    "site.cooldown", "site", tenant_id, actor, cause),
            )  # fmt: skip

    def set_degraded(self, portal: str, host: str, *, reason: str | None) -> None:
        """Mark the site degraded (keeping the first `since`) or, with None, healthy."""
        name = site_name(portal, host)
        with self.engine.begin() as conn:
            if reason is None:
                conn.execute(
                    sites.update()
                    .where(sites.c.name == name, sites.c.degraded_since.is_not(None))
                    .values(degraded_since=None, degraded_reason=None, updated_at=time.time())
                )
                return
            self._ensure(conn, name, portal, host, None)
            conn.execute(
                sites.update()
                .where(sites.c.name == name)
                .values(
                    degraded_since=sa.func.coalesce(sites.c.degraded_since, time.time()),
                    degraded_reason=reason,
                    updated_at=time.time(),
                )
            )
