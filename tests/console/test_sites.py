"""The dashboard's Portals card lists target sites that were slowed down (issue 16): staff
see every site; an operator limited to one tenant sees only that tenant's own slowdowns."""

from __future__ import annotations

import secrets
import time
from contextlib import closing

from tests.console._support import Console


def test_the_dashboard_lists_slowed_sites_and_a_tenant_operator_only_its_own(
    console: Console,
) -> None:
    store = console.service.store
    tag = secrets.token_hex(3)
    shop, other = f"shop-{tag}.test:8443", f"news-{tag}.test"
    mine = store.tenants.ensure(f"sites-{tag}")
    store.sites.extend_cooldown(
        "scrape", shop, until=time.time() + 600, reason="429 Too Many Requests", cause="429"
    )
    store.sites.extend_cooldown(
        "scrape",
        other,
        tenant_id=mine.id,
        until=time.time() + 600,
        reason="429 on your session",
        cause="429",
    )
    store.sites.set_degraded("scrape", f"slow-{tag}.test", reason="5xx three times")

    http, _ = console.client(console.operator("viewer"))
    with closing(http):
        page = http.get("/console/").text
    assert f'data-site="{shop}"' in page
    assert "cooling down until" in page
    assert "429 Too Many Requests" in page
    assert f"{other} (tenant {mine.id})" in page
    assert f'data-site="slow-{tag}.test"' in page

    http, _ = console.client(console.operator("viewer", tenant=mine.name))
    with closing(http):
        page = http.get("/console/").text
    assert f"{other} (tenant {mine.id})" in page
    assert shop not in page  # another tenant's scrapes' hosts are not shown to this tenant
    assert f"slow-{tag}.test" not in page
