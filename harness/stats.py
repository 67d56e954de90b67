"""Statistics, one module: seeded vectorized bootstrap CIs (by item or by cluster), paired differences, McNemar,
Wilson intervals, minimum detectable effects and corrections for many comparisons."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
MULTINOMIAL_FROM, MULTINOMIAL_LEVELS = 2000, 64  # items and distinct values from/up to which mean_ci draws counts
Indices = npt.NDArray[np.int64]  # item indices a bootstrap resample draws
FloatArray = npt.NDArray[np.float64]  # per-item values


def mean_ci(values: npt.ArrayLike, *, confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED, clusters: npt.ArrayLike | None = None) -> tuple[float, float, float]:
    """Mean and a percentile bootstrap CI, vectorized: (mean, low, high). NaNs are dropped.

    With `clusters` (one label per value), whole clusters are resampled, not items (Miller 2024, "Adding Error
    Bars to Evals", sec. 2.2): items of one cluster (questions on one passage) are not independent evidence.
    """
    x = np.asarray(values, dtype=float)
    keep = ~np.isnan(x)
    x = x[keep]
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return (m, m, m)
    rng = np.random.default_rng(seed)
    if clusters is not None:
        labels = np.asarray(clusters, dtype=object)[keep]
        _, ids = np.unique(labels.astype(str), return_inverse=True)
        sums, counts = np.bincount(ids, weights=x), np.bincount(ids).astype(float)
        idx = rng.integers(0, sums.size, size=(resamples, sums.size))
        means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    elif x.size >= MULTINOMIAL_FROM and (levels := np.unique(x, return_counts=True))[0].size <= MULTINOMIAL_LEVELS:
        # Few distinct values among many items (0/1 flags, field shares): drawing n items with replacement is
        # drawing how many of each value, one multinomial per resample; the same bootstrap at O(values), not O(n).
        values, counts = levels
        draws = rng.multinomial(x.size, counts / x.size, size=resamples)
        means = draws @ values / x.size
    else:
        idx = rng.integers(0, x.size, size=(resamples, x.size))
        means = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (m, float(min(lo, m)), float(max(hi, m)))


def paired_diff_ci(candidate: npt.ArrayLike, reference: npt.ArrayLike, *,
                   confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   clusters: npt.ArrayLike | None = None) -> tuple[float, float, float]:
    """Mean of (candidate - reference) over the same items, with a paired bootstrap CI (clusters resampled whole
    when given)."""
    c, r = np.asarray(candidate, dtype=float), np.asarray(reference, dtype=float)
    if c.shape != r.shape:
        raise ValueError(f"paired samples need the same items: {c.shape} vs {r.shape}")
    keep = ~(np.isnan(c) | np.isnan(r))
    labels = None if clusters is None else np.asarray(clusters, dtype=object)[keep]
    return mean_ci(c[keep] - r[keep], confidence=confidence, resamples=resamples, seed=seed, clusters=labels)


def diff_means_ci(a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """mean(a) - mean(b) for two independent samples (e.g. training and test items), with a percentile bootstrap
    CI that resamples each sample on its own: (difference, low, high). NaNs are dropped."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan, math.nan)
    d = float(x.mean() - y.mean())
    rng = np.random.default_rng(seed)
    means_x = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    means_y = y[rng.integers(0, y.size, size=(resamples, y.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means_x - means_y, [alpha, 1 - alpha])
    return (d, float(min(lo, d)), float(max(hi, d)))


def welch_t(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[float, float]:
    """Welch's unequal-variance t-test that two independent samples have the same mean: (two-sided p, standard
    error of the difference of means). NaNs are dropped; with fewer than two values on a side p is 1.0, and
    with no spread on either side p is 1.0 for equal means, else 0.0."""
    from scipy.stats import ttest_ind

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return (1.0, math.nan)
    var_x = float(x.var(ddof=1)) if x.size > 1 else 0.0
    var_y = float(y.var(ddof=1)) if y.size > 1 else 0.0
    se = math.sqrt(var_x / x.size + var_y / y.size)
    if x.size < 2 or y.size < 2:
        return (1.0, se)  # no variance to test against
    if se == 0:
        return (1.0 if x.mean() == y.mean() else 0.0, se)
    return (float(ttest_ind(x, y, equal_var=False).pvalue), se)


def ratio_ci(numerator: npt.ArrayLike, denominator: npt.ArrayLike, *,
             confidence: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
             ) -> tuple[float, float, float]:
    """sum(numerator) / sum(denominator) over items, with a percentile bootstrap CI that resamples items together."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a ratio needs one numerator and one denominator per item: {a.shape} vs {b.shape}")
    if a.size == 0 or b.sum() == 0:
        return (math.nan, math.nan, math.nan)
    r = float(a.sum() / b.sum())
    if a.size == 1:
        return (r, r, r)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a[idx].sum(axis=1) / b[idx].sum(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return (r, float(min(lo, r)), float(max(hi, r)))


def resample_ci(statistic: Callable[[Indices], dict[str, float]], n: int, *, confidence: float = 0.95,
                resamples: int = 200, seed: int = DEFAULT_SEED) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of statistics that are not means (a corpus-level score recomputed on each
    resample of the n items): `statistic(indices)` returns named values; returns name -> (low, high)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for name, value in statistic(rng.integers(0, n, size=n)).items():
            draws.setdefault(name, []).append(float(value))
    alpha = (1 - confidence) / 2
    out = {}
    for name, values in draws.items():
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        out[name] = (float(np.quantile(x, alpha)), float(np.quantile(x, 1 - alpha))) if x.size else (math.nan, math.nan)
    return out


def wilson_ci(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """A rate with its Wilson score interval: (rate, low, high)."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17 off
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (p, lo, hi)


def mcnemar_exact(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """Two-sided exact McNemar p-value for paired pass/fail outcomes."""
    from scipy.stats import binomtest

    c, r = np.asarray(candidate, dtype=bool), np.asarray(reference, dtype=bool)
    b = int(np.sum(c & ~r))
    d = int(np.sum(~c & r))
    if b + d == 0:
        return 1.0
    return float(binomtest(b, b + d, 0.5).pvalue)


def paired_t_p(differences: npt.ArrayLike) -> float:
    """Two-sided p-value of a paired t-test that the mean difference is 0 (for non-binary paired outcomes)."""
    from scipy.stats import ttest_1samp

    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2 or np.all(d == d[0]):
        return 1.0 if d.size == 0 or d[0] == 0 else 0.0
    return float(ttest_1samp(d, 0.0).pvalue)


def z(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.96 at 0.95)."""
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))


def mde(se: float, *, confidence: float = 0.95, power: float = 0.8) -> float:
    """Minimum detectable effect of a two-sided test with standard error `se` at `confidence`, detected with
    probability `power`: (z_(1-alpha/2) + z_power) * se (Miller 2024, eq. 9; 2.80 * se at 95% and 80%)."""
    from scipy.stats import norm

    return (z(confidence) + float(norm.ppf(power))) * se


def paired_se(differences: npt.ArrayLike, clusters: npt.ArrayLike | None = None, *,
              binary: bool = False) -> float:
    """Standard error of the mean paired difference: sd(differences) / sqrt(n), as in scipy's `ttest_rel`; with
    clusters, the cluster-robust SE (statsmodels' OLS `cov_type="cluster"` on a constant).

    The variance is floored at 1/n (one discordant pair assumed) for 0/1 outcomes (`binary`, McNemar's setting,
    where the variance of the differences is the discordant-pair rate minus the squared mean), so a sample with
    no discordant pair does not claim to detect everything. A continuous metric (ROUGE-L, a share of fields) keeps
    its own variance, however small; only where its differences have no spread at all, so that the sample says
    nothing about their variance, is the same floor assumed (one example differing by 1, the range of a score
    in [0, 1])."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = d.size
    if n == 0:
        return math.nan
    if clusters is not None:
        _, ids = np.unique(np.asarray(clusters, dtype=object)[: n].astype(str), return_inverse=True)
        k = int(ids.max()) + 1
        if k > 1:
            resid = np.bincount(ids, weights=d - d.mean(), minlength=k)
            sumsq = float((resid ** 2).sum() * k / (k - 1))
            return math.sqrt(max(sumsq, 1.0) if binary or sumsq == 0 else sumsq) / n
    var = float(d.var(ddof=1)) if n > 1 else 0.0
    return math.sqrt((max(var, 1.0 / n) if binary or var == 0 else var) / n)


def adjust_pvalues(pvalues: list[float], method: str) -> list[float]:
    """p-values adjusted for many comparisons: 'holm' (family-wise error), 'bh' (false discovery rate,
    Benjamini-Hochberg) or 'none', through statsmodels' multipletests."""
    if method == "none" or not pvalues:
        return list(pvalues)
    from statsmodels.stats.multitest import multipletests

    names = {"holm": "holm", "bh": "fdr_bh"}
    return [float(p) for p in multipletests(np.asarray(pvalues, dtype=float), method=names[method])[1]]


def mde_for_family(mde_one: float, *, confidence: float = 0.95, family: int = 1, power: float = 0.8) -> float:
    """An MDE computed for one test, rescaled for a test run at Bonferroni's level among `family` tests (which
    bounds Holm's first step): the same standard error, a larger critical value."""
    from scipy.stats import norm

    if family <= 1:
        return mde_one
    z_power = float(norm.ppf(power))
    return mde_one * (z(1 - (1 - confidence) / family) + z_power) / (z(confidence) + z_power)


def threshold_mde(threshold: float, n: int, confidence: float = 0.95, power: float = 0.8) -> float:
    """How far beyond a floor or ceiling a true rate must lie for n 0/1 outcomes to show it with `power`: the
    interval's far bound must clear the threshold t, so (z + z_power) * sqrt(t (1 - t) / n) (at least one outcome of
    each kind assumed, as paired_se does)."""
    if n <= 0:
        return math.inf
    t = min(max(float(threshold), 0.0), 1.0)
    return mde(math.sqrt(max(t * (1 - t), 1.0 / n) / n), confidence=confidence, power=power)


TYPICAL_DISCORDANCE = 0.2  # share of outcomes that differ between two variants, for planning before any data


def planning_n(*, discordance: float = TYPICAL_DISCORDANCE, confidence: float = 0.95) -> int:
    """The fewest paired items whose planning MDE is no larger than `discordance`: (z + z_power)^2 / discordance
    (40 at 20%, 95% and 80% power). Below it no difference is detectable at that discordance, because a paired
    difference of 0/1 outcomes can never exceed the share of outcomes that differ."""
    return max(1, math.ceil(mde(1.0, confidence=confidence) ** 2 / discordance))


def planning_mde(n: int, *, discordance: float = TYPICAL_DISCORDANCE, confidence: float = 0.95) -> float:
    """Roughly the smallest paired difference n items can detect with 80% power, assuming a share `discordance`
    of the outcomes differ between the two variants (McNemar's setting; Miller 2024, sec. 4): (z + z_power) *
    sqrt(discordance / n). Infinite where that exceeds `discordance` (fewer than `planning_n` items): a paired
    difference can never be larger than the share of outcomes that differ, so no possible difference is detected."""
    if n < planning_n(discordance=discordance, confidence=confidence):
        return math.inf
    return mde(math.sqrt(discordance / n), confidence=confidence)


def planning_note(n: int) -> str:
    """One line a user can plan with: what n paired items can detect (never an effect larger than the discordance
    it assumes, which no paired comparison could show)."""
    share = f"if {TYPICAL_DISCORDANCE:.0%} of outcomes differ between the two variants"
    effect = planning_mde(n)
    if math.isinf(effect):
        return (f"with n={n} a paired comparison cannot reliably detect any difference {share} (80% power, 95% "
                f"confidence): no difference can exceed the {TYPICAL_DISCORDANCE:.0%} that differ, and detecting one "
                f"that large needs {planning_n()} items or more")
    return (f"with n={n} a paired comparison detects differences of about {effect:.2f} or more (80% power, "
            f"95% confidence, {share})")


def bootstrap_ci(statistic: Callable[[Indices], float], n: int, *, confidence: float = 0.95,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """Any statistic of n items, given as a function of item indices, with a seeded percentile bootstrap CI that
    resamples items: (value, low, high). Resamples where the statistic is undefined (NaN, e.g. a correlation of a
    constant resample) are left out; NaNs throughout when it is undefined on the items themselves."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    value = float(statistic(np.arange(n)))
    if math.isnan(value):
        return (math.nan, math.nan, math.nan)
    if n == 1:
        return (value, value, value)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(idx) for idx in rng.integers(0, n, size=(resamples, n))], dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return (value, math.nan, math.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return (value, float(min(lo, value)), float(max(hi, value)))
