"""Statistics behind the numbers we publish. The unit of replication is the training run (seed).

Few-shot prompt training is chaotic: a change of seed, of CPU or of thread count moves a trained
model's accuracy by points, while the test images of one trained model are a fixed sample. So every
interval and every verdict here is over seeds:

* `seed_summary` / `t_halfwidth`: Student-t 95% interval of a mean over seeds, with the sample std
  (ddof 1) and n - 1 degrees of freedom. One seed has no observable spread: std and interval are NaN.
* `prediction_halfwidth`: where the mean of m *new* seeds should fall, given n committed ones:
  t(1 - alpha/2, n - 1) * s * sqrt(1/n + 1/m). `reproduce` checks reruns against it.
* `paired_t`: the paired t-test over per-seed differences (or any list of per-unit differences).
* `hierarchical_bootstrap`: resample seeds (within each group, e.g. dataset), then images within each
  resampled seed; the percentile interval of the mean difference.
* `mcnemar` and `paired_bootstrap` test one set of *fixed* trained models on the same images. They
  ignore training variance and are kept only as a secondary, clearly labelled "same trained models" view.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

EXACT_BELOW = 25  # McNemar: exact binomial test when there are fewer discordant pairs than this
LEVEL = 0.95


def t_quantile(q: float, dof: int) -> float:
    """Quantile `q` of Student's t with `dof` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(q, dof))


def sample_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (ddof 1); NaN for fewer than two values."""
    array = np.asarray(values, dtype=float)
    return float(np.std(array, ddof=1)) if array.size > 1 else float("nan")


def t_halfwidth(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> float:
    """Half-width of the Student-t interval of the mean over seeds: t(1-(1-level)/2, n-1) * s / sqrt(n).

    NaN for fewer than two values: one run shows no spread, and zero is not an honest answer.
    """
    array = np.asarray(values, dtype=float)
    n = array.size
    if n < 2:
        return float("nan")
    return t_quantile(1 - (1 - level) / 2, n - 1) * sample_std(array) / math.sqrt(n)


def prediction_halfwidth(values: Sequence[float] | np.ndarray, new_seeds: int, alpha: float = 0.05) -> float:
    """Half-width of the prediction interval for the mean of `new_seeds` fresh seeds.

    From the n committed per-seed values: t(1 - alpha/2, n - 1) * s * sqrt(1/n + 1/m). NaN when n < 2.
    """
    array = np.asarray(values, dtype=float)
    n = array.size
    if n < 2 or new_seeds < 1:
        return float("nan")
    return t_quantile(1 - alpha / 2, n - 1) * sample_std(array) * math.sqrt(1 / n + 1 / new_seeds)


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std and Student-t 95% half-width over seeds."""

    n: int
    mean: float
    std: float
    ci95: float


def seed_summary(values: Sequence[float] | np.ndarray) -> SeedSummary:
    """Summary of per-seed values (std and ci95 NaN for a single value)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean()) if array.size else float("nan")
    return SeedSummary(int(array.size), mean, sample_std(array), t_halfwidth(array))


@dataclass(frozen=True)
class TTest:
    """A one-sample t-test of differences against 0 (the paired t-test over seeds).

    Attributes:
        n: number of differences (seeds, or (dataset, seed) pairs).
        mean: mean difference.
        statistic: t statistic (NaN when undefined).
        p_value: two-sided p-value; NaN when n < 2; 0 or 1 when all differences are equal.
    """

    n: int
    mean: float
    statistic: float
    p_value: float


def paired_t(diffs: Sequence[float] | np.ndarray) -> TTest:
    """Two-sided paired t-test of per-unit differences against zero.

    Identical non-zero differences (no spread at all) give p = 0, identical zero differences p = 1;
    fewer than two differences give NaN: nothing can be said.
    """
    array = np.asarray(diffs, dtype=float)
    n = array.size
    if n == 0:
        return TTest(0, float("nan"), float("nan"), float("nan"))
    mean = float(array.mean())
    if n < 2:
        return TTest(n, mean, float("nan"), float("nan"))
    sd = float(np.std(array, ddof=1))
    if sd == 0.0:
        return TTest(n, mean, float("inf") if mean else 0.0, 0.0 if mean else 1.0)
    from scipy import stats

    statistic = mean / (sd / math.sqrt(n))
    return TTest(n, mean, statistic, float(2 * stats.t.sf(abs(statistic), n - 1)))


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap estimate of an accuracy difference, in percentage points.

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


def _diff_counts(d: np.ndarray) -> np.ndarray:
    """(#+1, #-1, #0) of per-image differences d = a - b."""
    return np.array([(d == 1).sum(), (d == -1).sum(), (d == 0).sum()], dtype=float)


def hierarchical_bootstrap(
    units: Mapping[object, Sequence[tuple[np.ndarray, np.ndarray]]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Bootstrap:
    """Percentile interval of the mean accuracy difference, resampling seeds and then images.

    `units` maps a group (a dataset; one group for a single dataset) to its seeds, each a pair of
    per-image 0/1 outcomes (A, B) on the same images. One resample draws, in every group, as many
    seeds as it has with replacement, then the images of each drawn seed with replacement; the
    statistic is the mean over groups of the mean over drawn seeds of accuracy(A) - accuracy(B).
    The image level uses the multinomial shortcut (only the counts of +1/-1/0 differences matter).

    With one seed per group the seed level has nothing to resample and the interval reflects images
    alone; callers say "not distinguishable" in that case anyway.
    """
    rng = np.random.default_rng(seed)
    groups = [g for g in units if len(units[g])]
    if not groups:
        return Bootstrap(float("nan"), float("nan"), float("nan"), resamples)
    total = np.zeros(resamples)
    observed = 0.0
    for group in groups:
        seeds = units[group]
        sizes, probs, means = [], [], []
        for a, b in seeds:
            d = np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64)
            if d.size == 0:
                raise ValueError("a seed without images cannot be compared")
            sizes.append(d.size)
            probs.append(_diff_counts(d) / d.size)
            means.append(100.0 * d.mean())
        observed += float(np.mean(means))
        k = len(seeds)
        picks = rng.integers(0, k, size=(resamples, k))  # seeds drawn per resample
        group_sum = np.zeros(resamples)
        for index in range(k):
            # every resample that drew seed `index` c times adds c independent image resamples of it
            draws = rng.multinomial(sizes[index], probs[index], size=(resamples, k))  # [R, k, 3]
            means_index = 100.0 * (draws[..., 0] - draws[..., 1]) / sizes[index]  # [R, k]
            group_sum += np.where(picks == index, means_index, 0.0).sum(axis=1)
        total += group_sum / k
    total /= len(groups)
    low, high = np.percentile(total, [2.5, 97.5])
    return Bootstrap(observed / len(groups), float(low), float(high), resamples)


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
    """McNemar's test from the discordant counts (same trained models, images as the unit).

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


def paired_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Bootstrap:
    """95% interval of accuracy(A) - accuracy(B) resampling images only, within each group (seed).

    This treats the trained models as fixed: it answers "on these images, do these models differ",
    not "does method A beat method B". Only the per-image difference d = a - b in {-1, 0, +1} enters,
    so a multinomial draw of the counts replaces resampling images one by one.
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
        draws = rng.multinomial(dg.size, _diff_counts(dg) / dg.size, size=resamples)  # [R, 3]
        totals += draws[:, 0] - draws[:, 1]
    diffs = 100.0 * totals / a.size
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Bootstrap(100.0 * float(d.mean()), float(low), float(high), resamples)


def verdict(test: TTest, interval: Bootstrap, *, alpha: float = 0.05, names: tuple[str, str] = ("A", "B")) -> str:
    """Words for a seed-level comparison: a winner only when the t-test and the bootstrap agree.

    Returns:
        "A better" / "B better" when p < alpha and the interval excludes 0 on the same side;
        otherwise "not distinguishable" (with "(one seed)" when there is a single seed).
    """
    if test.n < 2 or not math.isfinite(test.p_value):
        return "not distinguishable (one seed)"
    if test.p_value < alpha and interval.low > 0:
        return f"{names[0]} better"
    if test.p_value < alpha and interval.high < 0:
        return f"{names[1]} better"
    return "not distinguishable"
