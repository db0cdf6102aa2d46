"""Typed `key=value` overrides for frozen config dataclasses.

`--set n_ctx=8` or `--set train.epochs=5` is applied with `dataclasses.replace` after coercing the
string to the field's declared type; unknown keys and values of the wrong type raise `UsageError`
before any work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from benchmark.errors import UsageError
from benchmark.registry import unknown_name_message

C = TypeVar("C")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert `value` (a string from the command line, or a YAML scalar) to `annotation`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        errors = []
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0])
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise UsageError(f"override {key}={value!r}: expected one of {', '.join(map(str, allowed))}")
        return value
    if origin in (tuple, list):
        (item_type, *_) = typing.get_args(annotation) or (str,)
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v]
        return tuple(_coerce(v, item_type, key) for v in items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise UsageError(f"override {key}={value!r}: expected a boolean (true/false)")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise UsageError(f"override {key}={value!r}: expected {annotation.__name__}")
        try:
            number = annotation(value)
        except (TypeError, ValueError):
            raise UsageError(f"override {key}={value!r}: expected {annotation.__name__}") from None
        if annotation is int and isinstance(value, float) and value != number:
            raise UsageError(f"override {key}={value!r}: expected int")
        return number
    if annotation is str:
        return str(value)
    raise UsageError(f"override {key}: unsupported field type {annotation!r}")


def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def apply_overrides(cfg: C, overrides: Mapping[str, Any], *, where: str) -> C:
    """Return `cfg` with `overrides` applied, each value coerced to its field's type."""
    if not overrides:
        return cfg
    types_ = field_types(type(cfg))
    changes = {}
    for key, value in overrides.items():
        if key not in types_:
            raise UsageError(unknown_name_message(f"{where} config key", key, types_))
        changes[key] = _coerce(value, types_[key], key)
    try:
        return dataclasses.replace(cfg, **changes)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"override for {where}: {exc}") from None


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """Parse `key=value` strings (the `--set` flag) into a dict, keeping the last of repeated keys."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def to_plain(obj: Any) -> Any:
    """A JSON-ready copy of a (nested) dataclass: tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj
