"""Result table kinds: how a protocol's per-run result rows become its leaderboard.

A protocol owns one table kind (`Protocol.table`); the leaderboard, the Markdown and PNG views, the
published-number matching, `compare` and `reproduce` ask the kind, never "which protocol is this?". A
kind turns the long table (one row per run, evaluated dataset, subset and metric) into

* per-seed values (`seed_values`): columns `method, source, dataset, subset, seed, value`, the one table
  the CSV, the Markdown's best marks and `reproduce` read. `source` is what a row is conditioned on
  besides its dataset: the training source of a transfer, the shot count of a few-shot curve, or "";
* the wide leaderboard (`wide`): mean, sample std and Student-t 95% half-width over seeds per row;
* a figure (`figure`) and the Markdown cells of a row (`key_cells`).

Built-in kinds: `BaseNewTable` (b2n), `TransferTable` (xd, dg) and `ShotsTable` (fewshot).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.results.stats import seed_summary

AVERAGE = "average"
DECIMALS = 2
SEED_COLUMNS = ("method", "source", "dataset", "subset", "seed", "value")


@dataclass(frozen=True)
class MetricColumn:
    """One reported quantity of a table kind.

    Attributes:
        title: the Markdown column title.
        mean: the wide column of its seed mean.
        spread: the wide column of its sample std (None: no spread, e.g. an HM of means).
        subset: the `seed_values` subset its per-seed values carry.
        published: the metric name in `results/published/<protocol>.csv`.
    """

    title: str
    mean: str
    spread: str | None
    subset: str
    published: str


def order_values(values: Iterable[str], first: Iterable[str]) -> list[str]:
    """`values` with the names of `first` first (in that order), the rest sorted."""
    present = set(values)
    seen = list(dict.fromkeys(first))
    return [v for v in seen if v in present] + sorted(present - set(seen))


def summary_columns(prefix: str, values: np.ndarray) -> dict[str, float]:
    """`<prefix>_mean`, `_std` (sample, ddof 1) and `_ci95` (Student-t) over seeds; spread NaN for one seed."""
    summary = seed_summary(values)
    return {
        f"{prefix}_mean": round(summary.mean, DECIMALS),
        f"{prefix}_std": round(summary.std, DECIMALS),
        f"{prefix}_ci95": round(summary.ci95, DECIMALS),
    }


def seed_row(method: str, source: str, dataset: str, subset: str, seed: int, value: float) -> dict[str, Any]:
    """One row of `seed_values`."""
    return {"method": method, "source": source, "dataset": dataset, "subset": subset, "seed": int(seed), "value": value}


def row_groups(values: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(method, source, dataset) groups of `seed_values`, in the order they appear."""
    if values.empty:
        return []
    keys = list(dict.fromkeys(zip(values.method, values.source, values.dataset)))
    index = values.set_index(["method", "source", "dataset"]).sort_index()
    return [(key, index.loc[[key]]) for key in keys]


def new_figure(width: float, height: float):
    """A pyplot-free matplotlib Figure (saved with the Agg canvas), safe headless and in workers."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


class TableKind:
    """Base class of result table kinds.

    Attributes:
        name: the kind's name.
        columns: the wide leaderboard's columns.
        key_titles: Markdown titles of a row's key cells (`key_cells`).
        metrics: the reported quantities, in column order.
        decisive_subsets: `seed_values` subsets that `reproduce` tests (others are shown, not decided).
        trained_subset: the subset of the training dataset that tells whether a run collapsed below zero-shot.
        shared_model_average: the rows of one seed's `average` come from one trained model (a transfer), so
            seed-level tests of the average pair per-seed averages, not (dataset, seed) pairs.
        average_of: what an `average` row averages, in words (for legends).
        compared_on: what the methods of one Markdown block share, in words ("dataset", "target").
        trained_words: the accuracy that tells a collapse, in words ("base", "source").
        legend: kind-specific sentences of the Markdown legend.
        published_columns: required columns of `results/published/<protocol>.csv`.
        calibration: (wide column, `seed_values` subset) of each ECE column (`benchmark.results.tables.run_columns`).
        cost_subset: the `seed_values` subset whose rows carry a run's cost.
        headline: (`seed_values` subset, `source` or None for any, title) of the one number per method the cost
            figure plots against training time, read on the `average` row.
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    key_titles: tuple[str, ...] = ("dataset",)
    metrics: tuple[MetricColumn, ...] = ()
    decisive_subsets: tuple[str, ...] = ("all",)
    trained_subset: str = "all"
    shared_model_average: bool = False
    average_of: str = "datasets"
    compared_on: str = "dataset"
    trained_words: str = "training-dataset"
    legend: str = ""
    published_columns: tuple[str, ...] = ()
    calibration: tuple[tuple[str, str], ...] = (("ece", "all"),)
    cost_subset: str = "all"
    headline: tuple[str, str | None, str] = ("all", None, "accuracy")

    def summary_row(self, source: str, dataset: str) -> bool:
        """Whether a wide row summarises a curve (few-shot `area`): it gets no per-run columns."""
        return False

    def seed_values(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """Per-seed values of every leaderboard row (columns `SEED_COLUMNS`)."""
        raise NotImplementedError

    def wide(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """The wide leaderboard: per row, n_seeds and mean/std/ci95 over seeds of each metric."""
        values = self.seed_values(long, order)
        rows = []
        for (method, source, dataset), frame in row_groups(values):
            row: dict[str, Any] = {"method": method, **self.key_columns(source, dataset)}
            n = 0
            for metric in self.metrics:
                seeds = frame[frame.subset == metric.subset].sort_values("seed")["value"].to_numpy()
                n = max(n, len(seeds))
                row.update(summary_columns(metric.mean.removesuffix("_mean"), seeds))
            row["n_seeds"] = n
            rows.append(row)
        return pd.DataFrame(rows, columns=list(self.columns))

    def key_columns(self, source: str, dataset: str) -> dict[str, Any]:
        """The wide columns that identify a row besides the method."""
        return {"dataset": dataset}

    def row_key(self, row: Any) -> tuple[str, str]:
        """(source, dataset) of a wide row (inverse of `key_columns`)."""
        return "", row.dataset

    def key_cells(self, source: str, dataset: str) -> list[str]:
        """The Markdown cells of `key_titles` for a row."""
        return [dataset]

    def covered(self, wide: pd.DataFrame, method: str, source: str) -> tuple[str, ...]:
        """The datasets the `average` row of (method, source) averages (for matching a published average)."""
        keys = [self.row_key(r) for r in wide[wide.method == method].itertuples(index=False)]
        return tuple(d for s, d in keys if s == source and d != AVERAGE)

    def published_values(self, frame: pd.DataFrame) -> tuple[dict[tuple[str, str, str, str], Any], dict]:
        """((method, source, dataset, metric) -> (value, note, citation), source -> datasets of the published average).

        The base kind has no published numbers; kinds that do override this.
        """
        return {}, {}

    def figure(self, wide: pd.DataFrame, title: str, published_at=None):
        """The leaderboard figure. `published_at(method, source, dataset, metric)` gives a published value or None."""
        raise NotImplementedError
