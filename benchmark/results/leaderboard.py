"""Leaderboards: deterministic pivots of Result rows (never scraped from logs).

Rows come from MLflow (the latest FINISHED run per run_key of a protocol) or, in tests, straight
from lists. Derived numbers are computed here only, over seeds (the unit of replication): the mean,
the sample std (ddof 1) and the Student-t 95% half-width t(0.975, n-1)*s/sqrt(n); HM of the
seed-averaged base and new accuracies; dataset averages as the papers compute them (per seed over the
datasets, then over seeds; HM of the averaged base and new). A deterministic method (zero-shot) runs
once and has n_seeds 1 and no spread. `rebuild` also renders the Markdown and PNG leaderboards
(`benchmark.results.report`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.plan.specs import LONG_COLUMNS, Result
from benchmark.results.stats import seed_summary

log = logging.getLogger(__name__)

B2N_COLUMNS = (
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
TRANSFER_COLUMNS = ("method", "source", "target", "n_seeds", "acc_mean", "acc_std", "acc_ci95")
AVERAGE = "average"
DECIMALS = 2


def harmonic_mean(base: float, new: float) -> float:
    """HM = 2BN / (B + N); 0 when both are 0."""
    return 2 * base * new / (base + new) if base + new > 0 else 0.0


ROW_IDENTITY = ["method", "train_dataset", "eval_dataset", "subset", "metric", "seed"]


def long_rows(runs: Iterable) -> pd.DataFrame:
    """The long table: one row per (run, eval dataset, subset, metric), from finished runs.

    Each measurement of one configuration (label), training dataset, evaluated dataset, subset and
    seed counts once, from the latest run that made it: runs of one label differ in run_key only
    through what the label does not show on purpose (a new harness version, an updated world
    checkpoint, another set of xd targets), so the newest one stands and no seed is counted twice.
    """
    rows = []
    for run in runs:
        tags = run.tags
        for key, value in run.metrics.items():
            result = Result.from_metric_key(key, value, tags["dataset"])
            if result is None:
                continue
            rows.append(
                {
                    "run_key": tags["run_key"],
                    "run_id": run.run_id,
                    "method": tags.get("label", tags["method"]),
                    "protocol": tags["protocol"],
                    "train_dataset": tags["dataset"],
                    "eval_dataset": result.eval_dataset,
                    "subset": result.subset,
                    "seed": int(tags["seed"]),
                    "shots": int(tags["shots"]),
                    "backbone": tags["backbone"],
                    "metric": result.metric,
                    "value": result.value,
                    "end_time": run.end_time,
                }
            )
    frame = pd.DataFrame(rows, columns=[*LONG_COLUMNS, "end_time"])
    frame = frame.sort_values("end_time", kind="stable").drop_duplicates(ROW_IDENTITY, keep="last")
    frame = frame.drop(columns="end_time")
    return frame.sort_values(["method", "train_dataset", "eval_dataset", "subset", "seed"], kind="stable")


def _order(frame: pd.DataFrame, column: str, first: Iterable[str]) -> list[str]:
    seen = list(dict.fromkeys(first))
    return [v for v in seen if v in set(frame[column])] + sorted(set(frame[column]) - set(seen))


SEED_COLUMNS = ("method", "source", "dataset", "subset", "seed", "value")


def seed_values(protocol: str, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """Per-seed values of every leaderboard row: the one table the CSV, Markdown, `reproduce` read.

    Columns `method, source, dataset, subset, seed, value`. b2n: source "", subsets `base`, `new` and
    `hm` (the per-seed HM, for seed-level tests of the HM column), datasets in `order` then the rest,
    plus `average` (per seed over the datasets, only seeds that every dataset has). xd/dg: source is
    the training dataset, subset `all`, datasets the source first, the targets, then `average` over
    the targets (not the source), per seed.
    """
    return b2n_seed_values(long, order) if protocol == "b2n" else transfer_seed_values(long, order)


def b2n_seed_values(long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """`seed_values` of a base-to-new protocol."""
    acc = long[(long.metric == "acc") & long.subset.isin(["base", "new"])]
    acc = acc[acc.eval_dataset == acc.train_dataset]
    if acc.empty:
        return pd.DataFrame(columns=list(SEED_COLUMNS))
    per_seed = acc.pivot_table(
        index=["method", "train_dataset", "seed"], columns="subset", values="value", aggfunc="first"
    ).dropna()
    rows = []
    for method in sorted(set(per_seed.index.get_level_values(0))):
        sub = per_seed.loc[method].reset_index()
        datasets = _order(sub, "train_dataset", order)
        for dataset in datasets:
            rows += _b2n_seed_rows(method, dataset, sub[sub.train_dataset == dataset])
        if len(datasets) > 1:
            wide = sub.pivot_table(index="seed", columns="train_dataset", values=["base", "new"]).dropna()
            if len(wide):
                average = pd.DataFrame(
                    {"seed": wide.index, "base": wide["base"].mean(axis=1), "new": wide["new"].mean(axis=1)}
                )
                rows += _b2n_seed_rows(method, AVERAGE, average)
    return pd.DataFrame(rows, columns=list(SEED_COLUMNS))


def _b2n_seed_rows(method: str, dataset: str, frame: pd.DataFrame) -> list[dict]:
    rows = []
    for seed, base, new in zip(frame["seed"], frame["base"], frame["new"]):
        for subset, value in (("base", base), ("new", new), ("hm", harmonic_mean(base, new))):
            rows.append(
                {
                    "method": method,
                    "source": "",
                    "dataset": dataset,
                    "subset": subset,
                    "seed": int(seed),
                    "value": value,
                }
            )
    return rows


def transfer_seed_values(long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """`seed_values` of a source-to-targets protocol (xd, dg)."""
    acc = long[(long.metric == "acc") & (long.subset == "all")]
    rows = []

    def add(method: str, source: str, target: str, seeds, values) -> None:
        for seed, value in zip(seeds, values):
            rows.append(
                {
                    "method": method,
                    "source": source,
                    "dataset": target,
                    "subset": "all",
                    "seed": int(seed),
                    "value": value,
                }
            )

    for (method, source), group in acc.groupby(["method", "train_dataset"], sort=True):
        targets = list(_order(group, "eval_dataset", [source, *order]))
        for target in targets:
            frame = group[group.eval_dataset == target].sort_values("seed")
            add(method, source, target, frame["seed"], frame["value"])
        others = [t for t in targets if t != source]
        if others:
            wide = (
                group[group.eval_dataset.isin(others)]
                .pivot_table(index="seed", columns="eval_dataset", values="value")
                .dropna()
            )
            if len(wide):
                add(method, source, AVERAGE, wide.index, wide.mean(axis=1))
    return pd.DataFrame(rows, columns=list(SEED_COLUMNS))


def _summary(prefix: str, values: np.ndarray) -> dict:
    """`<prefix>_mean`, `_std` (sample, ddof 1) and `_ci95` (Student-t) over seeds; spread NaN for one seed."""
    summary = seed_summary(values)
    return {
        f"{prefix}_mean": round(summary.mean, DECIMALS),
        f"{prefix}_std": round(summary.std, DECIMALS),
        f"{prefix}_ci95": round(summary.ci95, DECIMALS),
    }


def _rows_of(values: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(method, source, dataset) groups of `seed_values`, in the order they appear."""
    keys = list(dict.fromkeys(zip(values.method, values.source, values.dataset)))
    index = values.set_index(["method", "source", "dataset"]).sort_index()
    return [(key, index.loc[[key]]) for key in keys]


def b2n_table(long: pd.DataFrame, dataset_order: Iterable[str] = ()) -> pd.DataFrame:
    """Wide b2n leaderboard: per (method, dataset) mean/std/ci95 over seeds of base and new, and HM."""
    values = b2n_seed_values(long, dataset_order)
    rows = []
    for (method, _, dataset), frame in _rows_of(values):
        base = frame[frame.subset == "base"].sort_values("seed")["value"].to_numpy()
        new = frame[frame.subset == "new"].sort_values("seed")["value"].to_numpy()
        hm = harmonic_mean(float(np.mean(base)), float(np.mean(new)))  # from the unrounded means
        rows.append(
            {
                "method": method,
                "dataset": dataset,
                "n_seeds": len(base),
                **_summary("base", base),
                **_summary("new", new),
                "hm": round(hm, DECIMALS),
            }
        )
    return pd.DataFrame(rows, columns=list(B2N_COLUMNS))


def transfer_table(long: pd.DataFrame, target_order: Iterable[str] = ()) -> pd.DataFrame:
    """Wide xd/dg leaderboard: per (method, source, target) mean/std/ci95 over seeds, plus target averages."""
    values = transfer_seed_values(long, target_order)
    rows = []
    for (method, source, target), frame in _rows_of(values):
        acc = frame.sort_values("seed")["value"].to_numpy()
        rows.append({"method": method, "source": source, "target": target, "n_seeds": len(acc), **_summary("acc", acc)})
    return pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS))


def wide_table(protocol: str, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """The protocol's leaderboard from its long rows."""
    return b2n_table(long, order) if protocol == "b2n" else transfer_table(long, order)


COLLAPSE_COLUMNS = ("run_id", "method", "dataset", "seed", "value", "zero_shot")


def _trains(label: str) -> bool:
    """Whether the method behind a leaderboard label trains (`benchmark.results.compare.is_zero_shot` decides)."""
    from benchmark.results.compare import is_zero_shot

    return not is_zero_shot(label.split("[", 1)[0])


def collapsed_runs(protocol: str, long: pd.DataFrame) -> pd.DataFrame:
    """Trained runs whose accuracy on what they trained on ends below zero-shot CLIP's.

    b2n: base accuracy; xd/dg: accuracy on the source's test split. The reference is the run of the
    plain `zeroshot` method on the same dataset and backbone (nothing is flagged without one). Such a
    run has unlearned what the frozen model already knew: it is counted in the Markdown footnote and
    tagged `collapsed=yes` in MLflow instead of being silently averaged away.
    """
    subset = "base" if protocol == "b2n" else "all"
    own = long[(long.metric == "acc") & (long.subset == subset) & (long.eval_dataset == long.train_dataset)]
    zero = own[own.method == "zeroshot"].groupby(["backbone", "train_dataset"])["value"].first()
    rows = []
    for row in own.itertuples(index=False):
        if not _trains(row.method) or (row.backbone, row.train_dataset) not in zero.index:
            continue
        reference = float(zero.loc[(row.backbone, row.train_dataset)])
        if row.value < reference:
            rows.append(
                {
                    "run_id": row.run_id,
                    "method": row.method,
                    "dataset": row.train_dataset,
                    "seed": int(row.seed),
                    "value": float(row.value),
                    "zero_shot": reference,
                }
            )
    return pd.DataFrame(rows, columns=list(COLLAPSE_COLUMNS))


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV so that readers never see half a file."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            frame.to_csv(fh, index=False)

    replace_atomically(path, write)


def rebuild(tracker, protocol: str, out_dir: Path, *, profile: str | None = None, order: Iterable[str] = ()) -> Path:
    """Regenerate `leaderboard_<protocol>.csv`, `runs_<protocol>.csv` and the `.md`/`.png` from the tracking store.

    Collapsed runs (`collapsed_runs`) get the MLflow tag `collapsed=yes` on the way.
    """
    from benchmark.results.report import write_reports

    runs = tracker.finished_runs(protocol, profile=profile)
    long = long_rows(runs)
    wide = wide_table(protocol, long, order)
    collapsed = collapsed_runs(protocol, long)
    tagged = {r.run_id for r in runs if r.tags.get("collapsed") == "yes"}
    for run_id in set(collapsed.run_id) - tagged:
        tracker.client.set_tag(run_id, "collapsed", "yes")
    out_dir = Path(out_dir)
    write_atomic(long, out_dir / f"runs_{protocol}.csv")
    path = out_dir / f"leaderboard_{protocol}.csv"
    write_atomic(wide, path)
    profiles = {r.tags.get("profile") for r in runs}
    write_reports(
        protocol,
        wide,
        out_dir,
        profile=profile or (profiles.pop() if len(profiles) == 1 else None),
        seeds=seed_values(protocol, long, order),
        collapsed=collapsed,
    )
    log.info("wrote %s and its .md/.png (%d rows from %d runs)", path, len(wide), len(runs))
    return path
