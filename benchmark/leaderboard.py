"""Leaderboards: deterministic pivots of Result rows (never scraped from logs).

Rows come from MLflow (the latest FINISHED run per run_key of a protocol) or, in tests, straight
from lists. Derived numbers are computed here only: mean and population std over seeds (numpy
ddof=0, as CoOp's `parse_test_res.py`) and its `--ci95` half-width 1.96*std/sqrt(n), HM of the
seed-averaged base and new accuracies, and dataset averages as the papers compute them (HM of the
averaged base and new). `rebuild` also renders the Markdown and PNG leaderboards (`benchmark.report`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.specs import LONG_COLUMNS, Result
from benchmark.stats import ci95

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


def b2n_table(long: pd.DataFrame, dataset_order: Iterable[str] = ()) -> pd.DataFrame:
    """Wide b2n leaderboard: per (method, dataset) mean/std over seeds of base and new, and HM."""
    acc = long[(long.metric == "acc") & long.subset.isin(["base", "new"])]
    acc = acc[acc.eval_dataset == acc.train_dataset]
    per_seed = acc.pivot_table(
        index=["method", "train_dataset", "seed"], columns="subset", values="value", aggfunc="first"
    ).dropna()
    rows = []
    for method in sorted(set(per_seed.index.get_level_values(0))):
        sub = per_seed.loc[method]
        datasets = _order(sub.reset_index(), "train_dataset", dataset_order)
        for dataset in datasets:
            seeds = sub.loc[dataset]
            rows.append(_b2n_row(method, dataset, seeds["base"].to_numpy(), seeds["new"].to_numpy()))
        if len(datasets) > 1:
            # Per-seed averages over datasets (only seeds every dataset has), as the papers average.
            wide = sub.reset_index().pivot_table(index="seed", columns="train_dataset", values=["base", "new"])
            wide = wide.dropna()
            if len(wide):
                rows.append(
                    _b2n_row(method, AVERAGE, wide["base"].mean(axis=1).to_numpy(), wide["new"].mean(axis=1).to_numpy())
                )
    return pd.DataFrame(rows, columns=list(B2N_COLUMNS))


def _seed_summary(prefix: str, values: np.ndarray) -> dict:
    """`<prefix>_mean`, `_std` (population) and `_ci95` over seeds, rounded for the CSV."""
    return {
        f"{prefix}_mean": round(float(np.mean(values)), DECIMALS),
        f"{prefix}_std": round(float(np.std(values)), DECIMALS),
        f"{prefix}_ci95": round(ci95(values), DECIMALS),
    }


def _b2n_row(method: str, dataset: str, base: np.ndarray, new: np.ndarray) -> dict:
    hm = harmonic_mean(float(np.mean(base)), float(np.mean(new)))  # from the unrounded means
    return {
        "method": method,
        "dataset": dataset,
        "n_seeds": len(base),
        **_seed_summary("base", base),
        **_seed_summary("new", new),
        "hm": round(hm, DECIMALS),
    }


def transfer_table(long: pd.DataFrame, target_order: Iterable[str] = ()) -> pd.DataFrame:
    """Wide xd/dg leaderboard: per (method, source, target) mean/std over seeds, plus target averages."""
    acc = long[(long.metric == "acc") & (long.subset == "all")]
    rows = []
    for (method, source), group in acc.groupby(["method", "train_dataset"], sort=True):
        targets = list(_order(group, "eval_dataset", [source, *target_order]))
        for target in targets:
            values = group[group.eval_dataset == target].sort_values("seed")["value"].to_numpy()
            rows.append(_transfer_row(method, source, target, values))
        others = [t for t in targets if t != source]
        if others:
            wide = (
                group[group.eval_dataset.isin(others)]
                .pivot_table(index="seed", columns="eval_dataset", values="value")
                .dropna()
            )
            if len(wide):
                rows.append(_transfer_row(method, source, AVERAGE, wide.mean(axis=1).to_numpy()))
    return pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS))


def _transfer_row(method: str, source: str, target: str, values: np.ndarray) -> dict:
    identity = {"method": method, "source": source, "target": target, "n_seeds": len(values)}
    return {**identity, **_seed_summary("acc", values)}


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV so that readers never see half a file."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            frame.to_csv(fh, index=False)

    replace_atomically(path, write)


def wide_table(protocol: str, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """The protocol's leaderboard from its long rows."""
    return b2n_table(long, order) if protocol == "b2n" else transfer_table(long, order)


def rebuild(tracker, protocol: str, out_dir: Path, *, profile: str | None = None, order: Iterable[str] = ()) -> Path:
    """Regenerate `leaderboard_<protocol>.csv`, `runs_<protocol>.csv` and the `.md`/`.png` from the tracking store."""
    from benchmark.report import write_reports

    runs = tracker.finished_runs(protocol, profile=profile)
    long = long_rows(runs)
    wide = wide_table(protocol, long, order)
    out_dir = Path(out_dir)
    write_atomic(long, out_dir / f"runs_{protocol}.csv")
    path = out_dir / f"leaderboard_{protocol}.csv"
    write_atomic(wide, path)
    profiles = {r.tags.get("profile") for r in runs}
    write_reports(protocol, wide, out_dir, profile=profile or (profiles.pop() if len(profiles) == 1 else None))
    log.info("wrote %s and its .md/.png (%d rows from %d runs)", path, len(wide), len(runs))
    return path
