"""The base-to-novel table: base and new accuracy per dataset and their harmonic mean (HM).

Per seed, a dataset row has `base`, `new` and `hm` (the per-seed HM, for seed-level tests of the HM
column); the `average` row averages base and new per seed over the datasets (only seeds that every
dataset has), then over seeds. The wide HM is that of the seed-averaged base and new, as the papers
compute it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.results.tables import (
    AVERAGE,
    DECIMALS,
    SEED_COLUMNS,
    MetricColumn,
    TableKind,
    new_figure,
    order_values,
    row_groups,
    seed_row,
    summary_columns,
)

COLUMNS = (
    "method",
    "dataset",
    "n_seeds",
    "base_mean",
    "base_std",
    "base_ci95",
    "new_mean",
    "new_std",
    "new_ci95",
    "hm",
)


def harmonic_mean(base: float, new: float) -> float:
    """HM = 2BN / (B + N); 0 when both are 0; NaN (n/a) when either is (a method that cannot score new classes)."""
    if math.isnan(base) or math.isnan(new):
        return float("nan")
    return 2 * base * new / (base + new) if base + new > 0 else 0.0


class BaseNewTable(TableKind):
    """Base / new / HM per training dataset (the training dataset is also the evaluated one)."""

    name = "base_new"
    columns = COLUMNS
    key_titles = ("dataset",)
    metrics = (
        MetricColumn("base", "base_mean", "base_std", "base", "base"),
        MetricColumn("new", "new_mean", "new_std", "new", "new"),
        MetricColumn("HM", "hm", None, "hm", "hm"),
    )
    decisive_subsets = ("base", "new")
    trained_subset = "base"
    average_of = "datasets"
    compared_on = "dataset"
    trained_words = "base"
    legend = "HM is of the seed-averaged base and new. "
    published_columns = ("method", "dataset", "base", "new", "hm", "citation")
    calibration = (("ece_base", "base"), ("ece_new", "new"))
    cost_subset = "base"
    headline = ("hm", "", "HM")

    def seed_values(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """Per-seed base, new and HM per (method, dataset), plus the `average` dataset."""
        acc = long[(long.metric == "acc") & long.subset.isin(["base", "new"])]
        acc = acc[acc.eval_dataset == acc.train_dataset]
        if acc.empty:
            return pd.DataFrame(columns=list(SEED_COLUMNS))
        # A NaN `new` row is an evaluation the method cannot make (n/a); it stays, and so does its base.
        per_seed = (
            acc.groupby(["method", "train_dataset", "seed", "subset"])["value"]
            .first()
            .unstack("subset")
            .reindex(columns=["base", "new"])
        )
        has_new = acc[acc.subset == "new"].set_index(["method", "train_dataset", "seed"]).index
        per_seed = per_seed[per_seed["base"].notna() & per_seed.index.isin(has_new)]
        rows: list[dict[str, Any]] = []
        for method in sorted(set(per_seed.index.get_level_values(0))):
            sub = per_seed.loc[method].reset_index()
            datasets = order_values(sub.train_dataset, order)
            for dataset in datasets:
                rows += _rows(method, dataset, sub[sub.train_dataset == dataset])
            if len(datasets) > 1:
                base = sub.pivot_table(index="seed", columns="train_dataset", values="base").dropna()
                new = sub.set_index(["seed", "train_dataset"])["new"].unstack().reindex(base.index)
                if len(base):
                    # n/a on any dataset makes the new average n/a (a partial average would mislead)
                    average = pd.DataFrame(
                        {"seed": base.index, "base": base.mean(axis=1), "new": new.mean(axis=1, skipna=False)}
                    )
                    rows += _rows(method, AVERAGE, average)
        return pd.DataFrame(rows, columns=list(SEED_COLUMNS))

    def wide(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """Per (method, dataset): mean/std/ci95 over seeds of base and new, and the HM of the two means."""
        rows = []
        for (method, _, dataset), frame in row_groups(self.seed_values(long, order)):
            base = frame[frame.subset == "base"].sort_values("seed")["value"].to_numpy()
            new = frame[frame.subset == "new"].sort_values("seed")["value"].to_numpy()
            hm = harmonic_mean(float(np.mean(base)), float(np.mean(new)))  # from the unrounded means
            rows.append(
                {
                    "method": method,
                    "dataset": dataset,
                    "n_seeds": len(base),
                    **summary_columns("base", base),
                    **summary_columns("new", new),
                    "hm": round(hm, DECIMALS),
                }
            )
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def published_values(self, frame: pd.DataFrame):
        """Base, new and HM per (method, dataset); `note_on` limits a row's caveat to some metrics."""
        from benchmark.results.published import Value, method_key

        values = {}
        for row in frame.itertuples(index=False):
            note, note_on = str(getattr(row, "note", "")), str(getattr(row, "note_on", ""))
            for metric in ("base", "new", "hm"):
                applies = not note_on or metric in note_on.split(",")
                values[(method_key(row.method), "", row.dataset, metric)] = Value(
                    float(getattr(row, metric)), note if applies else "", row.citation
                )
        return values, {"": tuple(dict.fromkeys(d for d in frame.dataset if d != AVERAGE))}

    def figure(self, wide: pd.DataFrame, title: str, published_at=None):
        """Grouped bars of base / new / HM per method, one panel per dataset, with 95% seed intervals."""
        groups = [(d, wide[wide.dataset == d].sort_values("method", kind="stable")) for d in _datasets(wide)]
        cols = min(len(groups), 3)
        n_rows = -(-len(groups) // cols)
        n_methods = max(len(g) for _, g in groups)
        fig = new_figure(max(4.0, 1.1 * n_methods + 1.5) * cols, 3.6 * n_rows)
        axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
        for ax in axes[len(groups) :]:
            ax.set_visible(False)
        width = 0.27
        for ax, (dataset, frame) in zip(axes, groups):
            x = list(range(len(frame)))
            for i, metric in enumerate(self.metrics):
                ci = frame[metric.mean.replace("_mean", "_ci95")].fillna(0.0) if metric.spread else None
                pos = [v + (i - 1) * width for v in x]
                ax.bar(pos, frame[metric.mean], width, yerr=ci, capsize=2, label=metric.title)
                if published_at is not None:
                    values = [published_at(m, "", dataset, metric.published) for m in frame.method]
                    pts = [(p, v.value) for p, v in zip(pos, values) if v is not None]
                    if pts:
                        label = "published" if i == 0 else None
                        ax.scatter(*zip(*pts), marker="_", s=120, color="black", zorder=3, label=label)
            ax.set_title(dataset, fontsize=10)
            ax.set_xticks(x, list(frame.method), rotation=25, ha="right", fontsize=8)
            ax.set_ylim(0, 100)
            ax.set_ylabel("accuracy (%)", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend(fontsize=7, loc="lower right", ncol=2)
        fig.suptitle(f"{title}: base / new / HM (error bars: 95% interval over seeds)", fontsize=10)
        fig.tight_layout()
        return fig


def _datasets(wide: pd.DataFrame) -> list[str]:
    datasets = list(dict.fromkeys(wide.dataset))
    return [d for d in datasets if d != AVERAGE] + [d for d in datasets if d == AVERAGE]


def _rows(method: str, dataset: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for seed, base, new in zip(frame["seed"], frame["base"], frame["new"]):
        for subset, value in (("base", base), ("new", new), ("hm", harmonic_mean(base, new))):
            rows.append(seed_row(method, "", dataset, subset, seed, value))
    return rows
