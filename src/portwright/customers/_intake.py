"""Intake forms: what a tenant fills once and its adapters' jobs read (`sc.intake(name)`).

An adapter names its form (`Adapter.intake`, an `IntakeForm` with a pydantic model); the
portal shows it at `/app/intake/{name}` and the API takes it at `PUT /v1/intake/{name}`.
Both validate with the adapter's own model, so the errors are the job's: each names the
field ("phone", "address.city") and the problem, and nothing is stored until the whole form
is valid. Saving sends input "intake" to the tenant's unfinished jobs of those adapters: a
job waiting for the form (e.g. a directory order in WAITING_FOR_INTAKE) reads it and
proceeds; one that has not started waiting yet finds the message when it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from portwright.orchestrator import ConflictError, JobService
from portwright.sdk import IntakeForm

__all__ = ["FormField", "IntakeError", "Intakes", "form_fields", "nest", "problems_of"]

UNFINISHED = ("queued", "running", "waiting")


class IntakeError(Exception):
    """The form is invalid: `problems` are (field, problem) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{f}: {p}" for f, p in problems[:5])
        super().__init__(f"invalid form: {shown}")


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a form as the portal renders it (nested models flattened: a.b)."""

    name: str
    label: str
    required: bool
    description: str
    kind: str  # "text", "url", "tel"


def _label(name: str) -> str:
    words = name.replace(".", " ").replace("_", " ").split()
    return " ".join(words).capitalize().replace(" url", " URL")


def form_fields(model: type[BaseModel], prefix: str = "") -> list[FormField]:
    out: list[FormField] = []
    for key, info in model.model_fields.items():
        name = f"{prefix}{key}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(form_fields(annotation, prefix=f"{name}."))
            continue
        text = str(annotation)
        kind = "url" if "Url" in text else "tel" if key == "phone" else "text"
        out.append(FormField(name, _label(name), info.is_required(), info.description or "", kind))
    return out


def nest(flat: Mapping[str, str]) -> dict[str, Any]:
    """Form fields named a.b into nested dicts; empty values are left out (so a missing
    required field is named by the model)."""
    out: dict[str, Any] = {}
    for name, raw in flat.items():
        value = raw.strip()
        if not value:
            continue
        parts = name.split(".")
        here = out
        for part in parts[:-1]:
            here = here.setdefault(part, {})
        here[parts[-1]] = value
    return out


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]) or "body", str(e["msg"])) for e in exc.errors()]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        elif value is not None:
            out[f"{prefix}{key}"] = str(value)
    return out


class Intakes:
    """The intake forms the installed adapters declare, and saving them for a tenant."""

    def __init__(self, service: JobService) -> None:
        self.service = service

    def forms(self) -> dict[str, tuple[IntakeForm, list[str]]]:
        """name → (form, the adapters whose jobs read it)."""
        found: dict[str, tuple[IntakeForm, list[str]]] = {}
        registry = self.service.rt.registry
        for name in registry.names():
            form = registry.get(name).intake
            if form is not None:
                found.setdefault(form.name, (form, []))[1].append(name)
        return dict(sorted(found.items()))

    def form(self, name: str) -> tuple[IntakeForm, list[str]] | None:
        return self.forms().get(name)

    @staticmethod
    def validate(form: IntakeForm, data: Any) -> dict[str, Any]:
        """The form's data as its model has it; IntakeError naming every bad field."""
        try:
            return form.model.model_validate(data).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            raise IntakeError(problems_of(exc)) from None

    async def saved(self, tenant_id: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.service.store.intake.get, tenant_id, name)

    async def save(
        self, tenant_id: str, name: str, data: Any, *, actor: str
    ) -> tuple[dict[str, Any], int]:
        """Validate and store the tenant's form, then wake its unfinished jobs: (the stored
        form, how many jobs were told)."""
        found = self.form(name)
        if found is None:
            raise KeyError(name)
        form, adapters = found
        clean = self.validate(form, data)
        store = self.service.store
        before = await asyncio.to_thread(store.intake.updated_at, tenant_id, name)
        await asyncio.to_thread(store.intake.put, tenant_id, name, clean, actor=actor)
        await asyncio.to_thread(
            store.audit.record,
            actor=actor,
            action="intake.saved",
            target_type="intake_form",
            target_id=name,
            before=None if before is None else {"updated_at": before},
            after={"fields": sorted(flatten(clean))},
            tenant_id=tenant_id,
        )
        told = await self._wake(tenant_id, name, adapters, actor)
        return clean, told

    async def _wake(self, tenant_id: str, name: str, adapters: Iterable[str], actor: str) -> int:
        registry = self.service.rt.registry
        told = 0
        for adapter in adapters:
            if "intake" not in registry.get(adapter).inputs:
                continue
            for status in UNFINISHED:
                rows = await asyncio.to_thread(
                    self.service.store.console.find_jobs,
                    tenant_id=tenant_id,
                    adapter=adapter,
                    status=status,
                    limit=1000,
                )
                for job in rows:
                    try:
                        await self.service.provide_input(
                            job.id, "intake", name, actor=actor, tenant_id=tenant_id
                        )
                        told += 1
                    except ConflictError:
                        continue  # it ended meanwhile
        return told
