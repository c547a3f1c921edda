"""A job's output with links on its stored results (what the API and the webhook show)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from portwright.results._links import ResultLinks
from portwright.settings import Settings
from portwright.store import BlobStore

__all__ = ["link_key", "links_from", "with_links"]


def link_key(settings: Settings) -> bytes:
    """The install's link-signing material: its master key (the vault's), so every process
    configured alike signs and checks alike."""
    from portwright.resources.vault import Vault

    return Vault.from_settings(settings).master.key


def links_from(
    settings: Settings, blobs: BlobStore, *, clock: Callable[[], float] = time.time
) -> ResultLinks:
    return ResultLinks(
        link_key(settings),
        blobs=blobs,
        base_url=settings.public_url,
        ttl_s=settings.result_link_ttl_s,
        clock=clock,
    )


def with_links(
    output: Mapping[str, Any] | None,
    links: ResultLinks,
    *,
    blob_key_of: Callable[[str], tuple[str, bool] | None],
    presign: bool = True,
) -> dict[str, Any] | None:
    """`output` with `result_url` and `expires_at` on each entry of its `results`, and a
    top-level `result_url` (the page body's, else the first stored result's).
    `blob_key_of(evidence_id)` → (blob key, held in the database) for this job's evidence,
    or None when it is gone (purged): that entry gets no link."""
    if output is None:
        return None
    view = dict(output)
    stored = view.get("results")
    if not isinstance(stored, Mapping) or not stored:
        return view
    linked: dict[str, Any] = {}
    for kind, entry in stored.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("evidence_id"), str):
            continue
        found = blob_key_of(entry["evidence_id"])
        item = dict(entry)
        if found is None:
            item.update(result_url=None, expires_at=None, purged=True)
        else:
            key, held = found
            link = links.link(entry["evidence_id"], key, presign=presign and not held)
            item.update(result_url=link.url, expires_at=link.expires_at)
        linked[str(kind)] = item
    view["results"] = linked
    first = linked.get("html") or next(iter(linked.values()), None)
    view["result_url"] = first.get("result_url") if first else None
    return view
