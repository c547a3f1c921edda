"""Store records to wire models."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from portwright.adapters import AdapterRegistry
from portwright.client.models import Event, Job, Portal
from portwright.orchestrator import JobService, public_input
from portwright.results import with_links
from portwright.store import EventRecord, JobRecord, PortalRecord

__all__ = ["event_view", "job_view", "linked_job_view", "portal_view"]


def job_view(
    record: JobRecord, registry: AdapterRegistry | None = None, *, retry_of: str | None = None
) -> Job:
    """The job as answered: its secret input fields (`SecretStr` in the input model of its
    adapter, from `registry`) and any sealed value masked."""
    view = Job.model_validate(record, from_attributes=True)
    known = registry is not None and record.adapter in registry
    model = registry.get(record.adapter).input_model if registry is not None and known else None
    update: dict[str, object] = {"input": public_input(model, record.input)}
    if retry_of:
        update["retry_of"] = retry_of
    return view.model_copy(update=update)


def event_view(record: EventRecord) -> Event:
    return Event.model_validate(record, from_attributes=True)


def portal_view(record: PortalRecord) -> Portal:
    return Portal.model_validate(record, from_attributes=True)


async def linked_job_view(service: JobService, record: JobRecord) -> Job:
    """`job_view` with a fresh signed `result_url` on each result the job stored (a
    presigned S3 URL when the bytes are in a bucket, else the gateway's own link)."""
    view = job_view(record, service.rt.registry)
    links = service.rt.links
    output = record.output
    if links is None or not isinstance(output, Mapping) or not output.get("results"):
        return view
    stored = await asyncio.to_thread(service.store.held.of_job, record.id)
    linked = await asyncio.to_thread(with_links, output, links, blob_key_of=stored.get)
    return view.model_copy(update={"output": linked})
