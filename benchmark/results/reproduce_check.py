"""The committed side of `benchmark reproduce` and the statistical test of a rerun against it.

A committed leaderboard is a claim: "this harness, run again, gives these numbers". Few-shot prompt
training is chaotic (another CPU or thread count moves a trained model by points), so the honest test
is over seeds: for every leaderboard row, the mean of the m rerun seeds must lie inside the Student-t
prediction interval for a new mean of m seeds, t(1 - alpha/2, n - 1) * s * sqrt(1/n + 1/m), from the n
committed per-seed values (`benchmark.results.stats.prediction_halfwidth`).

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

Why a module of its own: everything here works on long tables only (read the committed
`runs_<protocol>.csv`, filter it, test a rerun's rows against it); it plans nothing, runs nothing and
touches no MLflow store or cache, so the statistics can be tested on hand-made tables. Planning and
running the rerun live in `benchmark.run.reproduce`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import UsageError
from benchmark.results.leaderboard import AVERAGE, harmonic_mean, seed_values, table_kind
from benchmark.results.stats import prediction_halfwidth

FAMILY_ALPHA = 0.05  # the chance that an honest harness fails `reproduce`, over all decisive rows together
# A deterministic row (zero-shot) gives the same number on the same machine, but the last bits of another
# CPU's fp32 kernels can flip the argmax of a few borderline images. The world's test subsets have 260 to
# 720 images (one image: 0.14 to 0.38 points; the paper datasets have thousands), so 1 point allows a few
# such flips and still catches a real change of model, prompt or data.
TOLERANCE = 1.0
DETERMINISTIC_SEED = 0  # the seed the planner gives the single run of a method that trains nothing


# -- the committed side ----------------------------------------------------------------------------


def runs_csv(results_dir: Path, protocol: str) -> Path:
    """Where the committed long table of a protocol lives."""
    return Path(results_dir) / f"runs_{protocol}.csv"


def committed_protocols(results_dir: Path) -> list[str]:
    """The protocols that have a committed `runs_<protocol>.csv` under `results_dir`."""
    from benchmark.registry import PROTOCOLS

    return [p for p in PROTOCOLS.names() if runs_csv(results_dir, p).is_file()]


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
    decisive = table_kind(protocol).decisive_subsets
    ours = seed_values(protocol, committed, order)
    theirs = seed_values(protocol, rerun, order)
    rerun_values = {key: frame for key, frame in theirs.groupby(["method", "source", "dataset", "subset"], sort=False)}
    with_average = set(zip(ours.method[ours.dataset == AVERAGE], ours.source[ours.dataset == AVERAGE]))
    pairs = []
    for (method, source, dataset, subset), frame in ours.groupby(["method", "source", "dataset", "subset"], sort=False):
        other = rerun_values.get((method, source, dataset, subset))
        subset_decides = subset in decisive
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
            if pair.rerun.size and math.isnan(committed) and math.isnan(rerun):
                # an evaluation the method cannot make (n/a) on both sides agrees; n/a on one side only does not
                test, halfwidth, inside = "n/a", math.nan, True
            elif pair.rerun.size == 0 or not math.isfinite(diff):
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
