"""Rerun the cells behind a committed leaderboard and test the rerun against it.

A committed leaderboard is a claim: "this harness, run again, gives these numbers". Few-shot prompt
training is chaotic (another CPU or thread count moves a trained model by points), so the honest test
is over seeds: for every leaderboard row, the mean of the m rerun seeds must lie inside the Student-t
prediction interval for a new mean of m seeds, t(1 - alpha/2, n - 1) * s * sqrt(1/n + 1/m), from the n
committed per-seed values (`benchmark.stats.prediction_halfwidth`).

* Which rows decide. The dataset `average` rows (b2n: subsets base and new; xd/dg: subset all) of
  every (method, source); a (method, source) that has no average (one dataset) is decided by its
  dataset rows instead. The HM and the per-dataset rows are printed at the same level for
  information only: testing every one of them would multiply the comparisons for little evidence.
* Bonferroni. With k decisive rows tested by an interval, each is tested at alpha = 0.05 / k, so an
  honest harness fails by chance at most 5% of the time over the whole command (all protocols).
* Deterministic rows. A row whose committed values have no spread (one run, as zero-shot CLIP has,
  or identical values over seeds) has no interval. It passes when |rerun - committed| <= TOLERANCE
  points, and counts towards the verdict but not towards k. (Rows of a trained method filtered down
  to one seed fall back to this tolerance too, which only a rerun on the same machine and thread
  count is sure to meet: test trained methods with at least two seeds.)

Which cells: the committed `runs_<protocol>.csv` names every run's label, training dataset, seed,
shots and run_key. A label is reproduced only if planning its method from the defaults (or from a
`base` request, e.g. with overrides) gives the same label; others (a non-default preset such as
`coop[paper_ctxv1]`, overrides) are skipped with a warning. Every planned run_key must be in the
committed csv, or the committed leaderboard came from another harness version or configuration and
nothing runs. The rerun goes into a scratch MLflow store and cache, never into the user's.
This module logs and returns data; `benchmark.commands.reproduce` prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import UsageError
from benchmark.leaderboard import AVERAGE, harmonic_mean, seed_values
from benchmark.planning import SweepRequest
from benchmark.stats import prediction_halfwidth

log = logging.getLogger(__name__)

PROTOCOLS = ("b2n", "xd", "dg")
FAMILY_ALPHA = 0.05  # the chance that an honest harness fails `reproduce`, over all decisive rows together
# A deterministic row (zero-shot) gives the same number on the same machine, but the last bits of another
# CPU's fp32 kernels can flip the argmax of a few borderline images. The world's test subsets have 260 to
# 720 images (one image: 0.14 to 0.38 points; the paper datasets have thousands), so 1 point allows a few
# such flips and still catches a real change of model, prompt or data.
TOLERANCE = 1.0
DECISIVE_SUBSETS = {"b2n": ("base", "new"), "xd": ("all",), "dg": ("all",)}
DETERMINISTIC_SEED = 0  # the seed the planner gives the single run of a method that trains nothing


# -- the committed side ----------------------------------------------------------------------------


def runs_csv(results_dir: Path, protocol: str) -> Path:
    """Where the committed long table of a protocol lives."""
    return Path(results_dir) / f"runs_{protocol}.csv"


def committed_protocols(results_dir: Path) -> list[str]:
    """The protocols that have a committed `runs_<protocol>.csv` under `results_dir`."""
    return [p for p in PROTOCOLS if runs_csv(results_dir, p).is_file()]


def read_committed(results_dir: Path, protocol: str) -> pd.DataFrame:
    """The committed long table of one protocol (UsageError when it is missing or malformed)."""
    path = runs_csv(results_dir, protocol)
    if not path.is_file():
        raise UsageError(f"reproduce: {path} does not exist (no committed {protocol} leaderboard)")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"reproduce: cannot read {path}: {exc}") from None
    needed = {"run_key", "method", "train_dataset", "eval_dataset", "subset", "seed", "shots", "metric", "value"}
    if not needed <= set(frame.columns):
        raise UsageError(f"reproduce: {path} lacks the columns {', '.join(sorted(needed - set(frame.columns)))}")
    frame = frame.astype({"seed": int, "shots": int, "run_key": str, "method": str, "train_dataset": str})
    return frame[frame.metric == "acc"].reset_index(drop=True)


def base_name(label: str) -> str:
    """The registered method of a leaderboard label: `coop[paper_ctxv1]` -> `coop`."""
    return label.partition("[")[0]


def filter_committed(
    committed: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The committed rows asked for: labels (or their method names), training datasets, seeds.

    A label whose only committed seed is the deterministic seed 0 (one run of an untrained method)
    is kept whatever `seeds` says: it has no other seed to choose.
    """
    keep = pd.Series(True, index=committed.index)
    if methods:
        wanted = set(methods)
        keep &= committed.method.map(lambda label: label in wanted or base_name(label) in wanted)
    if datasets:
        keep &= committed.train_dataset.isin(set(datasets))
    if seeds:
        only_zero = committed.groupby("method").seed.transform(lambda s: bool((s == DETERMINISTIC_SEED).all()))
        keep &= committed.seed.isin(set(seeds)) | only_zero
    return committed[keep]


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


def _ordered(names: Sequence[str] | set[str], order: Sequence[str]) -> list[str]:
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


@dataclass
class _Group:
    """Methods that one request can plan together, their seeds, and the committed run_keys they cover."""

    methods: dict[str, set[int]] = field(default_factory=dict)
    run_keys: set[str] = field(default_factory=set)


def _groups(protocol: str, cells: pd.DataFrame, order: Sequence[str], default_shots: int) -> dict:
    """(shots, request datasets) -> _Group.

    b2n requests list a method's training datasets; xd/dg requests list the source, then the targets
    that the committed runs of that source evaluated.
    """
    groups: dict[tuple[int, tuple[str, ...]], _Group] = {}
    for (label, shots), frame in cells.groupby(["method", "shots"], sort=True):
        shots = int(shots) if shots >= 1 else default_shots  # untrained runs may record shots 0
        if protocol == "b2n":
            parts = [(tuple(_ordered(frame.train_dataset, order)), frame)]
        else:
            parts = []
            for source, sub in frame.groupby("train_dataset", sort=True):
                targets = _ordered(set(sub.eval_dataset) - {source}, order)
                parts.append(((source, *targets), sub))
        for datasets, sub in parts:
            group = groups.setdefault((shots, datasets), _Group())
            group.methods.setdefault(base_name(label), set()).update(int(s) for s in sub.seed)
            group.run_keys.update(sub.run_key)
    return groups


def _request(base: SweepRequest, protocol: str, methods, datasets, seeds, shots: int) -> SweepRequest:
    return dataclasses.replace(
        base, methods=list(methods), protocol=protocol, datasets=list(datasets), seeds=sorted(seeds), shots=shots
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
    from benchmark.planning import build_plan
    from benchmark.profiles import get_profile

    base = base or SweepRequest()
    csv_name = csv_name or f"runs_{protocol}.csv"
    order = get_profile(base.profile).leaderboard_order(protocol)
    cells = wanted.drop_duplicates(["method", "train_dataset", "eval_dataset", "seed", "run_key"])

    # 1. Labels: keep a committed (label, dataset) only if planning its method gives that label.
    planned_label: dict[tuple[str, str, int], str] = {}  # (method, training dataset, shots asked) -> label
    for key, group in _groups(protocol, cells, order, base.shots).items():
        plan = build_plan(_candidates(base, protocol, key, group.methods)[0][0])
        for spec in plan.specs:
            planned_label[(spec.method, spec.dataset, key[0])] = plan.labels[spec.run_key]
    planned_as = [
        planned_label.get((base_name(label), dataset, int(shots) if shots >= 1 else base.shots))
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
    for key, group in _groups(protocol, cells, order, base.shots).items():
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


# -- the comparison ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCheck:
    """One leaderboard row, committed against rerun.

    Attributes:
        protocol, method, source, dataset, subset: the row (source "" for b2n).
        n, m: committed and rerun seeds.
        committed, rerun: the means (for b2n `hm`: the HM of the mean base and new, as the leaderboard).
        diff: rerun - committed.
        halfwidth: the prediction half-width at `alpha` (TOLERANCE for a deterministic row; NaN
            when the rerun is missing).
        test: "interval", "tolerance" (deterministic row) or "missing" (no rerun value).
        inside: |diff| <= halfwidth.
        decisive: whether the row decides the exit code.
    """

    protocol: str
    method: str
    source: str
    dataset: str
    subset: str
    n: int
    m: int
    committed: float
    rerun: float
    diff: float
    halfwidth: float
    test: str
    inside: bool
    decisive: bool


@dataclass
class Report:
    """Every compared row, the Bonferroni count and what could not be compared.

    Attributes:
        rows: one RowCheck per leaderboard row, protocol by protocol.
        k: decisive rows tested by an interval (the Bonferroni count).
        alpha: the per-row level, FAMILY_ALPHA / k (FAMILY_ALPHA when k is 0).
        skipped: protocol -> {label: why it was not rerun}.
        failed_cells: protocol -> cells of the rerun that did not finish.
    """

    rows: list[RowCheck]
    k: int
    alpha: float
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    failed_cells: dict[str, int] = field(default_factory=dict)

    @property
    def decisive(self) -> list[RowCheck]:
        """The rows that decide the exit code."""
        return [row for row in self.rows if row.decisive]

    @property
    def passed(self) -> bool:
        """True when every decisive row is inside (and there is at least one)."""
        return bool(self.decisive) and all(row.inside for row in self.decisive)

    @property
    def exit_code(self) -> int:
        """0 when every decisive row is inside, 1 otherwise."""
        return 0 if self.passed else 1


@dataclass(frozen=True)
class _Pair:
    method: str
    source: str
    dataset: str
    subset: str
    committed: np.ndarray
    rerun: np.ndarray
    decisive: bool

    @property
    def deterministic(self) -> bool:
        """No spread over the committed seeds: one run, or the same value every seed."""
        return self.committed.size < 2 or bool(np.all(self.committed == self.committed[0]))


def _pairs(protocol: str, committed: pd.DataFrame, rerun: pd.DataFrame, order: Sequence[str]) -> list[_Pair]:
    """Per-seed values of every committed leaderboard row and the rerun's values of the same row."""
    ours = seed_values(protocol, committed, order)
    theirs = seed_values(protocol, rerun, order)
    rerun_values = {key: frame for key, frame in theirs.groupby(["method", "source", "dataset", "subset"], sort=False)}
    with_average = set(zip(ours.method[ours.dataset == AVERAGE], ours.source[ours.dataset == AVERAGE]))
    pairs = []
    for (method, source, dataset, subset), frame in ours.groupby(["method", "source", "dataset", "subset"], sort=False):
        other = rerun_values.get((method, source, dataset, subset))
        subset_decides = subset in DECISIVE_SUBSETS.get(protocol, ("all",))
        row_decides = dataset == AVERAGE if (method, source) in with_average else True
        pairs.append(
            _Pair(
                method,
                source,
                dataset,
                subset,
                frame.sort_values("seed")["value"].to_numpy(dtype=float),
                np.array([]) if other is None else other.sort_values("seed")["value"].to_numpy(dtype=float),
                subset_decides and row_decides,
            )
        )
    return pairs


def _means(pair: _Pair, pairs: dict) -> tuple[float, float]:
    """Committed and rerun means; a b2n HM row shows the HM of the mean base and new, as the leaderboard."""
    if pair.subset != "hm":
        return (float(pair.committed.mean()), float(pair.rerun.mean()) if pair.rerun.size else math.nan)
    key = (pair.method, pair.source, pair.dataset)
    base, new = pairs.get((*key, "base")), pairs.get((*key, "new"))
    if base is None or new is None:
        return math.nan, math.nan
    committed = harmonic_mean(float(base.committed.mean()), float(new.committed.mean()))
    rerun = (
        harmonic_mean(float(base.rerun.mean()), float(new.rerun.mean()))
        if base.rerun.size and new.rerun.size
        else math.nan
    )
    return committed, rerun


def compare(
    tables: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    orders: Mapping[str, Sequence[str]] | None = None,
    *,
    skipped: Mapping[str, Mapping[str, str]] | None = None,
    failed_cells: Mapping[str, int] | None = None,
) -> Report:
    """Check each protocol's rerun long table against its committed one.

    Args:
        tables: protocol -> (committed long rows, rerun long rows), both restricted to the same cells.
            The averages are recomputed from them, so a filtered comparison averages the same
            datasets and seeds on both sides.
        orders: protocol -> dataset order of the rows (default: alphabetical).
        skipped: protocol -> {label: reason}, carried into the report.
        failed_cells: protocol -> rerun cells that failed, carried into the report.

    Returns:
        The report; k counts the decisive rows tested by an interval over all protocols together.
    """
    orders = orders or {}
    per_protocol = {p: _pairs(p, c, r, orders.get(p, ())) for p, (c, r) in tables.items()}
    k = sum(pair.decisive and not pair.deterministic for pairs in per_protocol.values() for pair in pairs)
    alpha = FAMILY_ALPHA / k if k else FAMILY_ALPHA
    rows = []
    for protocol, pairs in per_protocol.items():
        index = {(p.method, p.source, p.dataset, p.subset): p for p in pairs}
        for pair in pairs:
            committed, rerun = _means(pair, index)
            diff = rerun - committed
            if pair.rerun.size == 0 or not math.isfinite(diff):
                test, halfwidth, inside = "missing", math.nan, False
            elif pair.deterministic:
                test, halfwidth = "tolerance", TOLERANCE
                inside = abs(diff) <= TOLERANCE
            else:
                test = "interval"
                halfwidth = prediction_halfwidth(pair.committed, pair.rerun.size, alpha)
                inside = abs(diff) <= halfwidth
            rows.append(
                RowCheck(
                    protocol,
                    pair.method,
                    pair.source,
                    pair.dataset,
                    pair.subset,
                    int(pair.committed.size),
                    int(pair.rerun.size),
                    committed,
                    rerun,
                    diff,
                    halfwidth,
                    test,
                    bool(inside),
                    pair.decisive,
                )
            )
    return Report(
        rows,
        k,
        alpha,
        skipped={p: dict(v) for p, v in (skipped or {}).items()},
        failed_cells=dict(failed_cells or {}),
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
    executor: str = "serial",
    workers: int = 1,
    progress: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Run a selection's sweeps into the scratch store `workdir/mlflow.db`; its long rows and failed cells.

    The sweeps do not force: a kept `workdir` resumes a killed reproduction. The cache is whatever
    `BENCHMARK_CACHE` says (`reproduce` points it at the scratch cache).
    """
    from benchmark.leaderboard import long_rows
    from benchmark.paths import cache_dir
    from benchmark.runner import RunOptions, run_sweep
    from benchmark.tracking import Tracker

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
    long = long_rows(Tracker(uri).finished_runs(selection.protocol, profile=profile))
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
    executor: str = "serial",
    workers: int = 1,
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
