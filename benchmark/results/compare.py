"""Seed-level comparison of two methods from the per-image predictions of their finished runs.

Why seeds: few-shot prompt training amplifies tiny floating-point differences exactly as a change of seed
does, so the training run (seed) is the unit of replication, not the image. A test that pools (seed, image)
pairs and treats the trained models as fixed (McNemar, an image-only bootstrap) answers "do these two sets
of trained models differ on these images": on another CPU it called a gap significant (p = 1e-5) whose sign
the committed runs reverse. The verdict here therefore rests on the per-seed differences.

Matching: runs of two trained methods pair on (profile, backbone, training dataset, seed, shots). An
untrained (zero-shot) method runs once per (dataset, backbone), so its run matches every seed and every
shots setting of the other method. Each pair's `predictions.csv.gz` artifacts are joined on (eval dataset,
subset, image path), so both accuracies of a seed are measured on the same images.

Rows, per (training dataset, shots, eval dataset, subset): the per-seed difference acc_A - acc_B in points;
`diff` is their mean, the 95% interval a hierarchical bootstrap (seeds resampled, then images within each
seed), the p-value a paired t-test over seeds, and the verdict names a winner only when both agree at 5%
(`benchmark.results.stats.verdict`). Overall rows (`average`), per (shots, subset): b2n averages the datasets;
xd/dg average the targets (eval datasets other than the training dataset), as the leaderboard does. Their
diff is the mean over datasets of the per-dataset mean difference, the interval a hierarchical bootstrap
with datasets as groups, the p-value a paired t-test over all (dataset, seed) differences. McNemar on the
pooled images stays as a secondary, clearly labelled "same trained models" column.

The table, its legend and the JSON records that present a `CompareReport` live in
`benchmark.results.compare_format`.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import UsageError
from benchmark.registry import DEFAULT_PROTOCOL
from benchmark.results.stats import Bootstrap, McNemar, TTest, hierarchical_bootstrap, mcnemar, paired_t, verdict

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv.gz"
JOIN = ["eval_dataset", "subset", "path"]
AVERAGE = "average"  # the leaderboard's name for the overall row
ALPHA = 0.05
ANY = "*"  # an untrained method's seed and shots in a match key


@dataclass(frozen=True)
class Comparison:
    """One row: a (training dataset, shots, eval dataset, subset), or an `average` over datasets.

    Attributes:
        seeds: the distinct seeds (training runs) behind the row.
        diffs: the per-unit differences the t-test uses, in points: one per seed, or for an average row
            one per (dataset, seed).
        datasets: the eval datasets averaged (one for a dataset row).
        images: paired predictions pooled over seeds (and datasets), what McNemar counts.
        acc_a, acc_b: accuracies in percent, averaged like `bootstrap.diff` (over seeds, then datasets).
        bootstrap: hierarchical bootstrap of the mean difference (the primary interval).
        test: paired t-test over `diffs` (the primary p-value).
        verdict: "A better", "B better" or "not distinguishable" (see `benchmark.results.stats.verdict`).
        same_models: McNemar on the pooled images; treats the trained models as fixed (secondary).
    """

    train_dataset: str
    shots: str
    eval_dataset: str
    subset: str
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    datasets: tuple[str, ...]
    images: int
    acc_a: float
    acc_b: float
    bootstrap: Bootstrap
    test: TTest
    verdict: str
    same_models: McNemar

    @property
    def n_seeds(self) -> int:
        """Number of distinct seeds."""
        return len(self.seeds)

    @property
    def n_pairs(self) -> int:
        """Number of per-(dataset, seed) differences behind the row (the b2n average's t-test uses them all)."""
        return len(self.diffs)

    @property
    def is_average(self) -> bool:
        """Whether this is an overall row."""
        return self.eval_dataset == AVERAGE


@dataclass
class CompareReport:
    """Everything `compare` prints."""

    method_a: str
    method_b: str
    protocol: str
    profile: str | None
    runs_a: int
    runs_b: int
    matched: int
    resamples: int = 2000
    rows: list[Comparison] = field(default_factory=list)


def is_zero_shot(method: str) -> bool:
    """Whether a registered method trains nothing (so its one run matches any seed and shots)."""
    try:
        from benchmark.registry import METHODS

        return not METHODS.get(method).requirements.trainable
    except Exception:  # noqa: BLE001 - an unknown or unimportable method: fall back on the name
        return method == "zeroshot"


def select_runs(runs: list, name: str) -> list:
    """Runs of `name`: by label (`coop[world+1a2b3c]`) first, else by method if that is one variant (any case)."""
    for same in (lambda tag: tag == name, lambda tag: tag.lower() == name.lower()):
        by_label = [r for r in runs if same(r.tags.get("label", ""))]
        if by_label:
            return by_label
    by_method = [r for r in runs if r.tags.get("method", "").lower() == name.lower()]
    labels = sorted({r.tags.get("label", name) for r in by_method})
    if len(labels) > 1:
        raise UsageError(f"{name!r} has runs of several variants ({', '.join(labels)}); name one of them")
    return by_method


def _key(run, *, untrained: bool) -> tuple:
    """Match key (profile, backbone, dataset, seed, shots); an untrained run has any seed and any shots.

    Zero-shot runs once per (dataset, backbone) with seed 0: its predictions do not depend on a seed.
    """
    tags = run.tags
    if untrained:
        return (tags.get("profile"), tags.get("backbone"), tags["dataset"], ANY, ANY)
    return (tags.get("profile"), tags.get("backbone"), tags["dataset"], int(tags["seed"]), tags["shots"])


def _latest(runs: list, untrained: bool, name: str) -> dict[tuple, object]:
    """One run per match key (the latest); several run_keys can share a key (e.g. another harness version)."""
    out: dict[tuple, object] = {}
    for run in sorted(runs, key=lambda r: r.end_time):
        key = _key(run, untrained=untrained)
        if key in out:
            log.warning("%s: several finished runs for %s; using the latest (%s)", name, key, run.run_id)
        out[key] = run
    return out


def match_runs(runs_a: list, runs_b: list, *, zero_a: bool, zero_b: bool) -> list[tuple]:
    """Pairs (run of A, run of B) with equal profile, backbone, dataset, seed and shots.

    An untrained (zero-shot) method's run matches every seed and shots of the other method, so each
    seed and shots setting of a trained method becomes its own pair with the same zero-shot run.
    """
    if zero_a and not zero_b:
        return [(a, b) for b, a in match_runs(runs_b, runs_a, zero_a=False, zero_b=True)]
    index_a, index_b = _latest(runs_a, zero_a, "A"), _latest(runs_b, zero_b, "B")
    pairs = []
    for key_a in sorted(index_a, key=str):
        key_b = (*key_a[:3], ANY, ANY) if zero_b else key_a
        if key_b in index_b:
            pairs.append((index_a[key_a], index_b[key_b]))
    return pairs


def load_predictions(client, run_id: str, folder: Path) -> pd.DataFrame | None:
    """A run's `predictions.csv.gz`, or None when the run has none (finished before it was logged)."""
    try:
        local = client.download_artifacts(run_id, PREDICTIONS, str(folder / run_id))
    except Exception:  # noqa: BLE001 - MLflow raises different types per store for a missing artifact
        log.debug("no %s for run %s", PREDICTIONS, run_id, exc_info=True)
        return None
    frame = pd.read_csv(local, dtype={"path": str, "eval_dataset": str, "subset": str})
    return frame.drop_duplicates(JOIN)


def paired_outcomes(pairs: list[tuple], client, *, zero_a: bool = False) -> pd.DataFrame:
    """Per (pair, image): training dataset, shots, seed, eval dataset, subset, path and both outcomes.

    `shots` and `seed` are the trained side's (B's when A is zero-shot): the zero-shot run has seed 0
    and pairs with every seed of the other method.
    """
    frames, missing = [], 0
    loaded: dict[str, pd.DataFrame | None] = {}  # a zero-shot run pairs with every seed and shots of B

    def predictions(run_id: str, folder: Path) -> pd.DataFrame | None:
        if run_id not in loaded:
            loaded[run_id] = load_predictions(client, run_id, folder)
        return loaded[run_id]

    with tempfile.TemporaryDirectory() as tmp:
        for run_a, run_b in pairs:
            pred_a = predictions(run_a.run_id, Path(tmp))
            pred_b = predictions(run_b.run_id, Path(tmp))
            if pred_a is None or pred_b is None:
                missing += 1
                continue
            joined = pred_a.merge(pred_b, on=JOIN, suffixes=("_a", "_b"))
            lost = max(len(pred_a), len(pred_b)) - len(joined)
            if lost:
                log.warning("runs %s / %s: %d image(s) not in both", run_a.run_id, run_b.run_id, lost)
            differ = joined.label_a != joined.label_b
            if differ.any():
                raise UsageError(
                    f"runs {run_a.run_id} and {run_b.run_id} label {int(differ.sum())} image(s) differently "
                    "(different split files?); they cannot be compared"
                )
            trained = run_b if zero_a else run_a
            frames.append(
                pd.DataFrame(
                    {
                        "train_dataset": run_a.tags["dataset"],
                        "shots": trained.tags["shots"],
                        "seed": int(trained.tags["seed"]),
                        "eval_dataset": joined.eval_dataset,
                        "subset": joined.subset,
                        "path": joined.path,
                        "correct_a": (joined.label_a == joined.predicted_a).astype(np.int64),
                        "correct_b": (joined.label_b == joined.predicted_b).astype(np.int64),
                    }
                )
            )
    if missing:
        log.warning("%d matched pair(s) skipped: a run has no %s (rerun it with --force)", missing, PREDICTIONS)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class _Cell:
    """The per-seed outcomes of one (training dataset, shots, eval dataset, subset)."""

    train_dataset: str
    shots: str
    eval_dataset: str
    subset: str
    seeds: tuple[int, ...]
    outcomes: tuple[tuple[np.ndarray, np.ndarray], ...]  # per seed: (correct A, correct B) on the same images

    def accuracies(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-seed accuracies of A and B, in percent."""
        acc_a = np.array([100.0 * a.mean() for a, _ in self.outcomes])
        acc_b = np.array([100.0 * b.mean() for _, b in self.outcomes])
        return acc_a, acc_b


def _cells(paired: pd.DataFrame) -> list[_Cell]:
    keys = ["train_dataset", "shots", "eval_dataset", "subset"]
    cells = []
    for (train, shots, dataset, subset), group in paired.groupby(keys, sort=False):
        seeds, outcomes = [], []
        for seed, by_seed in group.groupby("seed", sort=True):
            seeds.append(int(seed))
            outcomes.append((by_seed.correct_a.to_numpy(np.int64), by_seed.correct_b.to_numpy(np.int64)))
        cells.append(_Cell(str(train), str(shots), str(dataset), str(subset), tuple(seeds), tuple(outcomes)))
    return cells


def _same_models(cells: list[_Cell]) -> tuple[McNemar, int]:
    """McNemar over all pooled images of `cells` (the trained models taken as fixed) and the image count."""
    b = c = images = 0
    for cell in cells:
        for a, bb in cell.outcomes:
            b += int(((a == 1) & (bb == 0)).sum())
            c += int(((a == 0) & (bb == 1)).sum())
            images += a.size
    return mcnemar(b, c), images


def _row(
    train: str, cells: list[_Cell], eval_dataset: str, *, resamples: int, seed: int, shared_model: bool = False
) -> Comparison:
    """The seed-level statistics of one dataset (one cell) or of an average over datasets (several cells).

    `shared_model`: the averaged datasets are targets of the same trained model per seed (xd/dg): the t-test
    runs over the per-seed target averages, and with one seed there is no training replication at all.
    Otherwise (b2n, each dataset trains its own models) it runs over all (dataset, seed) differences.
    """
    units = {cell.eval_dataset: list(cell.outcomes) for cell in cells}
    boot = hierarchical_bootstrap(units, resamples=resamples, seed=seed)
    diffs, acc_a, acc_b, seeds = [], [], [], set()
    for cell in cells:
        a, b = cell.accuracies()
        diffs += (a - b).tolist()
        acc_a.append(a.mean())
        acc_b.append(b.mean())
        seeds.update(cell.seeds)
    if shared_model:
        # Targets evaluated by one seed share its trained model: the seed, not the (target, seed) pair, is the
        # replicate, so the test runs over the per-seed averages over the targets.
        per_seed: dict[int, list[float]] = {}
        for cell in cells:
            a, b = cell.accuracies()
            for s_, d in zip(cell.seeds, a - b):
                per_seed.setdefault(s_, []).append(float(d))
        test = paired_t([float(np.mean(v)) for _, v in sorted(per_seed.items()) if len(v) == len(cells)])
    else:
        test = paired_t(diffs)
    words = verdict(test, boot, alpha=ALPHA)
    if shared_model and len(seeds) < 2:
        words = "not distinguishable (one seed)"
    same, images = _same_models(cells)
    return Comparison(
        train_dataset=train,
        shots=cells[0].shots,
        eval_dataset=eval_dataset,
        subset=cells[0].subset,
        seeds=tuple(sorted(seeds)),
        diffs=tuple(float(d) for d in diffs),
        datasets=tuple(cell.eval_dataset for cell in cells),
        images=images,
        acc_a=float(np.mean(acc_a)),
        acc_b=float(np.mean(acc_b)),
        bootstrap=boot,
        test=test,
        verdict=words,
        same_models=same,
    )


def compare_outcomes(
    paired: pd.DataFrame, *, protocol: str = DEFAULT_PROTOCOL, resamples: int = 2000, seed: int = 0
) -> list[Comparison]:
    """Seed-level statistics per (training dataset, shots, eval dataset, subset), plus `average` rows.

    Rows come in blocks. Where every dataset trains its own models (b2n, few-shot), a block per shots,
    its average over the datasets (training dataset `average`); where one trained model is scored on
    several targets (the table kind's `shared_model_average`: xd, dg), a block per (training dataset,
    shots), its average over the targets (eval datasets other than the training dataset). Each block lists
    its dataset rows, then one average row per subset when there is something to average (two datasets or
    more; or one target).
    """
    from benchmark.registry import PROTOCOLS

    transfer = PROTOCOLS.get(protocol).table.shared_model_average
    blocks: dict[tuple, list[_Cell]] = {}
    for cell in _cells(paired):
        block = (cell.train_dataset, cell.shots) if transfer else (cell.shots,)
        blocks.setdefault(block, []).append(cell)
    rows = []
    for block, cells in blocks.items():
        rows += [_row(c.train_dataset, [c], c.eval_dataset, resamples=resamples, seed=seed) for c in cells]
        train = block[0] if transfer else AVERAGE
        for subset in dict.fromkeys(c.subset for c in cells):
            if transfer:
                members = [c for c in cells if c.subset == subset and c.eval_dataset != c.train_dataset]
            else:
                members = [c for c in cells if c.subset == subset and c.eval_dataset == c.train_dataset]
            if len(members) >= (1 if transfer else 2):
                rows.append(_row(train, members, AVERAGE, resamples=resamples, seed=seed, shared_model=transfer))
    return rows


def selection_of(run) -> str:
    """How a run's reported checkpoint was chosen: last, best_val, best_test, or none (nothing trained)."""
    if is_zero_shot(run.tags.get("method", "")):
        return "none"
    tag = run.tags.get("selection", "last")
    return "best_test" if tag.startswith("best_test") else tag


def check_selections(runs_a: list, runs_b: list, names: tuple[str, str], *, allow_mixed: bool) -> None:
    """UsageError when two trained methods report checkpoints chosen in different ways (unless allowed).

    A checkpoint chosen on the test split is optimistic; setting it against the last epoch or a choice on
    validation shots would credit the leak to the method.
    """
    found = [{selection_of(r) for r in runs} - {"none"} for runs in (runs_a, runs_b)]
    if allow_mixed or not found[0] or not found[1] or found[0] == found[1]:
        return
    a, b = (", ".join(sorted(f)) for f in found)
    raise UsageError(
        f"{names[0]} reports checkpoints chosen by {a}, {names[1]} by {b}; "
        "pass --allow-mixed-selection to compare them anyway"
    )


def compare_methods(
    tracker,
    method_a: str,
    method_b: str,
    protocol: str,
    *,
    profile: str | None = None,
    resamples: int = 2000,
    allow_mixed_selection: bool = False,
) -> CompareReport:
    """Find, match and compare the finished runs of two methods; UsageError when there is nothing to compare."""
    if method_a == method_b:
        raise UsageError(f"compare needs two different methods, got {method_a!r} twice")
    runs = tracker.finished_runs(protocol, profile=profile)
    where = f"{protocol}" + (f", profile {profile}" if profile else "")
    runs_a, runs_b = select_runs(runs, method_a), select_runs(runs, method_b)
    for name, found in ((method_a, runs_a), (method_b, runs_b)):
        if not found:
            import difflib

            known = sorted(({r.tags.get("label", "") for r in runs} | {r.tags.get("method", "") for r in runs}) - {""})
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(f"no finished {where} runs of {name!r} in {tracker.uri}{hint}")
    check_selections(runs_a, runs_b, (method_a, method_b), allow_mixed=allow_mixed_selection)
    zero_a = is_zero_shot(runs_a[0].tags["method"])
    zero_b = is_zero_shot(runs_b[0].tags["method"])
    pairs = match_runs(runs_a, runs_b, zero_a=zero_a, zero_b=zero_b)
    if not pairs:
        raise UsageError(f"no {where} runs of {method_a!r} and {method_b!r} share dataset, seed, shots and backbone")
    paired = paired_outcomes(pairs, tracker.client, zero_a=zero_a)
    if paired.empty:
        raise UsageError(f"none of the {len(pairs)} matched run pair(s) has {PREDICTIONS} on both sides")
    report = CompareReport(method_a, method_b, protocol, profile, len(runs_a), len(runs_b), len(pairs), resamples)
    report.rows = compare_outcomes(paired, protocol=protocol, resamples=resamples)
    return report
