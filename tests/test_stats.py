"""Statistics checked against hand-computed cases."""

import math

import numpy as np
import pytest

from benchmark.stats import ci95, mcnemar, paired_bootstrap


def test_ci95_is_parse_test_res_formula_with_population_std():
    # values 80, 82, 84: population std sqrt(8/3) = 1.63299; 1.96 * 1.63299 / sqrt(3) = 1.84791
    assert ci95([80, 82, 84]) == pytest.approx(1.96 * math.sqrt(8 / 3) / math.sqrt(3))
    assert ci95([80, 82, 84]) == pytest.approx(1.8479, abs=1e-4)
    assert ci95([1.0, 3.0]) == pytest.approx(1.96 * 1.0 / math.sqrt(2))  # std 1 (ddof=0), n=2
    assert ci95([70.0]) == 0.0 and ci95([5, 5, 5]) == 0.0
    assert math.isnan(ci95([]))


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
