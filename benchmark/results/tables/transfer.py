"""The transfer table (cross-dataset, domain generalization): accuracy per target of a trained source.

Rows are (method, source, target) with the source's own test split first, then the targets, then an
`average` over the targets (not the source), per seed. All targets of one seed are scored by the same
trained model, so seed-level tests of the average pair per-seed averages (`shared_model_average`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from benchmark.results.tables import AVERAGE, SEED_COLUMNS, MetricColumn, TableKind, new_figure, order_values, seed_row

COMPUTED = "computed by us: mean of the published per-target values (the papers print no average)"


class TransferTable(TableKind):
    """Accuracy of each (method, source) on the source and on every target."""

    name = "transfer"
    columns = ("method", "source", "target", "n_seeds", "acc_mean", "acc_std", "acc_ci95")
    key_titles = ("source", "target")
    metrics = (MetricColumn("accuracy", "acc_mean", "acc_std", "all", "acc"),)
    decisive_subsets = ("all",)
    trained_subset = "all"
    shared_model_average = True
    average_of = "targets (not the source)"
    compared_on = "target"
    trained_words = "source"
    published_columns = ("method", "source", "target", "acc", "citation")
    headline = ("all", None, "target average")

    def seed_values(self, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
        """Per-seed accuracy per (method, source, target), plus the per-seed `average` over the targets."""
        acc = long[(long.metric == "acc") & (long.subset == "all")]
        rows: list[dict[str, Any]] = []
        for (method, source), group in acc.groupby(["method", "train_dataset"], sort=True):
            targets = order_values(group.eval_dataset, [source, *order])
            for target in targets:
                frame = group[group.eval_dataset == target].sort_values("seed")
                rows += [seed_row(method, source, target, "all", s, v) for s, v in zip(frame.seed, frame.value)]
            others = [t for t in targets if t != source]
            if others:
                cells = group[group.eval_dataset.isin(others)].groupby(["seed", "eval_dataset"])["value"]
                # seeds that reached every target; a NaN (n/a) target makes that seed's average n/a
                wide = cells.first().unstack()[cells.size().unstack().notna().all(axis=1)]
                if len(wide):
                    rows += [
                        seed_row(method, source, AVERAGE, "all", s, v)
                        for s, v in zip(wide.index, wide.mean(axis=1, skipna=False))
                    ]
        return pd.DataFrame(rows, columns=list(SEED_COLUMNS))

    def key_columns(self, source: str, dataset: str) -> dict[str, Any]:
        """`source` and `target` columns."""
        return {"source": source, "target": dataset}

    def row_key(self, row: Any) -> tuple[str, str]:
        """(source, target)."""
        return row.source, row.target

    def key_cells(self, source: str, dataset: str) -> list[str]:
        """Source and target cells."""
        return [source, dataset]

    def covered(self, wide: pd.DataFrame, method: str, source: str) -> tuple[str, ...]:
        """The targets of (method, source) that its `average` row averages."""
        rows = wide[(wide.method == method) & (wide.source == source)]
        return tuple(t for t in rows.target if t not in (AVERAGE, source))

    def published_values(self, frame: pd.DataFrame):
        """Accuracy per (method, source, target) plus the mean over the targets (computed, marked so)."""
        from benchmark.results.published import Value, method_key

        values, datasets = {}, {}
        for row in frame.itertuples(index=False):
            value = Value(float(row.acc), str(getattr(row, "note", "")), row.citation)
            values[(method_key(row.method), row.source, row.target, "acc")] = value
        for (method, source), group in frame.groupby(["method", "source"], sort=False):
            targets = group[group.target != source]
            datasets[source] = tuple(targets.target)
            if len(targets):
                mean = round(float(targets.acc.mean()), 2)
                values[(method_key(method), source, AVERAGE, "acc")] = Value(mean, COMPUTED, group.citation.iloc[0])
        return values, datasets

    def figure(self, wide: pd.DataFrame, title: str, published_at=None):
        """Grouped bars of accuracy per target, one panel per source, with 95% seed intervals."""
        keys = list(dict.fromkeys(zip(wide.source, wide.target)))
        keys = [k for k in keys if k[1] != AVERAGE] + [k for k in keys if k[1] == AVERAGE]
        methods = sorted(set(wide.method))
        sources = list(dict.fromkeys(source for source, _ in keys))
        fig = new_figure(max(6.0, 0.45 * len(keys) * len(methods) + 2), 3.8 * len(sources))
        axes = fig.subplots(len(sources), 1, squeeze=False).ravel()
        width = 0.8 / len(methods)
        for ax, source in zip(axes, sources):
            mine = [target for src, target in keys if src == source]
            for j, method in enumerate(methods):
                xs, ys, errs, paper = [], [], [], []
                for i, target in enumerate(mine):
                    row = wide[(wide.method == method) & (wide.source == source) & (wide.target == target)]
                    if len(row):
                        xs.append(i + (j - (len(methods) - 1) / 2) * width)
                        ys.append(float(row.acc_mean.iloc[0]))
                        errs.append(float(row.acc_ci95.fillna(0.0).iloc[0]))
                        value = published_at(method, source, target, "acc") if published_at is not None else None
                        if value is not None:
                            paper.append((xs[-1], value.value))
                ax.bar(xs, ys, width, yerr=errs, capsize=2, label=method)
                if paper:
                    ax.scatter(*zip(*paper), marker="_", s=120, color="black", zorder=3)
            labels = [f"{d}\n(source)" if d == source else d for d in mine]
            ax.set_xticks(range(len(mine)), labels, fontsize=8)
            ax.set_ylim(0, 100)
            ax.set_ylabel("accuracy (%)", fontsize=8)
            ax.set_title(f"{title} from {source}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=7, loc="lower right", ncol=2)
        suffix = "; black ticks: published" if published_at is not None else ""
        fig.suptitle(f"accuracy per target (error bars: 95% interval over seeds{suffix})", fontsize=10)
        fig.tight_layout()
        return fig
