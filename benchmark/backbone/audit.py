"""The weight-loading audit: every tensor of the architecture comes from the checkpoint, or the load is refused.

A non-strict `load_state_dict` (GeoRSCLIP's README loads with `strict=False`) silently skips every key
that does not match, and a model whose text tower kept its random initialisation still runs, with
chance-level numbers that look like a method's failure. Here a checkpoint is compared key by key with the
architecture it is loaded into, and the differences are reported by tower:

* `visual`: `visual.*`;
* `text`: `transformer.*`, `token_embedding`, `positional_embedding`, `ln_final`, `text_projection` (and
  `text.*` of open_clip's custom text towers);
* `logit_scale`: the temperature (`logit_scale`, `logit_bias`);
* `other`: anything else.

A shape mismatch is always refused (the wrong architecture). A missing or unexpected key is refused too,
with one line naming the first keys of each tower, unless the user allows a partial load
(`--allow-partial-weights`): then the missing weights keep the architecture's (seeded) initialisation,
the unexpected ones are ignored, a warning lists them, and the runs are tagged (`WeightReport.tags`).
Imports nothing heavy: it compares names and shapes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmark.errors import UsageError

log = logging.getLogger(__name__)

TOWERS = ("visual", "text", "logit_scale", "other")
TEXT_ROOTS = frozenset(
    {"transformer", "token_embedding", "positional_embedding", "ln_final", "text_projection", "text"}
)
SHOWN_KEYS = 3  # keys named per tower in a message
ALLOW_FLAG = "--allow-partial-weights"


def tower_of(key: str) -> str:
    """The tower a state-dict key belongs to (see the module docstring)."""
    root = key.split(".", 1)[0]
    if root == "visual":
        return "visual"
    if root in TEXT_ROOTS:
        return "text"
    if root in ("logit_scale", "logit_bias"):
        return "logit_scale"
    return "other"


def _by_tower(keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for key in keys:
        grouped.setdefault(tower_of(key), []).append(key)
    return {tower: tuple(grouped[tower]) for tower in TOWERS if tower in grouped}


@dataclass(frozen=True)
class WeightReport:
    """How a checkpoint's keys compare with its architecture's.

    Attributes:
        expected: tower -> number of tensors the architecture has there.
        missing: tower -> keys of the architecture absent from the file (architecture order).
        unexpected: tower -> keys of the file the architecture does not have (file order).
        mismatched: (key, shape in the file, shape expected) for keys present in both with other shapes.
        allowed: the load went ahead with missing or unexpected keys (`--allow-partial-weights`).
    """

    expected: dict[str, int]
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unexpected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()
    allowed: bool = False

    @property
    def n_missing(self) -> int:
        """Tensors of the architecture the file does not provide."""
        return sum(map(len, self.missing.values()))

    @property
    def n_unexpected(self) -> int:
        """Tensors of the file the architecture has no place for."""
        return sum(map(len, self.unexpected.values()))

    @property
    def complete(self) -> bool:
        """Every tensor of the architecture comes from the file, and the file holds nothing else."""
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """Missing and unexpected keys by tower, first keys named: `text 148 of 148 missing (a, b, c, ...)`."""
        parts = []
        for what, groups in (("missing", self.missing), ("unexpected", self.unexpected)):
            for tower, keys in groups.items():
                shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
                count = f"{len(keys)} of {self.expected[tower]}" if what == "missing" else str(len(keys))
                whole = ", the whole tower" if what == "missing" and len(keys) == self.expected.get(tower) else ""
                parts.append(f"{tower} {count} {what}{whole} ({shown})")
        return "; ".join(parts)

    def loaded(self) -> str:
        """Tensors loaded per tower: `visual 152, text 148, logit_scale 1`."""
        counts = {t: n - len(self.missing.get(t, ())) for t, n in self.expected.items()}
        return ", ".join(f"{tower} {count}" for tower, count in counts.items())

    def tags(self) -> dict[str, str]:
        """Run tags for an allowed partial load (none for a complete one)."""
        if not self.allowed or self.complete:
            return {}
        tags = {"partial_weights": str(self.n_missing)}
        if self.unexpected:
            tags["unexpected_weights"] = str(self.n_unexpected)
        return tags


def audit_state(expected: Mapping[str, Sequence[int]], state: Mapping[str, Any]) -> WeightReport:
    """Compare a checkpoint's state dict with the architecture's names and shapes.

    Args:
        expected: key -> shape of every tensor the architecture loads (its `state_dict()`; meta tensors do).
        state: the checkpoint's state dict (tensors, or anything with a `shape`).
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = tuple(
        (k, tuple(state[k].shape), tuple(expected[k]))
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k])
    )
    counts = {tower: 0 for tower in TOWERS}
    for key in expected:
        counts[tower_of(key)] += 1
    return WeightReport(
        expected={t: n for t, n in counts.items() if n},
        missing=_by_tower(missing),
        unexpected=_by_tower(unexpected),
        mismatched=mismatched,
    )


def enforce(report: WeightReport, *, label: str, model: str, allow_partial: bool = False) -> WeightReport:
    """Refuse a checkpoint that does not fill its architecture; log what a load leaves out.

    Returns the report, marked `allowed` when missing or unexpected keys were let through.

    Raises:
        UsageError: one line naming the first mismatched shape, or the missing and unexpected keys by
            tower (unless `allow_partial`).
    """
    head = f"cannot load backbone {label}: the file does not fit {model}"
    if report.mismatched:
        key, found, want = report.mismatched[0]
        more = f" (and {len(report.mismatched) - 1} more shapes differ)" if len(report.mismatched) > 1 else ""
        raise UsageError(f"{head}: {key} has shape {found}, {model} expects {want}{more}")
    if report.complete:
        log.info("backbone %s: every weight loaded from the file (%s)", label, report.loaded())
        return report
    counts = []
    if report.missing:
        first = next(iter(report.missing.values()))[0]
        counts.append(f"{report.n_missing} missing keys (first {first!r})")
    if report.unexpected:
        first = next(iter(report.unexpected.values()))[0]
        counts.append(f"{report.n_unexpected} unexpected keys (first {first!r})")
    detail = f"{', '.join(counts)}: {report.describe()}"
    if not allow_partial:
        stays = "; the missing weights would keep their random initialisation" if report.missing else ""
        raise UsageError(f"{head}: {detail}{stays}; pass {ALLOW_FLAG} to load it anyway")
    log.warning(
        "backbone %s: loaded with %s although %s; missing weights keep their initialisation, unexpected ones are"
        " ignored (runs tagged partial_weights=%d)",
        label,
        ALLOW_FLAG,
        detail,
        report.n_missing,
    )
    return replace(report, allowed=True)
