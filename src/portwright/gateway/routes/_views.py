"""Store records to wire models."""

from __future__ import annotations

import asyncio
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.client.models import Event, Job, Portal
from portwright.orchestrator import JobService, public_input
from portwright.results import with_links
from portwright.store import EventRecord, JobRecord, PortalRecord

__all__ = [
    "answer_json",
    "event_view",
    "job_view",
    "job_views_json",
    "linked_job_view",
    "portal_view",
]


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


def _exact_types(annotation: Any) -> tuple[type, ...] | None:
    """The Python types a value of `annotation` has when `Job` dumps it unchanged in JSON
    mode (None: an annotation `job_views_json` does not read directly)."""
    if annotation in (str, int, float, bool):
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin is dict and typing.get_args(annotation) == (str, Any):
        return (dict,)
    if origin is typing.Union or origin is types.UnionType:
        found: tuple[type, ...] = ()
        for arg in typing.get_args(annotation):
            exact = (type(None),) if arg is type(None) else _exact_types(arg)
            if exact is None:
                return None
            found += exact
        return found
    return None


_RECORD_FIELDS = frozenset(JobRecord.__dataclass_fields__)
_NOT_READ: tuple[type, ...] = ()
# each field of `Job` in order: (name, the types its record value may have to be shown as
# it is, the default shown for a field records do not have); no types: not read directly
_PLAN: tuple[tuple[str, tuple[type, ...], Any], ...] = tuple(
    (name, exact, None) if name in _RECORD_FIELDS else (name, _NOT_READ, default)
    for name, info in Job.model_fields.items()
    for exact in [_exact_types(info.annotation) or _NOT_READ]
    for default in [info.get_default(call_default_factory=True)]
)
_PLAIN_MODEL = (  # dumped field by field as given: no aliases, serializers, computed fields
    not Job.model_computed_fields
    and not Job.__pydantic_decorators__.field_serializers
    and not Job.__pydantic_decorators__.model_serializers
    and all(
        info.alias is None and info.serialization_alias is None
        for info in Job.model_fields.values()
    )
)
DIRECT_VIEWS = _PLAIN_MODEL and not any(
    (name in _RECORD_FIELDS and not exact)
    or (name not in _RECORD_FIELDS and type(default) not in (str, int, float, bool, type(None)))
    for name, exact, default in _PLAN
)
"""Whether `job_views_json` reads `Job`'s fields straight off records (else every view
goes through `job_view`; the tests hold it true)."""


def job_views_json(
    records: Iterable[JobRecord], registry: AdapterRegistry | None = None
) -> list[dict[str, Any]]:
    """`[job_view(r, registry).model_dump(mode="json") for r in records]`, cheaper: each
    record's fields read straight into a dict in `Job`'s field order (JSON values already),
    its input shown through `public_input` with its adapter's input model, looked up once
    per adapter. A record with a value `Job` would convert (e.g. an int for a float) goes
    through `job_view`."""
    models: dict[str, type[BaseModel] | None] = {}
    views: list[dict[str, Any]] = []
    for record in records:
        view: dict[str, Any] | None = {} if DIRECT_VIEWS else None
        for name, exact, default in _PLAN if DIRECT_VIEWS else ():
            if not exact:
                view[name] = default  # type: ignore[index]
                continue
            value = getattr(record, name)
            if type(value) not in exact:
                view = None
                break
            view[name] = value  # type: ignore[index]
        if view is None:
            views.append(job_view(record, registry).model_dump(mode="json"))
            continue
        adapter = record.adapter
        if adapter in models:
            model = models[adapter]
        else:
            known = registry is not None and adapter in registry
            model = registry.get(adapter).input_model if registry is not None and known else None
            models[adapter] = model
        view["input"] = public_input(model, record.input)  # in its place: the key is there
        views.append(view)
    return views


def answer_json(content: Any) -> bytes:
    """`JSONResponse(content)`'s body, by orjson: a tenth of the CPU of its `json.dumps`
    (~12 ms for a batch's 1,000 job views). The same values (a float may be written another
    way: `1e16`, not `1e+16`); what orjson refuses (an integer beyond 64 bits, a lone
    surrogate, deeper nesting than it takes) is written by `json.dumps` as `JSONResponse`
    writes it. NaN and the infinities, which `JSONResponse` refuses and orjson writes as
    null, are not among what job views show: stored inputs are pydantic's JSON dumps (null
    already), a record's times clock readings."""
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")


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
