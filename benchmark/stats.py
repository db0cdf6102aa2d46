"""Statistics behind the numbers we publish: seed intervals, paired bootstrap, McNemar.

* `ci95` is what CoOp's `parse_test_res.py --ci95` prints (KaiyangZhou/CoOp, lines 60-152):
  1.96 * std / sqrt(n) with numpy's population std (ddof=0). With 3 seeds this is narrower than a
  Student-t interval (t_{0.975, 2} = 4.30 with the sample std); we keep the reference's number so our
  CSVs read like the papers' `± x` and say so in `results/README.md`.
* `paired_bootstrap` and `mcnemar` compare two methods on the *same* images: per-image outcomes are
  paired, which is far more sensitive than comparing seed means, and needs no normality assumption.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.96  # the constant parse_test_res.py uses
EXACT_BELOW = 25  # McNemar: exact binomial test when there are fewer discordant pairs than this


def ci95(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the 95% interval over seeds, as CoOp's `parse_test_res.py --ci95`.

    Returns:
        1.96 * population std / sqrt(n); 0 for a single value (no spread is observable) and NaN
        for none.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return float("nan")
    if array.size == 1:
        return 0.0
    return Z95 * float(np.std(array)) / math.sqrt(array.size)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired correct/wrong outcomes.

    Attributes:
        b: pairs where A is right and B is wrong.
        c: pairs where A is wrong and B is right.
        statistic: the continuity-corrected chi-square statistic (also reported for the exact test).
        p_value: two-sided p-value.
        method: "exact" (binomial on b of b + c at 1/2) or "chi2-cc" (chi-square, continuity corrected).
    """

    b: int
    c: int
    statistic: float
    p_value: float
    method: str


def mcnemar(b: int, c: int, *, exact_below: int = EXACT_BELOW) -> McNemar:
    """McNemar's test from the discordant counts.

    The exact binomial test is used when b + c < `exact_below` (the chi-square approximation is poor
    for few discordant pairs); otherwise the chi-square test with Edwards' continuity correction,
    (|b - c| - 1)^2 / (b + c) on 1 degree of freedom. Concordant pairs carry no information.
    """
    from scipy import stats

    n = b + c
    if n == 0:
        return McNemar(b, c, 0.0, 1.0, "exact")
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    if n < exact_below:
        p_value = float(stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue)
        return McNemar(b, c, statistic, min(p_value, 1.0), "exact")
    return McNemar(b, c, statistic, float(stats.chi2.sf(statistic, 1)), "chi2-cc")


@dataclass(frozen=True)
class Bootstrap:
    """A paired-bootstrap estimate of an accuracy difference, in percentage points.

    Attributes:
        diff: observed difference, accuracy(A) - accuracy(B).
        low: 2.5th percentile of the bootstrap distribution.
        high: 97.5th percentile.
        resamples: number of bootstrap resamples.
    """

    diff: float
    low: float
    high: float
    resamples: int


def paired_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Bootstrap:
    """95% percentile interval of accuracy(A) - accuracy(B) by resampling images within each group.

    Groups are seeds: each seed's evaluation is resampled on its own (a stratified bootstrap), so every
    resample keeps the seeds' sizes and the pairing of A and B on the same image. Only the per-image
    difference d = a - b in {-1, 0, +1} enters the statistic, so resampling n images of a group with
    replacement is the same in distribution as a multinomial draw of how many +1, -1 and 0 pairs it
    gets; drawing the counts makes 2000 resamples of 10^5 images take milliseconds. The generator is
    seeded, so the interval is reproducible.

    Args:
        correct_a: per-pair 0/1 (or bool) outcomes of method A.
        correct_b: same pairs for method B.
        groups: per-pair stratum (seed); None for one stratum.
        resamples: bootstrap resamples.
        seed: generator seed.
    """
    a = np.asarray(correct_a, dtype=np.int64)
    b = np.asarray(correct_b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes need equal 1-d shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        return Bootstrap(float("nan"), float("nan"), float("nan"), resamples)
    groups = np.zeros(a.size, dtype=np.int64) if groups is None else np.asarray(groups)
    d = a - b
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples, dtype=np.int64)
    for group in np.unique(groups):
        dg = d[groups == group]
        counts = np.array([(dg == 1).sum(), (dg == -1).sum(), (dg == 0).sum()], dtype=float)
        draws = rng.multinomial(dg.size, counts / dg.size, size=resamples)  # [R, 3]
        totals += draws[:, 0] - draws[:, 1]
    diffs = 100.0 * totals / a.size
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Bootstrap(100.0 * float(d.mean()), float(low), float(high), resamples)
