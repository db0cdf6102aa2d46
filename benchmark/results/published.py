"""The RS numbers the papers print (`results/published/*.csv`), looked up by our method and dataset names.

The CSVs are transcribed from the papers' tables with a citation per row (see `results/published/README.md`).
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
AVERAGE = "average"


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
    """Published values of one protocol: (method key, source, dataset, metric) -> Value.

    The key's parts are those of the protocol's table kind (`benchmark.results.tables`): for b2n the
    source is "" and metrics are base/new/hm; for xd/dg the source is the training dataset and the
    metric acc; for few-shot the source is the shot count.
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


def _kind(protocol: str):
    from benchmark.registry import PROTOCOLS

    return PROTOCOLS.get(protocol).table


def load_table(protocol: str, folder: Path | None = None) -> pd.DataFrame | None:
    """The raw published CSV of a protocol (None when absent); raises ValueError if a required column is missing."""
    path = published_path(protocol, folder)
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"note": str, "note_on": str}, keep_default_na=False)
    missing = [c for c in _kind(protocol).published_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def load_published(protocol: str, folder: Path | None = None) -> Published | None:
    """Published values of `protocol` (parsed by its table kind), or None when there is no CSV for it."""
    frame = load_table(protocol, folder)
    if frame is None:
        log.info("no published values for %s in %s", protocol, folder or PUBLISHED_DIR)
        return None
    values, datasets = _kind(protocol).published_values(frame)
    return Published(protocol, values, datasets)
