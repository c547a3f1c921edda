"""Secret input fields: an adapter marks a field of its input model secret by typing it
`pydantic.SecretStr`, at any depth (nested models, lists, dicts, optionals). The platform
seals such values before it stores a job, hands the adapter the real value, and shows
`SECRET_MASK` wherever a job's input is read (API answers, events, the console, the CLI)."""

from __future__ import annotations

import collections.abc
import functools
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

__all__ = [
    "SECRET_MASK",
    "dump_with_secrets",
    "has_secret_fields",
    "map_secret_fields",
    "mask_secret_fields",
]

SECRET_MASK = "**********"  # noqa: S105 - what pydantic shows for a SecretStr, not a secret

_SEQUENCES = (list, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_MAX_DEPTH = 64


def dump_with_secrets(model: BaseModel, seal: Callable[[str], str]) -> dict[str, Any]:
    """The model's JSON dump with each `SecretStr` value replaced by `seal(its real value)`
    (a plain JSON dump shows pydantic's mask there and loses the value)."""
    as_json = model.model_dump(mode="json")
    if not has_secret_fields(type(model)):
        return as_json
    as_python = model.model_dump(mode="python")
    merged: dict[str, Any] = _merge(as_json, as_python, seal, 0)
    return merged


def _merge(js: Any, py: Any, seal: Callable[[str], str], depth: int) -> Any:
    if isinstance(py, SecretStr):
        return seal(py.get_secret_value())
    if depth > _MAX_DEPTH:
        return js
    if isinstance(js, dict) and isinstance(py, dict):
        return {k: _merge(v, py[k], seal, depth + 1) if k in py else v for k, v in js.items()}
    if isinstance(js, list) and isinstance(py, list | tuple) and len(js) == len(py):
        return [_merge(j, p, seal, depth + 1) for j, p in zip(js, py, strict=True)]
    return js


def map_secret_fields(model: type[BaseModel], data: Any, fn: Callable[[str], str]) -> Any:
    """A copy of `data` (a JSON dump of `model`) with `fn` applied to each string at a
    position the model types `SecretStr`. Anything that does not fit the model is kept.
    A model without any `SecretStr` field gives `data` itself (nothing to apply `fn` to)."""
    if not has_secret_fields(model):
        return data
    return _walk(model, data, fn, 0)


@functools.cache
def has_secret_fields(model: type[BaseModel]) -> bool:
    """Whether `model` types any field `SecretStr`, at any depth (remembered per model: a
    batch masks and seals a thousand inputs of the same model)."""
    return _types_secret(model, set())


def _types_secret(tp: Any, seen: set[Any]) -> bool:
    if tp is SecretStr:
        return True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:  # a model that contains itself: its other fields decide
            return False
        seen.add(tp)
        return any(_types_secret(info.annotation, seen) for info in tp.model_fields.values())
    return any(_types_secret(arg, seen) for arg in get_args(tp) if arg is not Ellipsis)


def mask_secret_fields(model: type[BaseModel], data: Any) -> Any:
    """A copy of `data` with `SECRET_MASK` at each `SecretStr` position of `model`."""
    return map_secret_fields(model, data, lambda _: SECRET_MASK)


def _walk(tp: Any, value: Any, fn: Callable[[str], str], depth: int) -> Any:  # noqa: PLR0911
    if depth > _MAX_DEPTH or value is None:
        return value
    if tp is SecretStr:
        return fn(value) if isinstance(value, str) else value
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return _walk(args[0], value, fn, depth + 1)
    if origin is Union or origin is types.UnionType:
        for arg in args:  # each option that fits the value's shape (masking is idempotent)
            value = _walk(arg, value, fn, depth + 1)
        return value
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(value, dict):
        fields = {}
        for name, info in tp.model_fields.items():
            fields[name] = info.annotation
            if info.alias:
                fields[info.alias] = info.annotation
        return {
            k: _walk(fields[k], v, fn, depth + 1) if k in fields else v for k, v in value.items()
        }
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return [_walk(args[0], v, fn, depth + 1) for v in value]
        return [
            _walk(args[i], v, fn, depth + 1) if i < len(args) else v for i, v in enumerate(value)
        ]
    if origin in _SEQUENCES and args and isinstance(value, list):
        return [_walk(args[0], v, fn, depth + 1) for v in value]
    if origin in _MAPPINGS and len(args) == 2 and isinstance(value, dict):
        return {k: _walk(args[1], v, fn, depth + 1) for k, v in value.items()}
    return value
