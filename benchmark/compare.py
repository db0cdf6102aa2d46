"""Paired comparison of two methods from the per-image predictions of their finished runs.

Seed means with 3 seeds cannot tell a 1-point gap from noise. The runs of two methods on the same dataset
and seed, however, classify the *same* test images, so their outcomes are paired. Runs match on profile,
backbone, training dataset, seed and shots; a zero-shot method has no shots and matches any. Each pair's
`predictions.csv.gz` artifacts are joined on (eval dataset, subset, image path). Per (training dataset,
shots, eval dataset, subset) the matched seeds are pooled: the accuracy difference A - B gets a paired
bootstrap interval (images resampled within each seed) and McNemar's test a p-value
(`benchmark.stats`). Pooling seeds treats each (seed, image) pair as one observation. The same image
under different seeds is not independent, so read the p-value as per-evaluation evidence, not as a
claim about new seeds.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import UsageError
from benchmark.stats import EXACT_BELOW, Bootstrap, McNemar, mcnemar, paired_bootstrap

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv.gz"
JOIN = ["eval_dataset", "subset", "path"]


@dataclass(frozen=True)
class Comparison:
    """One row of the comparison: a (training dataset, shots, eval dataset, subset) pooled over seeds."""

    train_dataset: str
    shots: str
    eval_dataset: str
    subset: str
    seeds: tuple[int, ...]
    pairs: int  # paired predictions (seed x image)
    acc_a: float
    acc_b: float
    bootstrap: Bootstrap
    test: McNemar


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
    rows: list[Comparison] = field(default_factory=list)


def is_zero_shot(method: str) -> bool:
    """Whether a registered method trains nothing (so its runs match any shots)."""
    try:
        from benchmark.registry import METHODS

        return not METHODS.get(method).requirements.trainable
    except Exception:  # noqa: BLE001 - an unknown or unimportable method: fall back on the name
        return method == "zeroshot"


def select_runs(runs: list, name: str) -> list:
    """Runs of `name`: by label (`coop[world+1a2b3c]`) first, else by method if that is one variant."""
    by_label = [r for r in runs if r.tags.get("label") == name]
    if by_label:
        return by_label
    by_method = [r for r in runs if r.tags.get("method") == name]
    labels = sorted({r.tags.get("label", name) for r in by_method})
    if len(labels) > 1:
        raise UsageError(f"{name!r} has runs of several variants ({', '.join(labels)}); name one of them")
    return by_method


def _key(run, *, any_shots: bool) -> tuple:
    tags = run.tags
    shots = "*" if any_shots else tags["shots"]
    return (tags.get("profile"), tags.get("backbone"), tags["dataset"], int(tags["seed"]), shots)


def _latest(runs: list, any_shots: bool, name: str) -> dict[tuple, object]:
    """One run per match key (the latest); several run_keys can share a key (e.g. another harness version)."""
    out: dict[tuple, object] = {}
    for run in sorted(runs, key=lambda r: r.end_time):
        key = _key(run, any_shots=any_shots)
        if key in out:
            log.warning("%s: several finished runs for %s; using the latest (%s)", name, key, run.run_id)
        out[key] = run
    return out


def match_runs(runs_a: list, runs_b: list, *, zero_a: bool, zero_b: bool) -> list[tuple]:
    """Pairs (run of A, run of B) with equal profile, backbone, dataset, seed and shots; zero-shot runs match any shots.

    A trained method's runs with different shots stay separate pairs (with the same zero-shot run).
    """
    if zero_a and not zero_b:
        return [(a, b) for b, a in match_runs(runs_b, runs_a, zero_a=False, zero_b=True)]
    index_a, index_b = _latest(runs_a, zero_a, "A"), _latest(runs_b, zero_b, "B")
    pairs = []
    for key_a in sorted(index_a, key=str):
        key_b = (*key_a[:-1], "*") if zero_b else key_a
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

    `shots` is the trained side's (B's when A is zero-shot).
    """
    frames, missing = [], 0
    loaded: dict[str, pd.DataFrame | None] = {}  # a zero-shot run pairs with every shots setting of B

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
                        "seed": int(run_a.tags["seed"]),
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


def compare_outcomes(paired: pd.DataFrame, *, resamples: int = 2000, seed: int = 0) -> list[Comparison]:
    """Pooled-over-seeds statistics per (training dataset, shots, eval dataset, subset)."""
    rows = []
    keys = ["train_dataset", "shots", "eval_dataset", "subset"]
    for (train, shots, dataset, subset), group in paired.groupby(keys, sort=False):
        a, b = group.correct_a.to_numpy(), group.correct_b.to_numpy()
        seeds = group.seed.to_numpy()
        boot = paired_bootstrap(a, b, seeds, resamples=resamples, seed=seed)
        test = mcnemar(int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum()))
        rows.append(
            Comparison(
                train_dataset=train,
                shots=str(shots),
                eval_dataset=dataset,
                subset=subset,
                seeds=tuple(sorted(set(seeds.tolist()))),
                pairs=len(group),
                acc_a=100.0 * a.mean(),
                acc_b=100.0 * b.mean(),
                bootstrap=boot,
                test=test,
            )
        )
    return rows


def compare_methods(
    tracker, method_a: str, method_b: str, protocol: str, *, profile: str | None = None, resamples: int = 2000
) -> CompareReport:
    """Find, match and compare the finished runs of two methods; UsageError when there is nothing to compare."""
    if method_a == method_b:
        raise UsageError(f"compare needs two different methods, got {method_a!r} twice")
    runs = tracker.finished_runs(protocol, profile=profile)
    where = f"{protocol}" + (f", profile {profile}" if profile else "")
    runs_a, runs_b = select_runs(runs, method_a), select_runs(runs, method_b)
    for name, found in ((method_a, runs_a), (method_b, runs_b)):
        if not found:
            raise UsageError(f"no finished {where} runs of {name!r} in {tracker.uri}")
    zero_a = is_zero_shot(runs_a[0].tags["method"])
    zero_b = is_zero_shot(runs_b[0].tags["method"])
    pairs = match_runs(runs_a, runs_b, zero_a=zero_a, zero_b=zero_b)
    if not pairs:
        raise UsageError(f"no {where} runs of {method_a!r} and {method_b!r} share dataset, seed, shots and backbone")
    paired = paired_outcomes(pairs, tracker.client, zero_a=zero_a)
    if paired.empty:
        raise UsageError(f"none of the {len(pairs)} matched run pair(s) has {PREDICTIONS} on both sides")
    report = CompareReport(method_a, method_b, protocol, profile, len(runs_a), len(runs_b), len(pairs))
    report.rows = compare_outcomes(paired, resamples=resamples)
    return report


def _p(value: float) -> str:
    if value < 1e-300:
        return "<1e-300"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def format_report(report: CompareReport) -> str:
    """The table `benchmark compare` prints."""
    a, b = report.method_a, report.method_b
    head = f"{a} (A) vs {b} (B), protocol {report.protocol}" + (f", profile {report.profile}" if report.profile else "")
    lines = [head, f"runs: A {report.runs_a}, B {report.runs_b}; matched pairs: {report.matched}", ""]
    table = pd.DataFrame(
        [
            {
                "trained on": r.train_dataset,
                "shots": r.shots,
                "eval on": r.eval_dataset,
                "subset": r.subset,
                "seeds": ",".join(map(str, r.seeds)),
                "pairs": r.pairs,
                "acc A": f"{r.acc_a:.2f}",
                "acc B": f"{r.acc_b:.2f}",
                "A-B": f"{r.bootstrap.diff:+.2f}",
                "95% CI": f"[{r.bootstrap.low:+.2f}, {r.bootstrap.high:+.2f}]",
                "p": _p(r.test.p_value),
                "test": f"McNemar {r.test.method} (b={r.test.b}, c={r.test.c})",
            }
            for r in report.rows
        ]
    )
    lines.append(table.to_string(index=False))
    resamples = report.rows[0].bootstrap.resamples if report.rows else 0
    lines += [
        "",
        "A-B: accuracy difference in points over the matched (seed, image) pairs. 95% CI: paired bootstrap "
        f"({resamples} resamples of the images within each seed, generator seed 0). p: two-sided McNemar test "
        "on the discordant pairs (b: A right and B wrong, c: A wrong and B right): exact binomial when "
        f"b+c < {EXACT_BELOW}, else chi-square with continuity correction.",
    ]
    return "\n".join(lines)
