"""Rerun the cells behind a committed leaderboard in a scratch store and cache, and test the rerun.

Which cells: the committed `runs_<protocol>.csv` names every run's label, training dataset, seed,
shots and run_key. A label is reproduced only if planning its method from the defaults (or from a
`base` request, e.g. with overrides) gives the same label; others (a non-default preset such as
`coop[paper_ctxv1]`, overrides) are skipped with a warning. Every planned run_key must be in the
committed csv, or the committed leaderboard came from another harness version or configuration and
nothing runs. The rerun goes into a scratch MLflow store and cache, never into the user's.

This module plans and runs; the committed tables and the test of a rerun against them (which rows
decide, the Bonferroni-corrected prediction intervals, `TOLERANCE`) are in `benchmark.results.reproduce_check`.
It logs and returns data; `benchmark.cli.reproduce` prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.errors import UsageError
from benchmark.plan.sweep import SweepRequest
from benchmark.results.reproduce_check import (
    DETERMINISTIC_SEED,
    Report,
    base_name,
    committed_protocols,
    compare,
    filter_committed,
    read_committed,
    runs_csv,
)

log = logging.getLogger(__name__)


# -- which cells to rerun ----------------------------------------------------------------------------


@dataclass
class Selection:
    """The rerun of one protocol, fully planned before any work.

    Attributes:
        protocol: `b2n`, `xd` or `dg`.
        requests: the sweeps to run (one per group of methods sharing datasets, shots and seeds).
        run_keys: every planned cell's run_key (all of them are in the committed csv).
        committed: the committed long rows of exactly those cells.
        skipped: labels of the committed csv that planning cannot rebuild (label -> reason).
        unplanned: committed cells that were asked for but that the planner does not produce.
        order: the profile's dataset order of the leaderboard rows.
    """

    protocol: str
    requests: list[SweepRequest]
    run_keys: set[str]
    committed: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    unplanned: int = 0
    order: tuple[str, ...] = ()


@dataclass
class _Group:
    """Methods that one request can plan together, their seeds, and the committed run_keys they cover."""

    methods: dict[str, set[int]] = field(default_factory=dict)
    run_keys: set[str] = field(default_factory=set)


def _groups(protocol: str, cells: pd.DataFrame, order: Sequence[str], default_shots: int) -> dict:
    """(shots, request datasets) -> _Group.

    The protocol says how its runs were asked for (`Protocol.requests`): b2n and few-shot requests list
    a method's training datasets; xd/dg requests list the source, then the targets that the committed
    runs of that source evaluated.
    """
    from benchmark.registry import PROTOCOLS

    owner = PROTOCOLS.get(protocol)
    groups: dict[tuple[int, tuple[str, ...]], _Group] = {}
    for (label, shots), frame in cells.groupby(["method", "shots"], sort=True):
        shots = int(shots) if shots >= 1 else default_shots  # untrained runs may record shots 0
        for datasets, sub in owner.requests(frame, order):
            group = groups.setdefault((shots, datasets), _Group())
            group.methods.setdefault(base_name(label), set()).update(int(s) for s in sub.seed)
            group.run_keys.update(sub.run_key)
    return groups


def _request(base: SweepRequest, protocol: str, methods, datasets, seeds, shots: int) -> SweepRequest:
    return dataclasses.replace(
        base, methods=list(methods), protocol=protocol, datasets=list(datasets), seeds=sorted(seeds), shots=[shots]
    )


def _candidates(
    base: SweepRequest, protocol: str, key: tuple[int, tuple[str, ...]], methods: dict[str, set[int]]
) -> list[list[SweepRequest]]:
    """Ways to ask the planner for exactly these cells, fewest sweeps first.

    One sweep over every seed (the planner plans each method at the seeds asked), the same without
    seed 0 (a planner that gives an untrained method its seed 0 by itself), then one sweep per set of
    seeds (always exact, but each sweep loads the backbone again).
    """
    shots, datasets = key
    union = set().union(*methods.values())
    options = [[_request(base, protocol, methods, datasets, union, shots)]]
    if DETERMINISTIC_SEED in union and len(union) > 1:
        options.append([_request(base, protocol, methods, datasets, union - {DETERMINISTIC_SEED}, shots)])
    by_seeds: dict[tuple[int, ...], list[str]] = {}
    for name, seeds in methods.items():
        by_seeds.setdefault(tuple(sorted(seeds)), []).append(name)
    options.append([_request(base, protocol, names, datasets, seeds, shots) for seeds, names in by_seeds.items()])
    return options


def select(
    protocol: str,
    committed: pd.DataFrame,
    wanted: pd.DataFrame,
    *,
    base: SweepRequest | None = None,
    csv_name: str | None = None,
) -> Selection:
    """Plan the rerun of the `wanted` rows of a committed long table; UsageError before any work.

    Args:
        protocol: the protocol of the table.
        committed: the whole committed long table (its run_keys are the reference).
        wanted: the rows asked for (`filter_committed` of it).
        base: the request whose profile, backbone, presets, overrides and data root every planned
            sweep uses (default: the world profile's defaults); methods, datasets, seeds and shots
            come from the committed runs.
        csv_name: the committed file's name, for messages.
    """
    from benchmark.plan.profiles import get_profile
    from benchmark.plan.sweep import build_plan
    from benchmark.registry import PROTOCOLS

    base = base or SweepRequest()
    csv_name = csv_name or f"runs_{protocol}.csv"
    owner = PROTOCOLS.get(protocol)
    order = owner.leaderboard_order(get_profile(base.profile))
    default_shots = base.shots[0] if base.shots else owner.default_shots[0]
    cells = wanted.drop_duplicates(["method", "train_dataset", "eval_dataset", "seed", "run_key"])

    # 1. Labels: keep a committed (label, dataset) only if planning its method gives that label.
    planned_label: dict[tuple[str, str, int], str] = {}  # (method, training dataset, shots asked) -> label
    for key, group in _groups(protocol, cells, order, default_shots).items():
        plan = build_plan(_candidates(base, protocol, key, group.methods)[0][0])
        for spec in plan.specs:
            planned_label[(spec.method, spec.dataset, key[0])] = plan.labels[spec.run_key]
    planned_as = [
        planned_label.get((base_name(label), dataset, int(shots) if shots >= 1 else default_shots))
        for label, dataset, shots in zip(cells.method, cells.train_dataset, cells.shots)
    ]
    rebuilt = pd.Series([p == label for p, label in zip(planned_as, cells.method)], index=cells.index, dtype=bool)
    skipped = {
        label: f"planning {base_name(label)} gives {planned or 'nothing'!r}"
        for label, planned, ok in zip(cells.method, planned_as, rebuilt)
        if not ok
    }
    for label, reason in skipped.items():
        log.warning("reproduce %s: skipping %s, which the defaults do not rebuild (%s)", protocol, label, reason)
    cells = cells[rebuilt]

    # 2. Requests: for each group, the first way of asking that plans exactly the committed cells.
    requests: list[SweepRequest] = []
    planned: list = []
    labels: dict[str, str] = {}
    for key, group in _groups(protocol, cells, order, default_shots).items():
        for option in _candidates(base, protocol, key, group.methods):
            plans = [build_plan(request) for request in option]
            specs = [spec for plan in plans for spec in plan.specs]
            if {spec.run_key for spec in specs} == group.run_keys:
                break
        requests += option
        planned += specs
        for plan in plans:
            labels.update(plan.labels)

    known = set(committed.run_key)
    missing = [spec for spec in planned if spec.run_key not in known]
    if missing:
        spec = missing[0]
        raise UsageError(
            f"reproduce: {len(missing)} of {len(planned)} planned cells have run_keys that the committed {csv_name} "
            f"lacks (e.g. {labels[spec.run_key]} {spec.dataset} seed {spec.seed}): the committed leaderboard was "
            "produced by another harness/numerics version or configuration; regenerate it first"
        )
    run_keys = {spec.run_key for spec in planned}
    unplanned = len(set(cells.run_key) - run_keys)
    if unplanned:
        log.warning(
            "reproduce %s: %d committed cell(s) are not planned by this harness and are left out", protocol, unplanned
        )
    return Selection(
        protocol=protocol,
        requests=requests,
        run_keys=run_keys,
        committed=wanted[wanted.run_key.isin(run_keys)],
        skipped=skipped,
        unplanned=unplanned,
        order=tuple(order),
    )


# -- the whole command ---------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_cache(folder: Path) -> Iterator[Path]:
    """Point `BENCHMARK_CACHE` at `folder` for the duration (world, features, splits, locks), then restore it."""
    previous = os.environ.get("BENCHMARK_CACHE")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["BENCHMARK_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("BENCHMARK_CACHE", None)
        else:
            os.environ["BENCHMARK_CACHE"] = previous


def plan_reproduction(
    results_dir: Path,
    protocols: Sequence[str] | None = None,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    base: SweepRequest | None = None,
) -> list[Selection]:
    """Plan the rerun of every asked-for protocol (UsageError before any work; reads the cache's world).

    `protocols` None means every protocol with a committed runs csv. A method, dataset or seed filter
    that matches nothing in any of them is an error; a protocol it leaves empty is left out.
    """
    results_dir = Path(results_dir)
    protocols = list(protocols) if protocols else committed_protocols(results_dir)
    if not protocols:
        raise UsageError(f"reproduce: no committed runs_<protocol>.csv under {results_dir}")
    frames = {p: read_committed(results_dir, p) for p in protocols}
    for flag, values, column in (("--methods", methods, "method"), ("--datasets", datasets, "train_dataset")):
        if not values:
            continue
        present = set().union(*(set(f[column]) for f in frames.values()))
        if column == "method":
            present |= {base_name(label) for label in present}
        unknown = [v for v in values if v not in present]
        if unknown:
            raise UsageError(
                f"reproduce: {flag} {unknown[0]!r} is in no committed runs csv "
                f"(they have: {', '.join(sorted(present))})"
            )
    if seeds:
        present = set().union(*(set(f.seed) for f in frames.values()))
        unknown = [s for s in seeds if s not in present]
        if unknown:
            have = ",".join(str(s) for s in sorted(present))
            raise UsageError(f"reproduce: --seeds {unknown[0]} is in no committed runs csv (they have {have})")
    selections = []
    for protocol, frame in frames.items():
        wanted = filter_committed(frame, methods=methods, datasets=datasets, seeds=seeds)
        if wanted.empty:
            log.info("reproduce: nothing of %s is asked for; leaving it out", runs_csv(results_dir, protocol))
            continue
        selections.append(select(protocol, frame, wanted, base=base, csv_name=runs_csv(results_dir, protocol).name))
    if not selections:
        raise UsageError("reproduce: the filters leave no committed cell to rerun")
    if not any(s.run_keys for s in selections):
        raise UsageError("reproduce: no committed cell can be rebuilt from the defaults (see the warnings)")
    return selections


def rerun(
    selection: Selection,
    workdir: Path,
    *,
    executor: str = "auto",
    workers: int = 0,
    progress: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Run a selection's sweeps into the scratch store `workdir/mlflow.db`; its long rows and failed cells.

    The sweeps do not force: a kept `workdir` resumes a killed reproduction. The cache is whatever
    `BENCHMARK_CACHE` says (`reproduce` points it at the scratch cache).
    """
    from benchmark.paths import cache_dir
    from benchmark.results.leaderboard import long_rows
    from benchmark.run.runner import RunOptions, run_sweep
    from benchmark.run.tracking import Tracker

    workdir = Path(workdir).resolve()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    options = RunOptions(
        tracking_uri=uri,
        results_dir=workdir / "results",
        force=False,
        executor=executor,
        workers=workers,
        progress=progress,
        cache_dir=str(cache_dir()),
    )
    failed = 0
    profile = selection.requests[0].profile if selection.requests else "world"
    for request in selection.requests:
        outcome = run_sweep(request, options)
        failed += len(outcome.failures)
    if failed:
        log.warning("reproduce %s: %d cell(s) of the rerun failed; their rows cannot pass", selection.protocol, failed)
    long = long_rows(Tracker(uri).finished_runs(selection.protocol, profile=profile, with_results=True))
    return long[long.run_key.isin(selection.run_keys)], failed


def reproduce(
    results_dir: Path,
    workdir: Path,
    protocols: Sequence[str] | None = None,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    base: SweepRequest | None = None,
    cache: Path | None = None,
    executor: str = "auto",
    workers: int = 0,
    progress: bool = False,
) -> Report:
    """Rerun the committed cells asked for in a scratch store and cache, and compare.

    Args:
        results_dir: the committed leaderboards (`runs_<protocol>.csv`).
        workdir: scratch folder: `mlflow.db`, `results/` (the rerun's leaderboards) and, unless
            `cache` is given, `cache/`.
        protocols: default every protocol with a committed runs csv.
        methods: labels or method names to rerun (default all committed ones).
        datasets: training datasets to rerun (default all).
        seeds: seeds to rerun (default all; an untrained method's single seed-0 run is always kept).
        base: profile, backbone, presets, overrides and data root of every planned sweep (the
            default request when None). A test that committed a sweep with overrides passes them here.
        cache: the cache to use instead of `workdir/cache` (a test shares its generated world).
        executor: the sweeps' executor (serial, local, submitit, ray); it changes no number.
        workers: cells at once for parallel executors.
        progress: progress bars.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with scratch_cache(Path(cache) if cache is not None else workdir / "cache"):
        selections = plan_reproduction(
            results_dir, protocols, methods=methods, datasets=datasets, seeds=seeds, base=base
        )
        tables, failed = {}, {}
        for selection in selections:
            if not selection.run_keys:
                continue
            log.info(
                "reproduce %s: %d cell(s) in %d sweep(s)",
                selection.protocol,
                len(selection.run_keys),
                len(selection.requests),
            )
            rerun_long, failed[selection.protocol] = rerun(
                selection, workdir, executor=executor, workers=workers, progress=progress
            )
            tables[selection.protocol] = (selection.committed, rerun_long)
    return compare(
        tables,
        {s.protocol: s.order for s in selections},
        skipped={s.protocol: s.skipped for s in selections if s.skipped},
        failed_cells=failed,
    )
