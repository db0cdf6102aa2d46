"""Leaderboards: deterministic pivots of the result rows every run writes (never scraped from logs).

Each finished cell run carries `results.json`, its result rows (evaluated dataset, subset, metric,
value). The long table joins those rows with the run's identity (label, seed, shots, backbone) from its
MLflow tags; the protocol's table kind (`benchmark.results.tables`) pivots it into the leaderboard. The
long table is also written as `runs_<protocol>.csv`, so a leaderboard can be rebuilt from that file
alone (`leaderboard --from-runs`), without the tracking store.

Derived numbers are computed here only, over seeds (the unit of replication): the mean, the sample std
(ddof 1) and the Student-t 95% half-width t(0.975, n-1)*s/sqrt(n). A method that trains nothing
(zero-shot) runs once and has n_seeds 1 and no spread. `rebuild` also renders the Markdown and PNG
leaderboards (`benchmark.results.report`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.plan.specs import LONG_COLUMNS
from benchmark.results.tables import AVERAGE, TableKind
from benchmark.results.tables.base_new import harmonic_mean

if TYPE_CHECKING:
    from benchmark.results.configs import LabelConfig

__all__ = ["AVERAGE", "harmonic_mean", "long_rows", "seed_values", "wide_table", "collapsed_runs", "rebuild"]

log = logging.getLogger(__name__)

ROW_IDENTITY = ["method", "train_dataset", "eval_dataset", "subset", "metric", "seed", "shots"]


def table_kind(protocol: str) -> TableKind:
    """The result table kind the registered protocol declares."""
    from benchmark.registry import PROTOCOLS

    return PROTOCOLS.get(protocol).table


def long_rows(runs: Iterable) -> pd.DataFrame:
    """The long table: one row per (run, eval dataset, subset, metric), from the runs' result rows.

    Each measurement of one configuration (label), training dataset, evaluated dataset, subset, seed and
    shot count counts once, from the latest run that made it: runs of one label differ in run_key only
    through what the label does not show on purpose (a new harness version, an updated world
    checkpoint, another set of xd targets), so the newest one stands and no seed is counted twice.
    """
    rows = []
    for run in runs:
        tags = run.tags
        if run.results is None:
            raise ValueError(f"run {run.run_id}: its result rows were not read (finished_runs(..., with_results=True))")
        for result in run.results:
            rows.append(
                {
                    "run_key": tags["run_key"],
                    "run_id": run.run_id,
                    "method": tags.get("label", tags["method"]),
                    "protocol": tags["protocol"],
                    "train_dataset": tags["dataset"],
                    "eval_dataset": result["eval_dataset"],
                    "subset": result["subset"],
                    "seed": int(tags["seed"]),
                    "shots": int(tags["shots"]),
                    "backbone": tags["backbone"],
                    "metric": result["metric"],
                    "value": float(result["value"]),
                    "end_time": run.end_time,
                }
            )
    frame = pd.DataFrame(rows, columns=[*LONG_COLUMNS, "end_time"])
    frame = frame.sort_values("end_time", kind="stable").drop_duplicates(ROW_IDENTITY, keep="last")
    frame = frame.drop(columns="end_time")
    return frame.sort_values(["method", "train_dataset", "eval_dataset", "subset", "seed"], kind="stable")


def read_long_rows(path: Path) -> pd.DataFrame:
    """A long table written by `rebuild` (`runs_<protocol>.csv`), typed as `long_rows` makes it."""
    # only `value` may be empty: an evaluation the method cannot make (n/a), read back as NaN
    frame = pd.read_csv(path, dtype={"run_key": str, "run_id": str}, keep_default_na=False, na_values={"value": [""]})
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame.astype({"seed": int, "shots": int, "value": float})[list(LONG_COLUMNS)]


def accuracy_rows(long: pd.DataFrame) -> pd.DataFrame:
    """The accuracy rows of a long table: what a table kind pivots (calibration and cost go through `run_columns`)."""
    return long[long.metric == "acc"]


def seed_values(protocol: str, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """Per-seed values of every leaderboard row (`TableKind.seed_values` of the protocol's table)."""
    return table_kind(protocol).seed_values(accuracy_rows(long), order)


def wide_table(protocol: str, long: pd.DataFrame, order: Iterable[str] = ()) -> pd.DataFrame:
    """The protocol's leaderboard from its long rows, with the ECE and cost columns appended."""
    from benchmark.results.tables.run_columns import add_run_columns

    kind = table_kind(protocol)
    return add_run_columns(kind, kind.wide(accuracy_rows(long), order), long, order)


COLLAPSE_COLUMNS = ("run_id", "method", "dataset", "seed", "shots", "value", "zero_shot")


def _trains(label: str) -> bool:
    """Whether the method behind a leaderboard label trains (`benchmark.results.compare.is_zero_shot` decides)."""
    from benchmark.results.compare import is_zero_shot

    return not is_zero_shot(label.split("[", 1)[0])


def collapsed_runs(protocol: str, long: pd.DataFrame) -> pd.DataFrame:
    """Trained runs whose accuracy on what they trained on ends below zero-shot CLIP's.

    The table kind's `trained_subset` of the training dataset (b2n: base; otherwise all classes) is
    compared with the run of the plain `zeroshot` method on the same dataset and backbone (labelled
    `zeroshot[<backbone>]` off the profile's backbone; nothing is flagged without one). Such a run has
    unlearned what the frozen model already knew: it is counted in the Markdown footnote and tagged
    `collapsed=yes` in MLflow instead of being silently averaged away.
    """
    from benchmark.results.matrix import is_reference

    subset = table_kind(protocol).trained_subset
    own = long[(long.metric == "acc") & (long.subset == subset) & (long.eval_dataset == long.train_dataset)]
    reference = pd.Series([is_reference(m, b) for m, b in zip(own.method, own.backbone)], index=own.index, dtype=bool)
    zero = own[reference].groupby(["backbone", "train_dataset"])["value"].first()
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
                    "shots": int(row.shots),
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


def write_leaderboard(
    protocol: str,
    long: pd.DataFrame,
    out_dir: Path,
    *,
    profile: str | None,
    order: Iterable[str] = (),
    matrix: bool = False,
    configs: dict[str, LabelConfig] | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Write `runs_<name>.csv`, `leaderboard_<name>.csv` and the `.md`/`.png` views from a long table.

    `matrix`: also the backbone x method matrix, `matrix_<name>.csv/.md/.png` (`benchmark.results.matrix`).
    `configs`: each label's configuration (`benchmark.results.configs.label_configs`), spelled out under
    the Markdown table and written as `configs_<name>.csv`, which `leaderboard --from-runs` reads back.

    Returns:
        The leaderboard CSV's path and the collapsed runs found.
    """
    from benchmark.registry import PROTOCOLS
    from benchmark.results.report import write_reports

    order = list(order)
    name = PROTOCOLS.get(protocol).leaderboard_name
    wide = wide_table(protocol, long, order)
    collapsed = collapsed_runs(protocol, long)
    out_dir = Path(out_dir)
    write_atomic(long, out_dir / f"runs_{name}.csv")
    path = out_dir / f"leaderboard_{name}.csv"
    write_atomic(wide, path)
    if configs is not None:
        from benchmark.results.configs import configs_frame

        write_atomic(configs_frame(configs), out_dir / f"configs_{name}.csv")
    write_reports(
        protocol,
        wide,
        out_dir,
        profile=profile,
        seeds=seed_values(protocol, long, order),
        collapsed=collapsed,
        configs=configs,
    )
    if matrix:
        from benchmark.results.matrix import write_matrix

        write_matrix(protocol, long, out_dir, profile=profile, order=order)
    return path, collapsed


def rebuild(
    tracker,
    protocol: str,
    out_dir: Path,
    *,
    profile: str | None = None,
    order: Iterable[str] = (),
    matrix: bool = False,
) -> Path:
    """Regenerate a protocol's leaderboard files (and with `matrix` its matrix) from the tracking store.

    See `write_leaderboard`.

    Collapsed runs (`collapsed_runs`) get the MLflow tag `collapsed=yes` on the way.
    """
    runs = tracker.finished_runs(protocol, profile=profile, with_results=True)
    long = long_rows(runs)
    profiles = {r.tags.get("profile") for r in runs}
    shown = profile or (profiles.pop() if len(profiles) == 1 else None)
    from benchmark.results.configs import label_configs

    configs = label_configs(runs, long)
    path, collapsed = write_leaderboard(
        protocol, long, out_dir, profile=shown, order=order, matrix=matrix, configs=configs
    )
    tagged = {r.run_id for r in runs if r.tags.get("collapsed") == "yes"}
    for run_id in set(collapsed.run_id) - tagged:
        tracker.client.set_tag(run_id, "collapsed", "yes")
    log.info("wrote %s and its .md/.png (%d runs)", path, len(runs))
    return path
