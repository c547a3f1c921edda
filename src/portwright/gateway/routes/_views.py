"""Store records to wire models."""

from __future__ import annotations

from portwright.client._models import Event, Job, Portal
from portwright.store import EventRecord, JobRecord, PortalRecord

__all__ = ["event_view", "job_view", "portal_view"]


def job_view(record: JobRecord, *, retry_of: str | None = None) -> Job:
    view = Job.model_validate(record, from_attributes=True)
    return view.model_copy(update={"retry_of": retry_of}) if retry_of else view


def event_view(record: EventRecord) -> Event:
    return Event.model_validate(record, from_attributes=True)


def portal_view(record: PortalRecord) -> Portal:
    return Portal.model_validate(record, from_attributes=True)
