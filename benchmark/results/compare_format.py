"""How `benchmark compare` presents a `CompareReport`: the text table, its legend and the JSON records.

Kept apart from `benchmark.results.compare`, which finds and matches the runs and computes the seed-level
statistics, so that the statistics can be read (and tested) without the formatting, and a change of
column or wording never touches the numbers. Nothing here computes: it only turns rows into text or
JSON-ready dicts (NaN and infinities become "-" in the table and None in JSON).
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pandas as pd

from benchmark.results.compare import ALPHA, CompareReport
from benchmark.results.stats import Bootstrap


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: None instead."""
    return float(value) if value is not None and math.isfinite(value) else None


def report_records(report: CompareReport) -> list[dict[str, Any]]:
    """One JSON-ready dict per row (`compare --json`); NaN and infinities become None."""
    records = []
    for r in report.rows:
        records.append(
            {
                "method_a": report.method_a,
                "method_b": report.method_b,
                "protocol": report.protocol,
                "profile": report.profile,
                "train_dataset": r.train_dataset,
                "shots": r.shots,
                "dataset": r.eval_dataset,
                "subset": r.subset,
                "datasets": list(r.datasets),
                "seeds": list(r.seeds),
                "n_seeds": r.n_seeds,
                "n_pairs": r.n_pairs,
                "acc_a": _finite(r.acc_a),
                "acc_b": _finite(r.acc_b),
                "diff": _finite(r.bootstrap.diff),
                "ci_low": _finite(r.bootstrap.low),
                "ci_high": _finite(r.bootstrap.high),
                "t": _finite(r.test.statistic),
                "p": _finite(r.test.p_value),
                "verdict": r.verdict,
                "resamples": r.bootstrap.resamples,
                "images": r.images,
                "mcnemar_p_same_models": _finite(r.same_models.p_value),
                "mcnemar_b": r.same_models.b,
                "mcnemar_c": r.same_models.c,
            }
        )
    return records


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if value == 0.0:
        return "0"
    if value < 1e-300:
        return "<1e-300"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def _interval(boot: Bootstrap) -> str:
    if not (math.isfinite(boot.low) and math.isfinite(boot.high)):
        return "-"
    return f"[{boot.low:+.2f}, {boot.high:+.2f}]"


def legend(resamples: int) -> str:
    """What the columns of the table mean, wrapped at 120 characters."""
    text = (
        "A-B: mean over seeds of acc_A(seed) - acc_B(seed) in points, same images; the seed (training run) is the "
        "unit of replication. 95% CI (seeds): hierarchical bootstrap, resampling seeds, then images within each "
        f"seed ({resamples} resamples, generator seed 0). p (seeds): paired t-test over the per-seed differences. "
        "Average rows: the mean over datasets of the per-dataset A-B, seeds resampled within each dataset, the "
        "t-test over all (dataset, seed) pairs (their number in brackets) for b2n, where every dataset trains its own "
        "models, and over the per-seed target averages for xd/dg, whose targets share one model per seed. "
        "Verdict: a winner only when p < "
        f"{ALPHA:g} and the CI excludes 0 on the same side, else not distinguishable. McNemar p (same models): "
        "pooled images; it treats the trained models as fixed and so ignores training variance: a rerun on "
        "another machine or seed can reverse it."
    )
    return textwrap.fill(text, width=120)


def format_report(report: CompareReport) -> str:
    """The table `benchmark compare` prints, with its legend.

    The training dataset column is left out when every row is trained on the dataset it evaluates (b2n),
    to keep the table near 120 characters.
    """
    a, b = report.method_a, report.method_b
    head = f"{a} (A) vs {b} (B), protocol {report.protocol}" + (f", profile {report.profile}" if report.profile else "")
    lines = [head, f"runs: A {report.runs_a}, B {report.runs_b}; matched pairs: {report.matched}", ""]
    show_train = any(r.train_dataset != r.eval_dataset for r in report.rows)
    table = pd.DataFrame(
        [
            {
                **({"trained on": r.train_dataset} if show_train else {}),
                "dataset": r.eval_dataset,
                "shots": r.shots,
                "subset": r.subset,
                "seeds": str(r.n_seeds) if not r.is_average else f"{r.n_seeds} ({r.n_pairs})",
                "acc A": f"{r.acc_a:.2f}",
                "acc B": f"{r.acc_b:.2f}",
                "A-B": f"{r.bootstrap.diff:+.2f}",
                "95% CI (seeds)": _interval(r.bootstrap),
                "p (seeds)": _p(r.test.p_value),
                "verdict": r.verdict,
                "McNemar p (same models)": _p(r.same_models.p_value),
            }
            for r in report.rows
        ]
    )
    lines += [table.to_string(index=False), "", legend(report.resamples)]
    return "\n".join(lines)
