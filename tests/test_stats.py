"""The statistics module against scipy and known values, plus properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from harness import stats

outcomes = st.lists(st.booleans(), min_size=1, max_size=60)
values = st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=1, max_size=60)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (8, 10), (10, 10), (17, 40), (1, 224)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    rate, lo, hi = stats.wilson_ci(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert rate == k / n
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_known_value() -> None:
    _, lo, hi = stats.wilson_ci(8, 10)  # textbook: 0.4902 to 0.9433
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert all(math.isnan(x) for x in stats.wilson_ci(0, 0))


def test_mcnemar_known_values() -> None:
    # 1 vs 9 discordant pairs: p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11 / 1024
    cand = [True] * 1 + [False] * 9 + [True] * 20
    ref = [False] * 1 + [True] * 9 + [True] * 20
    assert stats.mcnemar_exact(cand, ref) == pytest.approx(22 / 1024, abs=1e-15)
    assert stats.mcnemar_exact([True, False], [True, False]) == 1.0
    b, c = 12, 30
    cand = [True] * b + [False] * c
    assert stats.mcnemar_exact(cand, [not x for x in cand]) == pytest.approx(binomtest(b, b + c, 0.5).pvalue)


def test_mean_ci_close_to_normal_theory() -> None:
    x = np.random.default_rng(1).normal(0.0, 1.0, 400)
    m, lo, hi = stats.mean_ci(x)
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert m == pytest.approx(x.mean())
    assert lo == pytest.approx(m - 1.96 * se, abs=0.25 * se) and hi == pytest.approx(m + 1.96 * se, abs=0.25 * se)
    assert stats.mean_ci(x) == stats.mean_ci(x)  # seeded: the same numbers every time


def test_paired_diff_ci_detects_a_real_drop() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(300) < 0.6
    cand = base & (rng.random(300) > 0.3)  # loses about 30% of base's correct answers
    d, _, hi = stats.paired_diff_ci(cand.astype(float), base.astype(float))
    assert d == pytest.approx(cand.mean() - base.mean())
    assert hi < 0
    with pytest.raises(ValueError, match="same items"):
        stats.paired_diff_ci([1.0, 0.0], [1.0])


def test_ratio_ci() -> None:
    nll, tokens = np.array([10.0, 20.0, 30.0]), np.array([5.0, 10.0, 15.0])
    assert stats.ratio_ci(nll, tokens) == (2.0, 2.0, 2.0)  # every item has ratio 2: no spread
    r, lo, hi = stats.ratio_ci([1.0, 9.0, 4.0, 2.0], [1.0, 3.0, 2.0, 2.0])
    assert r == pytest.approx(16 / 8) and lo < r < hi
    assert all(math.isnan(x) for x in stats.ratio_ci([], []))


@settings(max_examples=60, deadline=None)
@given(values)
def test_mean_ci_contains_its_estimate(x: list[float]) -> None:
    m, lo, hi = stats.mean_ci(x, resamples=200)
    assert lo <= m <= hi


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_contains_its_estimate(k: int, n: int) -> None:
    k = min(k, n)
    rate, lo, hi = stats.wilson_ci(k, n)
    assert 0.0 <= lo <= rate <= hi <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.5, 100)), min_size=1, max_size=40))
def test_ratio_ci_contains_its_estimate(pairs: list[tuple[float, float]]) -> None:
    r, lo, hi = stats.ratio_ci([a for a, _ in pairs], [b for _, b in pairs], resamples=200)
    assert lo <= r <= hi


@settings(max_examples=60, deadline=None)
@given(outcomes)
def test_a_variant_compared_with_itself_differs_by_exactly_zero(x: list[bool]) -> None:
    v = np.array(x, dtype=float)
    assert stats.paired_diff_ci(v, v.copy()) == (0.0, 0.0, 0.0)
    assert stats.mcnemar_exact(x, list(x)) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_paired_ci_contains_its_estimate(pairs: list[tuple[bool, bool]]) -> None:
    c, r = np.array([a for a, _ in pairs], float), np.array([b for _, b in pairs], float)
    d, lo, hi = stats.paired_diff_ci(c, r, resamples=200)
    assert lo <= d <= hi and d == pytest.approx(c.mean() - r.mean())


def test_paired_comparison_with_correlated_clusters_is_wider_and_says_so() -> None:
    from harness.verdicts.compare import Settings, paired

    # 10 clusters of 6: the candidate gains on whole clusters (3 of them), loses on one
    cand = {f"q{i}": float(i // 6 in (0, 1, 2)) for i in range(60)}
    ref = {f"q{i}": float(i // 6 == 9) for i in range(60)}
    clusters = {f"q{i}": f"c{i // 6}" for i in range(60)}
    flat, clus = paired(cand, ref, Settings()), paired(cand, ref, Settings(), clusters)
    assert flat is not None and clus is not None and flat.difference == clus.difference
    assert clus.ci_high - clus.ci_low > 1.5 * (flat.ci_high - flat.ci_low)
    assert clus.mde is not None and flat.mde is not None and clus.mde > flat.mde
    assert "in 10 clusters (resampled whole)" in clus.how and clus.clustered and clus.mcnemar_p is None


# -- standard errors and MDEs against scipy and statsmodels -----------------------------------------------------
def _rouge_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two variants' per-example scores in [0, 1] that move together (a continuous metric such as ROUGE-L)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, n)
    return np.clip(base + rng.normal(0.03, 0.08, n), 0, 1), base


@pytest.mark.parametrize("n,seed", [(10, 0), (10, 1), (12, 2), (48, 3)])
def test_paired_se_of_a_continuous_metric_is_scipys_paired_t_se(n: int, seed: int) -> None:
    """sd(d)/sqrt(n), the standard error scipy's ttest_rel divides by: no 1/n floor on continuous outcomes."""
    from scipy.stats import ttest_rel

    cand, base = _rouge_like(n, seed)
    d = cand - base
    ref = ttest_rel(cand, base)
    assert stats.paired_se(d) == pytest.approx(d.mean() / ref.statistic, rel=1e-10)
    assert stats.paired_t_p(d) == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("n,seed", [(10, 0), (10, 1), (48, 3)])
def test_mde_of_a_continuous_metric_matches_statsmodels_power(n: int, seed: int) -> None:
    """The comparison's MDE is statsmodels' normal-approximation effect size times sd(d) (Miller's eq. 9), and
    within the t-distribution's small-sample correction of TTestPower's; the 1/n floor made it 2-5x larger."""
    from statsmodels.stats.power import NormalIndPower, TTestPower

    from harness.verdicts.compare import Settings, paired

    cand, base = _rouge_like(n, seed)
    d = cand - base
    sd = float(d.std(ddof=1))
    normal = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=0) * sd
    student = TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8) * sd
    mde = stats.mde(stats.paired_se(d))
    assert mde == pytest.approx(normal, rel=1e-4)
    assert normal < student < 1.15 * normal  # the normal approximation, 12% optimistic at n=10
    cmp = paired({f"e{i}": float(v) for i, v in enumerate(cand)}, {f"e{i}": float(v) for i, v in enumerate(base)},
                 Settings())
    assert cmp is not None and cmp.mde == pytest.approx(normal, rel=1e-4) and "paired t-test" in cmp.how


def test_binary_outcomes_keep_the_one_discordant_pair_floor() -> None:
    from statsmodels.stats.power import NormalIndPower

    from harness.verdicts.compare import Settings, paired

    n = 48
    assert stats.paired_se(np.zeros(n), binary=True) == pytest.approx(math.sqrt(1 / n / n))
    # one discordant pair: the sample variance is exactly the floor, so the floor changes nothing
    one = np.array([1.0] + [0.0] * (n - 1))
    assert stats.paired_se(one, binary=True) == pytest.approx(stats.paired_se(one)) == pytest.approx(1 / n)
    # a continuous metric with no spread at all says nothing about its variance: the same floor is assumed
    assert stats.paired_se(np.zeros(n)) == pytest.approx(math.sqrt(1 / n / n))
    same = {f"e{i}": float(i % 2) for i in range(n)}
    cmp = paired(same, dict(same), Settings())
    expected = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=0) / math.sqrt(n)
    assert cmp is not None and cmp.mde == pytest.approx(expected, rel=1e-4) and "McNemar" in cmp.how


def test_cluster_robust_se_matches_statsmodels_ols() -> None:
    import statsmodels.api as sm

    cand, base = _rouge_like(40, 5)
    d = cand - base
    clusters = np.array([f"c{i // 4}" for i in range(40)])  # 10 clusters of 4
    groups = np.unique(clusters, return_inverse=True)[1]
    ols = sm.OLS(d, np.ones_like(d)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert stats.paired_se(d, clusters) == pytest.approx(float(ols.bse[0]), rel=1e-10)
    # 0/1 outcomes: one discordant pair's worth of variance at least (sqrt(1) / n)
    assert stats.paired_se(np.zeros(40), clusters, binary=True) == pytest.approx(1 / 40)


def test_planning_note_never_claims_an_effect_larger_than_the_discordance_it_assumes() -> None:
    """A paired difference of 0/1 outcomes can never exceed the share of outcomes that differ: at 20% discordance
    an MDE of 0.40 (n=10) is impossible, so the note says how many items are needed instead."""
    import re

    from statsmodels.stats.power import NormalIndPower

    power = NormalIndPower()
    d = stats.TYPICAL_DISCORDANCE
    need = power.solve_power(effect_size=d / math.sqrt(d), nobs1=None, alpha=0.05, power=0.8, ratio=0)
    assert stats.planning_n() == math.ceil(need) == 40
    assert math.isinf(stats.planning_mde(39)) and stats.planning_mde(40) <= d
    for n in range(0, 400):
        note = stats.planning_note(n)
        effect = stats.planning_mde(n)
        if math.isinf(effect):
            assert "cannot reliably detect any difference" in note and "needs 40 items or more" in note, note
            assert not re.search(r"\b\d\.\d\d\b", note), note  # no effect size printed at all
        else:
            assert effect <= d
            es = power.solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=0)
            assert effect == pytest.approx(es * math.sqrt(d), rel=1e-4)
            assert f"detects differences of about {effect:.2f} or more" in note
            assert float(re.search(r"about (\d\.\d\d)", note).group(1)) <= d  # type: ignore[union-attr]
    assert "with n=10 a paired comparison cannot reliably detect any difference" in stats.planning_note(10)
