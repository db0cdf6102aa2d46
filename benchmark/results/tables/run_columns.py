"""Calibration and cost columns of every leaderboard, and the accuracy-against-cost figure.

A table kind already knows how accuracy rows become leaderboard rows (`TableKind.seed_values`: which
runs feed a row, how the `average` row averages). The same pivot applied to another measurement gives
that measurement per leaderboard row, so no kind needs its own code for these columns:

* ECE (`ece`, or `ece_base`/`ece_new` for base-to-novel): the rows of metric `ece` of the same
  (evaluated dataset, subset) as the accuracy, pivoted like accuracy, then the mean over seeds.
* Cost (`train_s`, `eval_s`, `params`, `peak_mem_mb`): each accuracy row carries its cell's cost instead of
  its accuracy (the rows of subset `run` of the same label, dataset, seed and shots), pivoted like accuracy,
  then the mean over seeds. A transfer run's cost stands on every target row of its source; an `average` row
  averages its rows.

Runs logged before these measurements existed have none. A cell shows a mean only when every seed behind
its accuracy measured it, so a column never averages another set of runs than the accuracy beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from benchmark.results.tables import AVERAGE, TableKind, new_figure

COST_COLUMNS = {"train_s": 2, "eval_s": 2, "params": 0, "peak_mem_mb": 1}  # column -> decimals
ECE_DECIMALS = 2


def as_accuracy_rows(long: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of `metric` relabelled `acc`, so a table kind pivots them exactly like accuracy."""
    return long[long.metric == metric].assign(metric="acc")


RUN_IDENTITY = ["method", "train_dataset", "seed", "shots"]  # one cell of a label: its latest run's cost stands


def cost_as_accuracy_rows(long: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The accuracy rows with each value replaced by the `metric` (a cost row, subset `run`) of the same cell."""
    cost = long[(long.metric == metric) & (long.subset == "run")].drop_duplicates(RUN_IDENTITY, keep="last")
    acc = long[long.metric == "acc"]
    merged = acc.drop(columns="value").merge(cost[[*RUN_IDENTITY, "value"]], on=RUN_IDENTITY, how="inner")
    return merged[list(acc.columns)]


def _row_means(kind: TableKind, long: pd.DataFrame, order: Iterable[str], subset: str) -> pd.DataFrame:
    """Mean over seeds and the seeds measured, per (method, source, dataset) of `long`'s values, pivoted by `kind`."""
    values = kind.seed_values(long, order) if not long.empty else pd.DataFrame()
    if values.empty:
        return pd.DataFrame(columns=["mean", "seeds"])
    grouped = values[values.subset == subset].groupby(["method", "source", "dataset"])["value"]
    return pd.DataFrame({"mean": grouped.mean(), "seeds": grouped.size()})


def add_run_columns(kind: TableKind, wide: pd.DataFrame, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """`wide` with the kind's ECE columns and the cost columns appended (NaN where no run measured them)."""
    order = list(order)
    keys = [(row.method, *kind.row_key(row)) for row in wide.itertuples(index=False)]
    out = wide.copy()

    seeds = wide["n_seeds"].tolist() if "n_seeds" in wide.columns else [0] * len(wide)

    def column(means: pd.DataFrame, decimals: int) -> list[float]:
        """A row's mean, or NaN when not every seed of its accuracy measured it (runs logged before it existed)."""
        values = []
        for (method, source, dataset), n in zip(keys, seeds):
            key = (method, source, dataset)
            found = key in means.index and means.loc[key, "seeds"] >= n and not pd.isna(means.loc[key, "mean"])
            values.append(round(float(means.loc[key, "mean"]), decimals) if found else math.nan)
            if kind.summary_row(source, dataset):
                values[-1] = math.nan
        return values

    ece_rows = as_accuracy_rows(long, "ece")
    for name, subset in kind.calibration:
        out[name] = column(_row_means(kind, ece_rows, order, subset), ECE_DECIMALS)
    for name, decimals in COST_COLUMNS.items():
        out[name] = column(_row_means(kind, cost_as_accuracy_rows(long, name), order, kind.cost_subset), decimals)
    return out


def run_column_names(kind: TableKind) -> list[str]:
    """The columns `add_run_columns` appends, in order."""
    return [name for name, _ in kind.calibration] + list(COST_COLUMNS)


@dataclass(frozen=True)
class Headline:
    """The headline number of one (method, source) of a leaderboard (`TableKind.headline`).

    Attributes:
        method, source: the leaderboard row's label and `seed_values` source.
        dataset: the row it is read on: `average`, or the only dataset when a sweep covered one.
        value: the leaderboard's number (NaN: n/a): the mean over seeds, or for a metric without spread (the b2n
            HM, of the seed-averaged base and new) the wide table's value.
        ci95: Student-t 95% half-width of the per-seed values (NaN for one seed).
        seeds: the per-seed values, indexed by seed (what an interval of a difference pairs).
    """

    method: str
    source: str
    dataset: str
    value: float
    ci95: float
    seeds: pd.Series


def headlines(kind: TableKind, wide: pd.DataFrame, seeds: pd.DataFrame) -> list[Headline]:
    """Per (method, source): the headline number, read on the `average` row or on the only dataset.

    A (method, source) whose rows cover several datasets but no average (no seed reached every one) has none.
    """
    from benchmark.results.stats import seed_summary

    subset, headline_source, _ = kind.headline
    values = seeds[seeds.subset == subset]
    if headline_source is not None:
        values = values[values.source == headline_source]
    # a metric without spread (the b2n HM) is not a mean over seeds: the leaderboard's own number stands
    unspread = next((m.mean for m in kind.metrics if m.subset == subset and m.spread is None), None)
    keys = [(row.method, *kind.row_key(row)) for row in wide.itertuples(index=False)]
    out = []
    for (method, source), group in values.groupby(["method", "source"], sort=True):
        datasets = set(group.dataset)
        dataset = AVERAGE if AVERAGE in datasets else (datasets.pop() if len(datasets) == 1 else None)
        if dataset is None:
            continue
        series = group[group.dataset == dataset].sort_values("seed").set_index("seed")["value"].astype(float)
        summary = seed_summary(series.to_numpy())
        value = summary.mean
        mine = [i for i, key in enumerate(keys) if key == (method, source, dataset)]
        if unspread is not None and unspread in wide.columns and mine:
            value = float(wide[unspread].iloc[mine[0]])
        out.append(Headline(method, source, dataset, value, summary.ci95, series))
    return out


def headline_points(kind: TableKind, wide: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Per (method, source): the headline number (mean, Student-t 95% half-width over seeds) and train_s.

    Read on the `average` row, or on the only dataset when a sweep covered one (`headlines`); a number that is
    n/a on some seed is left out. `train_s` is the mean over the method's rows of that dataset (of that source
    where the headline has one per source; the few-shot curve's points otherwise).
    """
    headline_source = kind.headline[1]
    keys = [(row.method, *kind.row_key(row)) for row in wide.itertuples(index=False)]
    train = wide["train_s"] if "train_s" in wide.columns else pd.Series(math.nan, index=wide.index)
    rows = []
    for point in headlines(kind, wide, seeds):
        if not len(point.seeds) or point.seeds.isna().any():
            continue
        mine = [
            i
            for i, (m, s, d) in enumerate(keys)
            if m == point.method and d == point.dataset and (headline_source is not None or s == point.source)
        ]
        rows.append(
            {
                "method": point.method,
                "source": point.source,
                "value": point.value,
                "ci95": point.ci95,
                "train_s": float(train.iloc[mine].mean()) if mine else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["method", "source", "value", "ci95", "train_s"])


def cost_figure(kind: TableKind, wide: pd.DataFrame, seeds: pd.DataFrame, title: str):
    """The headline number against training time per method (log time axis; error bars: 95% over seeds).

    Methods that train nothing (train_s 0) cannot sit on a log axis; they are drawn as dashed horizontal
    reference lines. Runs logged before costs were measured have no training time and are left out. The point
    is the leaderboard's number (for b2n the HM of the seed-averaged base and new); the error bar is the
    Student-t 95% half-width of the per-seed values.
    """
    points = headline_points(kind, wide, seeds)
    fig = new_figure(7.0, 4.6)
    ax = fig.subplots()
    trained = points[points.train_s > 0]
    free = points[points.train_s == 0]  # NaN: logged before costs were measured; not drawn
    for row in trained.itertuples(index=False):
        ci = 0.0 if pd.isna(row.ci95) else row.ci95
        ax.errorbar([row.train_s], [row.value], yerr=[ci], fmt="o", capsize=3)
        label = row.method if not row.source or row.source in ("", "area") else f"{row.method} ({row.source})"
        ax.annotate(label, (row.train_s, row.value), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for row in free.itertuples(index=False):
        ax.axhline(row.value, linestyle="--", linewidth=0.8, color="gray")
        ax.annotate(f"{row.method} (no training)", (0.01, row.value), xycoords=("axes fraction", "data"), fontsize=7)
    if len(trained):
        ax.set_xscale("log")
    ax.set_xlabel("training time per run (s, mean over seeds; log axis)", fontsize=8)
    ax.set_ylabel(kind.headline[2] + " (%)", fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {kind.headline[2]} against training time (error bars: 95% interval over seeds)", fontsize=9)
    fig.tight_layout()
    return fig
