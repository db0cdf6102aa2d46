"""A declared hyper-parameter search on validation shots, over tuning seeds the leaderboards never report.

A preset's schedule must not be chosen by looking at the test numbers it is then reported with. `tune`
runs a method over a small grid of `--set` overrides (by default the same 2 x 2 budget for every
method: the preset's learning rate and half of it, its epochs and half of them), on tuning seeds that
are disjoint from the profile's reported seeds (101, 102, 103 by default), and scores each grid point
by the accuracy of the reported checkpoint on the run's own few-shot validation draw (the `val` result
row every trained cell records; for b2n the base-class validation shots). The score of a point is the
mean over datasets and tuning seeds; ties go to the cheaper point (fewer epochs, then the smaller
learning rate). The whole search (grid, per-dataset validation scores, choice) is written to
`results/tuning/<method>.csv`, and the world presets cite it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import UsageError
from benchmark.plan.sweep import SweepRequest, build_plan
from benchmark.registry import DEFAULT_PROTOCOL
from benchmark.run.runner import RunOptions, run_sweep

log = logging.getLogger(__name__)

TUNING_SEEDS = (101, 102, 103)
TUNING_COLUMNS = (
    "method",
    "preset",
    "protocol",
    "point",
    "overrides",
    "dataset",
    "n_seeds",
    "seeds",
    "val_mean",
    "val_std",
    "chosen",
)


@dataclass(frozen=True)
class TuneRequest:
    """What `benchmark tune` was asked to do."""

    method: str
    grid: Mapping[str, Sequence[str]]  # override key -> values; empty: the default 2 x 2 grid
    protocol: str = DEFAULT_PROTOCOL
    profile: str = "world"
    preset: str | None = None
    datasets: Sequence[str] | None = None
    seeds: Sequence[int] = TUNING_SEEDS


def default_grid(method: str, profile: str, protocol: str, preset: str | None = None) -> dict[str, list[str]]:
    """The same budget for every method: {lr/2, lr} x {epochs/2, epochs} around the preset's schedule."""
    from benchmark.registry import METHODS

    cls = METHODS.get(method)
    chosen = cls.presets[preset or cls.default_preset(profile, protocol)]
    if not cls.requirements.trainable:
        raise UsageError(f"{method} trains nothing: there is nothing to tune")
    if not cls.config_requirements(chosen.method).gradient_training:
        raise UsageError(f"{method} takes no gradient step: its fit searches its own values on validation shots")
    train = chosen.train
    epochs = sorted({max(1, train.epochs // 2), train.epochs})
    return {"train.lr": [_number(train.lr / 2), _number(train.lr)], "train.epochs": [str(e) for e in epochs]}


def _number(value: float) -> str:
    return f"{value:.6g}"


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, in the grid's order."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def check_seeds(seeds: Sequence[int], profile_seeds: Sequence[int]) -> None:
    """Tuning seeds must not be reported seeds (UsageError otherwise)."""
    shared = sorted(set(seeds) & set(profile_seeds))
    if shared:
        raise UsageError(
            f"tuning seeds {','.join(map(str, shared))} are reported seeds of the profile "
            f"({','.join(map(str, profile_seeds))}); tune on disjoint seeds, e.g. 101,102,103"
        )


def _cost(point: Mapping[str, str]) -> tuple[float, float]:
    """Sort key of a point's cost: epochs first, then learning rate (ties go to the cheaper point)."""

    def value(key: str) -> float:
        for k, v in point.items():
            if k.split(".")[-1] == key:
                return float(v)
        return 0.0

    return value("epochs"), value("lr")


def search_table(method: str, preset: str, protocol: str, points: list[dict[str, str]], scores: pd.DataFrame):
    """The committed CSV: per grid point and dataset (and `average`) the validation mean over seeds.

    `scores` has columns point, dataset, seed, value (validation accuracy of one cell).
    """
    rows = []
    averages = {}
    for index, point in enumerate(points):
        mine = scores[scores.point == index]
        overrides = " ".join(f"{k}={v}" for k, v in point.items())
        for dataset, group in mine.groupby("dataset", sort=False):
            values = group.sort_values("seed").value.to_numpy()
            rows.append(_row(method, preset, protocol, index, overrides, dataset, group.seed, values))
        per_seed = mine.pivot_table(index="seed", columns="dataset", values="value").dropna()
        values = per_seed.mean(axis=1).to_numpy()
        averages[index] = float(values.mean()) if values.size else float("nan")
        rows.append(_row(method, preset, protocol, index, overrides, "average", per_seed.index, values))
    best = max(averages, key=lambda i: (averages[i], tuple(-c for c in _cost(points[i]))))
    frame = pd.DataFrame(rows, columns=list(TUNING_COLUMNS))
    frame["chosen"] = np.where(frame.point == best, "yes", "")
    return frame, best


def _row(method, preset, protocol, index, overrides, dataset, seeds, values) -> dict:
    return {
        "method": method,
        "preset": preset,
        "protocol": protocol,
        "point": index,
        "overrides": overrides,
        "dataset": dataset,
        "n_seeds": len(values),
        "seeds": ",".join(str(int(s)) for s in sorted(seeds)),
        "val_mean": round(float(np.mean(values)), 2) if len(values) else float("nan"),
        "val_std": round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else float("nan"),
        "chosen": "",
    }


def run_search(request: TuneRequest, options: RunOptions, out_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Run every grid point on the tuning seeds, score it on validation shots, write `<out_dir>/<method>.csv`.

    Returns:
        The search table and the chosen point's overrides.
    """
    from benchmark.plan.profiles import get_profile
    from benchmark.registry import METHODS
    from benchmark.results.leaderboard import long_rows
    from benchmark.run.tracking import Tracker

    method = METHODS.canonical(request.method)
    profile = get_profile(request.profile)
    check_seeds(request.seeds, profile.seeds)
    grid = dict(request.grid) or default_grid(method, profile.name, request.protocol, request.preset)
    points = grid_points(grid)
    presets = {method: request.preset} if request.preset else {}
    requests = [
        SweepRequest(
            methods=[method],
            protocol=request.protocol,
            datasets=request.datasets,
            seeds=list(request.seeds),
            profile=profile.name,
            presets=presets,
            overrides=dict(point),
        )
        for point in points
    ]
    plans = [build_plan(r) for r in requests]  # every grid point is validated before any cell runs
    preset = plans[0].specs[0].preset
    log.info("tuning %s (%s) over %d grid point(s) x %d cell(s)", method, preset, len(points), len(plans[0].specs))
    for r in requests:
        run_sweep(r, options)
    runs = Tracker(options.tracking_uri).finished_runs(plans[0].protocol.name, profile=profile.name, with_results=True)
    long = long_rows(runs)
    val = long[(long.subset == "val") & (long.metric == "acc")].set_index("run_key")
    scores = []
    for index, plan in enumerate(plans):
        for spec in plan.specs:
            if spec.run_key not in val.index:
                raise UsageError(f"tuning cell {method} {spec.dataset} seed {spec.seed} has no validation score")
            scores.append(
                {"point": index, "dataset": spec.dataset, "seed": spec.seed, "value": val.loc[spec.run_key].value}
            )
    table, best = search_table(method, preset, plans[0].protocol.name, points, pd.DataFrame(scores))
    out_dir.mkdir(parents=True, exist_ok=True)
    from benchmark.results.leaderboard import write_atomic

    write_atomic(table, out_dir / f"{method}.csv")
    return table, points[best]
