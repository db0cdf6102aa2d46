"""Statistics checked against hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import stats

from benchmark.results.stats import (
    Bootstrap,
    TTest,
    hierarchical_bootstrap,
    mcnemar,
    paired_bootstrap,
    paired_t,
    seed_summary,
    t_halfwidth,
    verdict,
)


def test_t_halfwidth_and_seed_summary_use_the_sample_std_and_student_t():
    # values 80, 82, 84: sample std 2 (ddof 1); t(0.975, 2) = 4.302653; 4.302653 * 2 / sqrt(3) = 4.968275
    assert t_halfwidth([80, 82, 84]) == pytest.approx(stats.t.ppf(0.975, 2) * 2 / math.sqrt(3))
    assert t_halfwidth([80, 82, 84]) == pytest.approx(4.968275, abs=1e-6)
    assert t_halfwidth([1.0, 3.0]) == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    assert t_halfwidth([5, 5, 5]) == 0.0
    summary = seed_summary([80, 82, 84])
    assert (summary.n, summary.mean, summary.std) == (3, 82.0, 2.0)
    assert summary.ci95 == pytest.approx(t_halfwidth([80, 82, 84]))
    # one seed shows no spread: NaN, not 0
    one = seed_summary([70.0])
    assert (one.n, one.mean) == (1, 70.0) and math.isnan(one.std) and math.isnan(one.ci95)
    assert math.isnan(t_halfwidth([70.0])) and math.isnan(t_halfwidth([]))


def test_paired_t_matches_scipy():
    a = np.array([81.0, 79.5, 83.2, 80.1, 82.7])
    b = np.array([78.2, 80.0, 79.9, 77.5, 80.3])
    result = paired_t(a - b)
    reference = stats.ttest_rel(a, b)
    assert result.n == 5 and result.mean == pytest.approx((a - b).mean())
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    diffs = [10.0, 10.0, -12.0]
    assert paired_t(diffs).p_value == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)


def test_paired_t_degenerate_cases():
    assert math.isnan(paired_t([]).p_value) and paired_t([]).n == 0
    one = paired_t([3.0])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.p_value)
    assert paired_t([2.0, 2.0, 2.0]).p_value == 0.0  # no spread at all: every seed agrees
    assert paired_t([0.0, 0.0]).p_value == 1.0


def seeds_with_differences(points, n=400, base=0.6):
    """Per seed, 0/1 outcomes on n images where A is right on `points` percent more images than B."""
    units = []
    for p in points:
        right_b = int(base * n)
        right_a = right_b + round(p * n / 100)
        index = np.arange(n)
        units.append(((index < right_a).astype(int), (index < right_b).astype(int)))
    return units


def test_hierarchical_bootstrap_is_deterministic_and_covers_the_observed_difference():
    units = {"ds": seeds_with_differences([8, 9, 10]), "other": seeds_with_differences([2, 5])}
    first = hierarchical_bootstrap(units, resamples=2000, seed=0)
    assert first == hierarchical_bootstrap(units, resamples=2000, seed=0)
    assert first != hierarchical_bootstrap(units, resamples=2000, seed=1)
    assert first.diff == pytest.approx((9.0 + 3.5) / 2)  # mean over groups of the mean over seeds
    assert first.low < first.diff < first.high and first.resamples == 2000


def test_hierarchical_bootstrap_spans_the_disagreeing_seeds():
    # seeds that disagree in sign: the interval must include 0 although each seed's images are decisive
    wide = hierarchical_bootstrap({"ds": seeds_with_differences([10, 10, -12], n=1000)}, resamples=2000, seed=0)
    assert wide.low < 0 < wide.high
    steady = hierarchical_bootstrap({"ds": seeds_with_differences([8, 9, 10], n=1000)}, resamples=2000, seed=0)
    assert steady.low > 0


def test_hierarchical_bootstrap_with_one_seed_is_the_image_level_interval():
    rng = np.random.default_rng(5)
    a = (rng.random(800) < 0.75).astype(int)
    b = np.where(rng.random(800) < 0.85, a, 1 - a)
    hier = hierarchical_bootstrap({"ds": [(a, b)]}, resamples=4000, seed=0)
    image = paired_bootstrap(a, b, resamples=4000, seed=0)
    assert hier.diff == pytest.approx(image.diff)
    assert hier.high - hier.low == pytest.approx(image.high - image.low, rel=0.1)


def test_hierarchical_bootstrap_degenerate_cases():
    empty = hierarchical_bootstrap({}, resamples=100)
    assert math.isnan(empty.diff) and math.isnan(empty.low)
    same = np.array([1, 0, 1, 1])
    zero = hierarchical_bootstrap({"ds": [(same, same), (same, same)]}, resamples=100)
    assert (zero.diff, zero.low, zero.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        hierarchical_bootstrap({"ds": [(np.array([], dtype=int), np.array([], dtype=int))]}, resamples=100)


def test_verdict_needs_the_t_test_and_the_interval_to_agree():
    sure, unsure = TTest(3, 9.0, 15.6, 0.004), TTest(3, 2.7, 0.36, 0.75)
    assert verdict(sure, Bootstrap(9.0, 6.0, 12.0, 2000)) == "A better"
    assert verdict(TTest(3, -9.0, -15.6, 0.004), Bootstrap(-9.0, -12.0, -6.0, 2000)) == "B better"
    assert verdict(sure, Bootstrap(9.0, -1.0, 12.0, 2000)) == "not distinguishable"
    assert verdict(unsure, Bootstrap(2.7, 0.5, 5.0, 2000)) == "not distinguishable"
    assert verdict(TTest(1, 9.0, math.nan, math.nan), Bootstrap(9.0, 6.0, 12.0, 2000)).endswith("(one seed)")


def test_mcnemar_exact_binomial_for_few_discordant_pairs():
    # b=10, c=2: two-sided exact p = 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096 = 0.03857
    result = mcnemar(10, 2)
    assert result.method == "exact"
    assert result.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert round(result.p_value, 4) == 0.0386
    assert mcnemar(2, 10).p_value == pytest.approx(result.p_value)  # symmetric
    assert mcnemar(5, 5).p_value == pytest.approx(1.0)
    assert mcnemar(0, 0).p_value == 1.0


def test_mcnemar_chi_square_with_continuity_correction_for_many_pairs():
    # b=30, c=10: (|30-10| - 1)^2 / 40 = 9.025; P(chi2_1 > 9.025) = 0.002663
    result = mcnemar(30, 10)
    assert result.method == "chi2-cc"
    assert result.statistic == pytest.approx(9.025)
    assert result.p_value == pytest.approx(0.0026631, abs=1e-6)
    # the boundary: 24 discordant pairs -> exact, 25 -> chi-square
    assert mcnemar(20, 4).method == "exact" and mcnemar(20, 5).method == "chi2-cc"


def test_bootstrap_is_deterministic_and_covers_the_true_difference():
    rng = np.random.default_rng(3)
    n = 3000
    a = (rng.random(n) < 0.80).astype(int)
    b = (rng.random(n) < 0.70).astype(int)
    groups = np.repeat([1, 2, 3], n // 3)
    first = paired_bootstrap(a, b, groups, resamples=2000, seed=0)
    assert first == paired_bootstrap(a, b, groups, resamples=2000, seed=0)
    assert first.diff == pytest.approx(100 * (a.mean() - b.mean()))
    assert first.low < 10.0 < first.high  # the true difference is 80 - 70 = 10 points
    assert first.low < first.diff < first.high


def test_bootstrap_matches_naive_image_resampling():
    # the multinomial shortcut must give the interval that resampling images within each seed gives
    rng = np.random.default_rng(7)
    a = (rng.random(600) < 0.7).astype(int)
    b = np.where(rng.random(600) < 0.8, a, 1 - a)
    groups = np.repeat([1, 2], 300)
    fast = paired_bootstrap(a, b, groups, resamples=4000, seed=1)
    d = a - b
    naive = []
    for _ in range(4000):
        parts = [rng.choice(d[groups == g], size=300, replace=True) for g in (1, 2)]
        naive.append(100 * np.concatenate(parts).mean())
    low, high = np.percentile(naive, [2.5, 97.5])
    assert fast.low == pytest.approx(low, abs=0.6) and fast.high == pytest.approx(high, abs=0.6)


def test_bootstrap_degenerate_cases():
    same = np.array([1, 0, 1, 1])
    result = paired_bootstrap(same, same)
    assert (result.diff, result.low, result.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap(np.array([1, 0]), np.array([1]))
