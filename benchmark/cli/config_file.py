"""`run --config FILE.yaml`: every `run` option from a YAML file; command-line flags override it.

    # sweep.yaml
    methods: [coop, zeroshot]
    protocol: b2n
    seeds: [1, 2, 3]
    shots: [1, 4, 16]
    set: {coop.n_ctx: 4, epochs: 5}
    executor: local
    workers: 2

Keys are the option names of `run` (`data-root` and `data_root` both work; `set` holds the
overrides, as a mapping or a list of `key=value` strings). The file is read with `yaml.safe_load`
(no Python objects), and an unknown key or a value of the wrong type is a one-line `UsageError`
naming the file and the key, before any work starts. Values come back in the form the command line
gives them (strings, comma lists, `key=value` items), so both paths share one validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.errors import UsageError
from benchmark.registry import unknown_name_message

Kind = Literal["str", "bool", "int", "ints", "names", "presets", "assignments"]

EXPECTED = {
    "str": "a string",
    "bool": "true or false",
    "int": "an integer",
    "ints": "an integer or a list of integers",
    "names": "a name, a comma-separated string or a list of names",
    "presets": "a preset, a list of presets or METHOD=PRESET items, or a mapping method: preset",
    "assignments": "a mapping key: value or a list of key=value strings",
}


@dataclass(frozen=True)
class Option:
    """One `run` option as a config key: argparse `dest`, the accepted key spellings, the value kind."""

    dest: str
    keys: tuple[str, ...]
    kind: Kind


def _norm(key: str) -> str:
    return key.strip().replace("-", "_")


def _scalar(value: Any) -> str:
    """A YAML scalar as the command line would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _convert(value: Any, kind: Kind) -> str | bool | list[str] | None:
    """The command-line form of `value`, or None when it is not of `kind`."""
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "str":
        return value if isinstance(value, str) else None
    if kind == "int":
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "ints":
        items = value if isinstance(value, list) else [value]
        ok = items and all(isinstance(v, int) and not isinstance(v, bool) for v in items)
        return ",".join(map(str, items)) if ok else None
    if kind == "names":
        items = value if isinstance(value, list) else [value]
        return ",".join(items) if items and all(isinstance(v, str) for v in items) else None
    if kind == "presets":
        if isinstance(value, dict):
            ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            return [f"{k}={v}" for k, v in value.items()] if ok else None
        items = value if isinstance(value, list) else [value]
        return list(items) if all(isinstance(v, str) for v in items) else None
    if kind == "assignments":
        if isinstance(value, dict):
            ok = all(isinstance(k, str) for k in value) and all(
                _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)) for v in value.values()
            )
            if not ok:
                return None
            return [f"{k}={','.join(map(_scalar, v)) if isinstance(v, list) else _scalar(v)}" for k, v in value.items()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        return None
    raise ValueError(f"unknown option kind {kind!r}")


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path}: cannot read it ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UsageError(f"config file {path}: invalid YAML{where}: {problem}") from None


def load_run_config(path: str | Path, options: Sequence[Option]) -> dict[str, str | bool | list[str]]:
    """Read a YAML config of `run` options; return {dest: value in command-line form}.

    Raises:
        UsageError: file missing or unreadable, invalid YAML, not a mapping, an unknown key
            (with suggestions), a key given twice under two spellings, or a value of the wrong type.
    """
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a mapping of run options, got {type(data).__name__}")
    by_key = {_norm(key): option for option in options for key in option.keys}
    out: dict[str, str | bool | list[str]] = {}
    for raw_key, value in data.items():
        if not isinstance(raw_key, str):
            raise UsageError(f"config file {path}: key {raw_key!r} is not a string")
        option = by_key.get(_norm(raw_key))
        if option is None:
            choices = sorted({option.keys[0] for option in options})
            raise UsageError(f"config file {path}: {unknown_name_message('run option', raw_key, choices)}")
        if option.dest in out:
            raise UsageError(f"config file {path}: option {raw_key!r} is given twice")
        converted = _convert(value, option.kind)
        if converted is None:
            raise UsageError(f"config file {path}: {raw_key!r} expects {EXPECTED[option.kind]}, got {value!r}")
        out[option.dest] = converted
    return out


def merge(config: Mapping[str, Any], given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve each option: the command line wins, then the config file, then the default.

    List options (`--set`, `--preset`) are concatenated, file first, so a flag overrides the
    file's value for the same key (the last `key=value` wins).
    """
    out: dict[str, Any] = {}
    for dest, default in defaults.items():
        flag, filed = given.get(dest), config.get(dest)
        if isinstance(default, list):
            out[dest] = [*(filed or []), *(flag or [])]
        elif flag is not None:
            out[dest] = flag
        elif filed is not None:
            out[dest] = filed
        else:
            out[dest] = default
    return out
