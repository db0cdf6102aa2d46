"""The few-shot table: accuracy over all classes per shot count K, and the area under the K curve.

Rows are (method, dataset, shots). A method that trains nothing (zero-shot) runs once with shots 0; its
accuracy stands at every K of the table, as a flat line. Per method, dataset and seed, the area under the
accuracy-vs-K curve uses a log2 K axis (trapezoids) normalised by the axis length, so it reads as an
accuracy (0-100): the mean level of the curve, each doubling of K weighted alike. It is computed only for
seeds that have every K of the table (at least two), and its row has shots `area`. The `average` dataset
averages per (K, seed) over the datasets, only seeds that every dataset has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.results.tables import AVERAGE, SEED_COLUMNS, MetricColumn, TableKind, new_figure, order_values, seed_row

AREA = "area"


def area_under_shots(shots: list[int], accuracies: list[float]) -> float:
    """Trapezoid area of accuracy over log2 K, divided by the log2 K range (an accuracy in 0-100)."""
    xs = [math.log2(k) for k in shots]
    span = xs[-1] - xs[0]
    if len(xs) < 2 or span <= 0:
        raise ValueError("the area under the shots curve needs at least two shot counts")
    total = sum((xs[i + 1] - xs[i]) * (accuracies[i] + accuracies[i + 1]) / 2 for i in range(len(xs) - 1))
    return total / span


class ShotsTable(TableKind):
    """Accuracy per (method, dataset, K) and the normalised area under the K curve."""

    name = "shots"
    columns = ("method", "dataset", "shots", "n_seeds", "acc_mean", "acc_std", "acc_ci95")
    key_titles = ("dataset", "shots")
    metrics = (MetricColumn("accuracy", "acc_mean", "acc_std", "all", "acc"),)
    decisive_subsets = ("all",)
    trained_subset = "all"
    average_of = "datasets"
    compared_on = "dataset and K"
    trained_words = "all-class"
    legend = (
        "K: training images per class, every class of the dataset trained and tested. `area`: the area under "
        "the accuracy-vs-K curve on a log2 K axis, divided by the axis length (an accuracy: the curve's mean "
        "level, each doubling of K weighted alike), per seed, then over seeds. Zero-shot runs once and stands "
        "at every K. "
    )
    published_columns = ("method", "dataset", "shots", "acc", "citation")
    headline = ("all", AREA, "area under the K curve")

    def summary_row(self, source: str, dataset: str) -> bool:
        """The `area` rows summarise a curve: no ECE or cost of their own."""
        return source == AREA

    def __init__(self, default_shots: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
        self.default_shots = tuple(default_shots)  # the K axis when no trained run gives one (zero-shot only)

    def seed_values(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """Per-seed accuracy per (method, dataset, K) (`source` = str(K)), the `area` rows and the `average`."""
        acc = long[(long.metric == "acc") & (long.subset == "all") & (long.eval_dataset == long.train_dataset)]
        if acc.empty:
            return pd.DataFrame(columns=list(SEED_COLUMNS))
        table_shots = sorted({int(k) for k in acc.shots if int(k) > 0}) or list(self.default_shots)
        curves: dict[str, dict[str, pd.DataFrame]] = {}  # method -> dataset -> frame(seed x K)
        for (method, dataset), group in acc.groupby(["method", "train_dataset"], sort=True):
            if set(group.shots.astype(int)) == {0}:  # trains nothing: one run stands at every K
                first = group.sort_values("seed", kind="stable").iloc[0]
                value, seed = float(first.value), int(first.seed)
                frame = pd.DataFrame({k: [value] for k in table_shots}, index=pd.Index([seed], name="seed"))
            else:
                frame = group[group.shots > 0].pivot_table(index="seed", columns="shots", values="value")
                frame.columns = [int(k) for k in frame.columns]
            curves.setdefault(method, {})[dataset] = frame
        rows: list[dict[str, Any]] = []
        for method in sorted(curves):
            datasets = order_values(curves[method], order)
            frames = {d: curves[method][d] for d in datasets}
            if len(datasets) > 1:
                common = [k for k in table_shots if all(k in f.columns for f in frames.values())]
                stacked = [f[common].dropna() for f in frames.values()]
                seeds = sorted(set.intersection(*(set(f.index) for f in stacked))) if common else []
                if seeds:
                    frames[AVERAGE] = sum(f.loc[seeds] for f in stacked) / len(stacked)
            for dataset, frame in frames.items():
                rows += _curve_rows(method, dataset, frame, table_shots)
        return pd.DataFrame(rows, columns=list(SEED_COLUMNS))

    def key_columns(self, source: str, dataset: str) -> dict[str, Any]:
        """`dataset` and `shots` (a count, or `area`)."""
        return {"dataset": dataset, "shots": source}

    def row_key(self, row: Any) -> tuple[str, str]:
        """(shots, dataset)."""
        return str(row.shots), row.dataset

    def key_cells(self, source: str, dataset: str) -> list[str]:
        """Dataset and shots cells."""
        return [dataset, source]

    def published_values(self, frame: pd.DataFrame):
        """Accuracy per (method, K, dataset)."""
        from benchmark.results.published import Value, method_key

        values = {}
        for row in frame.itertuples(index=False):
            value = Value(float(row.acc), str(getattr(row, "note", "")), row.citation)
            values[(method_key(row.method), str(row.shots), row.dataset, "acc")] = value
        return values, {}

    def figure(self, wide: pd.DataFrame, title: str, published_at=None):
        """Accuracy against K (log2 axis) per dataset, one line per method, 95% seed intervals as error bars."""
        datasets = list(dict.fromkeys(wide.dataset))
        datasets = [d for d in datasets if d != AVERAGE] + [d for d in datasets if d == AVERAGE]
        cols = min(len(datasets), 3)
        n_rows = -(-len(datasets) // cols)
        fig = new_figure(4.6 * cols, 3.4 * n_rows)
        axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
        for ax in axes[len(datasets) :]:
            ax.set_visible(False)
        curve = wide[wide.shots != AREA].assign(k=lambda f: f.shots.astype(int))
        for ax, dataset in zip(axes, datasets):
            for method, frame in curve[curve.dataset == dataset].groupby("method", sort=True):
                frame = frame.sort_values("k")
                area = wide[(wide.method == method) & (wide.dataset == dataset) & (wide.shots == AREA)]
                label = f"{method} (area {area.acc_mean.iloc[0]:.1f})" if len(area) else method
                style = "--" if frame.acc_std.isna().all() and frame.n_seeds.max() == 1 else "-"
                ax.errorbar(
                    frame.k,
                    frame.acc_mean,
                    yerr=frame.acc_ci95.fillna(0.0),
                    capsize=2,
                    ls=style,
                    marker="o",
                    ms=3,
                    label=label,
                )
            ax.set_xscale("log", base=2)
            ks = sorted(set(curve.k))
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_ylim(0, 100)
            ax.set_xlabel("shots per class (K)", fontsize=8)
            ax.set_ylabel("accuracy (%)", fontsize=8)
            ax.set_title(dataset, fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="lower right")
        fig.suptitle(f"{title}: accuracy over all classes against K (error bars: 95% interval over seeds)", fontsize=10)
        fig.tight_layout()
        return fig


def _curve_rows(method: str, dataset: str, frame: pd.DataFrame, table_shots: list[int]) -> list[dict[str, Any]]:
    rows = []
    for k in [k for k in table_shots if k in frame.columns]:
        values = frame[k].dropna()
        rows += [seed_row(method, str(k), dataset, "all", s, float(v)) for s, v in values.items()]
    if len(table_shots) >= 2 and all(k in frame.columns for k in table_shots):
        complete = frame[table_shots].dropna()
        for seed, accs in complete.iterrows():
            area = area_under_shots(table_shots, [float(a) for a in accs.to_numpy(dtype=np.float64)])
            rows.append(seed_row(method, AREA, dataset, "all", seed, area))
    return rows
