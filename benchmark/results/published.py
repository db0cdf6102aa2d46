"""The RS numbers the papers print (`results/published/*.csv`), looked up by our method and dataset names.

The CSVs are transcribed from METHODS.md section 7 with a citation per row (see `results/published/README.md`).
They are used only to put the published value beside ours in paper-profile leaderboards; nothing is
computed from them except the mean over targets of a transfer table, which the papers do not print.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "results" / "published"
B2N_REQUIRED = ("method", "dataset", "base", "new", "hm", "citation")
TRANSFER_REQUIRED = ("method", "source", "target", "acc", "citation")
AVERAGE = "average"
COMPUTED = "computed by us: mean of the published per-target values (the papers print no average)"


def method_key(name: str) -> str:
    """Normalised method name: `coop[paper+1a2b3c]` -> `coop`, `zeroshot` -> `clip`, `C-SAW` -> `csaw`."""
    base = name.split("[", 1)[0].strip()
    if base == "zeroshot":
        base = "clip"
    return re.sub(r"[^a-z0-9]", "", base.lower())


@dataclass(frozen=True)
class Value:
    """A published number with an optional caveat from the CSV's `note` column."""

    value: float
    note: str = ""
    citation: str = ""


@dataclass
class Published:
    """Published values of one protocol: (method key, source, dataset or target, metric) -> Value.

    For b2n the source is "" and metrics are base/new/hm; for xd/dg the metric is acc.
    """

    protocol: str
    values: dict[tuple[str, str, str, str], Value] = field(default_factory=dict)
    datasets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> datasets of the published average

    def get(self, method: str, source: str, dataset: str, metric: str) -> Value | None:
        """The published value for our row, or None when the papers have none."""
        return self.values.get((method_key(method), source, dataset, metric))


def published_path(protocol: str, folder: Path | None = None) -> Path:
    """Where the protocol's published CSV lives."""
    return (folder or PUBLISHED_DIR) / f"{protocol}.csv"


def load_table(protocol: str, folder: Path | None = None) -> pd.DataFrame | None:
    """The raw published CSV of a protocol (None when absent); raises ValueError if a required column is missing."""
    path = published_path(protocol, folder)
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"note": str, "note_on": str}, keep_default_na=False)
    required = B2N_REQUIRED if protocol == "b2n" else TRANSFER_REQUIRED
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def load_published(protocol: str, folder: Path | None = None) -> Published | None:
    """Published values of `protocol`, or None when there is no CSV for it."""
    frame = load_table(protocol, folder)
    if frame is None:
        log.info("no published values for %s in %s", protocol, folder or PUBLISHED_DIR)
        return None
    out = Published(protocol)
    if protocol == "b2n":
        for row in frame.itertuples(index=False):
            note, note_on = str(getattr(row, "note", "")), str(getattr(row, "note_on", ""))
            for metric in ("base", "new", "hm"):
                # `note_on` limits a caveat to some metrics (e.g. only the HM is inconsistent); empty: all
                applies = not note_on or metric in note_on.split(",")
                value = Value(float(getattr(row, metric)), note if applies else "", row.citation)
                out.values[(method_key(row.method), "", row.dataset, metric)] = value
        out.datasets[""] = tuple(dict.fromkeys(d for d in frame.dataset if d != AVERAGE))
        return out
    for row in frame.itertuples(index=False):
        value = Value(float(row.acc), str(getattr(row, "note", "")), row.citation)
        out.values[(method_key(row.method), row.source, row.target, "acc")] = value
    for (method, source), group in frame.groupby(["method", "source"], sort=False):
        targets = group[group.target != source]
        out.datasets[source] = tuple(targets.target)
        if len(targets):
            mean = round(float(targets.acc.mean()), 2)
            out.values[(method_key(method), source, AVERAGE, "acc")] = Value(mean, COMPUTED, group.citation.iloc[0])
    return out
