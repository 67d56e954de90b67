"""What human ratings say (docs/review.md): per variant and criterion the mean with a bootstrap interval over items,
the paired difference against base on the same items, pairwise win rates from the raters' preferences (Wilson
intervals), and, with two or more raters, their agreement per criterion (Krippendorff's alpha, from the
`krippendorff` package, with a bootstrap interval over items)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness import stats
from harness.data.rating_files import PREFERRED
from harness.spec.review import Criterion
from harness.stats import FloatArray
from harness.verdicts.compare import Comparison, Interval, Settings, paired

ALPHA_RESAMPLES = 1000  # bootstrap resamples of alpha (each a full alpha; the means use the run's own setting)


@dataclass(frozen=True)
class Mean:
    """A variant's mean on a criterion: per item the mean over its raters, then the mean over items (a yes/no
    criterion's mean is its rate of yes), with a percentile bootstrap interval over items."""

    variant_id: str
    criterion: str
    value: float
    ci_low: float
    ci_high: float
    n_items: int
    n_ratings: int


@dataclass(frozen=True)
class WinRate:
    """How often raters preferred `variant_id` over `other_id` among the judgments that preferred one of the two
    (both shown on the item); ties (no preference) are counted apart, a third output's win is neither."""

    variant_id: str
    other_id: str
    wins: int
    losses: int
    ties: int
    rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Agreement:
    """Krippendorff's alpha of the raters on one criterion (units: one item's output of one variant)."""

    criterion: str
    level: str
    alpha: float
    ci_low: float
    ci_high: float
    raters: int
    units: int  # outputs rated by at least two raters
    note: str = ""


@dataclass
class RatingSummary:
    """Everything the report and the gate show about a run's human ratings."""

    criteria: list[Criterion]
    variant_ids: list[str]  # the rated variants, in the order given
    raters: list[str]
    sheets: list[str]
    items: int
    means: dict[tuple[str, str], Mean] = field(default_factory=dict)
    vs_base: dict[tuple[str, str], Comparison] = field(default_factory=dict)
    wins: list[WinRate] = field(default_factory=list)
    agreement: list[Agreement] = field(default_factory=list)


def _scores(ratings: pd.DataFrame) -> pd.DataFrame:
    """The rows that hold a rubric value (not preferences, not bare comments)."""
    if ratings.empty:
        return ratings
    return ratings[(ratings["criterion"] != PREFERRED) & ratings["value"].notna()]


def item_means(ratings: pd.DataFrame, variant_id: str, criterion: str) -> dict[str, float]:
    """example_id -> the variant's mean on the criterion over every rater (and sheet) that rated the item."""
    r = _scores(ratings)
    if r.empty:
        return {}
    r = r[(r["variant_id"] == variant_id) & (r["criterion"] == criterion)]
    return {str(k): float(v) for k, v in r.groupby("example_id")["value"].mean().items()}


def criterion_mean(ratings: pd.DataFrame, variant_id: str, criterion: str, s: Settings) -> Mean | None:
    """The variant's mean on a criterion with its bootstrap interval over items; None when it has no rating."""
    per_item = item_means(ratings, variant_id, criterion)
    if not per_item:
        return None
    ids = sorted(per_item)
    m, lo, hi = stats.mean_ci([per_item[i] for i in ids], confidence=s.confidence, resamples=s.resamples, seed=s.seed)
    r = _scores(ratings)
    n = int(((r["variant_id"] == variant_id) & (r["criterion"] == criterion)).sum())
    return Mean(variant_id, criterion, m, lo, hi, len(ids), n)


def win_rates(ratings: pd.DataFrame, variant_ids: Sequence[str], *, confidence: float = 0.95) -> list[WinRate]:
    """For each pair of variants (in the given order, each pair once in both directions) the share of the
    preferences between the two that went to the first, with a Wilson interval."""
    pref = ratings[ratings["criterion"] == PREFERRED] if not ratings.empty else ratings
    judgments: list[tuple[set[str], str | None]] = []  # (variants shown, the one preferred or None for a tie)
    for _, g in pref.groupby(["sheet_id", "rater", "example_id"]) if not pref.empty else []:
        chosen = [str(v) for v, x in zip(g["variant_id"], g["value"], strict=True) if x == 1]
        judgments.append(({str(v) for v in g["variant_id"]}, chosen[0] if chosen else None))
    out = []
    for a in variant_ids:
        for b in variant_ids:
            if a == b:
                continue
            both = [c for shown, c in judgments if a in shown and b in shown]
            wins, losses, ties = both.count(a), both.count(b), both.count(None)
            if wins + losses + ties == 0:
                continue
            rate, lo, hi = stats.wilson_ci(wins, wins + losses, confidence=confidence)
            out.append(WinRate(a, b, wins, losses, ties, rate, lo, hi))
    return out


def reliability_matrix(ratings: pd.DataFrame, criterion: str) -> tuple[FloatArray, list[str], list[str]]:
    """(raters x units matrix with NaN where a rater did not rate the unit, the raters, each unit's example_id).
    A unit is one item's output of one variant; a rater who rated it twice (two sheets) counts with the later."""
    r = _scores(ratings)
    r = r[r["criterion"] == criterion].sort_values("rated_at", kind="stable")
    last = r.groupby(["rater", "example_id", "variant_id"], sort=True)["value"].last().reset_index()
    raters = sorted(set(last["rater"]))
    units = sorted(set(zip(last["example_id"], last["variant_id"], strict=True)))
    col = {u: i for i, u in enumerate(units)}
    row = {x: i for i, x in enumerate(raters)}
    m = np.full((len(raters), len(units)), np.nan)
    for rater, eid, vid, value in last.itertuples(index=False):
        m[row[rater], col[(eid, vid)]] = value
    return m, raters, [str(u[0]) for u in units]


def krippendorff_alpha(matrix: FloatArray, c: Criterion) -> float:
    """Krippendorff's alpha (the `krippendorff` package) at the criterion's level: ordinal for a scale, nominal for
    yes/no; NaN where it is undefined (fewer than two ratings of any unit, or a single value throughout)."""
    import krippendorff

    pairable = (~np.isnan(matrix)).sum(axis=0) >= 2
    if not pairable.any():
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when every rating is the same value
            return float(krippendorff.alpha(reliability_data=matrix[:, pairable], level_of_measurement=c.level,
                                            value_domain=sorted(c.values)))
    except ValueError:
        return math.nan


def agreement(ratings: pd.DataFrame, c: Criterion, *, confidence: float = 0.95, resamples: int = ALPHA_RESAMPLES,
              seed: int = stats.DEFAULT_SEED) -> Agreement | None:
    """Alpha on one criterion with a percentile bootstrap interval that resamples items (all of an item's outputs
    together); None with fewer than two raters."""
    m, raters, unit_items = reliability_matrix(ratings, c.name)
    if len(raters) < 2:
        return None
    pairable = (~np.isnan(m)).sum(axis=0) >= 2
    a = krippendorff_alpha(m, c)
    if math.isnan(a):
        why = ("no output was rated by two raters" if not pairable.any() else
               "every rating has the same value, so agreement beyond chance is undefined")
        return Agreement(c.name, c.level, a, math.nan, math.nan, len(raters), int(pairable.sum()), why)
    items = sorted(set(unit_items))
    cols: dict[str, list[int]] = {}
    for j, e in enumerate(unit_items):
        cols.setdefault(e, []).append(j)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, len(items), size=len(items))
        x = krippendorff_alpha(m[:, [j for i in pick for j in cols[items[i]]]], c)
        if not math.isnan(x):
            draws.append(x)
    alpha_ = (1 - confidence) / 2
    lo, hi = (float(q) for q in np.quantile(draws, [alpha_, 1 - alpha_])) if draws else (math.nan, math.nan)
    note = f"bootstrap over {len(items)} items ({resamples} resamples)"
    return Agreement(c.name, c.level, a, min(lo, a), max(hi, a), len(raters), int(pairable.sum()), note)


def summarize(ratings: pd.DataFrame, rubric: Sequence[Criterion], variant_ids: Sequence[str], base_id: str | None,
              s: Settings) -> RatingSummary | None:
    """The whole summary of these ratings; None when there are none."""
    if ratings.empty:
        return None
    rated = set(ratings["variant_id"])
    order = [v for v in variant_ids if v in rated]
    summary = RatingSummary(list(rubric), order, sorted(set(map(str, ratings["rater"]))),
                            sorted(set(map(str, ratings["sheet_id"]))), int(ratings["example_id"].nunique()))
    for c in rubric:
        base = item_means(ratings, base_id, c.name) if base_id else {}
        for vid in order:
            mean = criterion_mean(ratings, vid, c.name, s)
            if mean is None:
                continue
            summary.means[(vid, c.name)] = mean
            if vid != base_id and base:
                cmp = paired(item_means(ratings, vid, c.name), base, s)
                if cmp is not None:
                    summary.vs_base[(vid, c.name)] = cmp
        a = agreement(ratings, c, confidence=s.confidence, seed=s.seed)
        if a is not None:
            summary.agreement.append(a)
    summary.wins = win_rates(ratings, order, confidence=s.confidence)
    return summary


class RatingEntry(Interval):
    """A criterion's ratings as the gate's baseline file keeps them: mean, interval, items rated, each item's mean."""

    items: dict[str, float]


def rating_snapshot(ratings: pd.DataFrame, variant_id: str, s: Settings | None = None) -> dict[str, RatingEntry]:
    """A variant's ratings as the gate's baseline file keeps them: per criterion its mean, interval, n and each
    item's mean (so a later gate pairs by item)."""
    s = s or Settings()
    out: dict[str, RatingEntry] = {}
    r = _scores(ratings)
    for criterion in sorted(set(r["criterion"])) if not r.empty else []:
        m = criterion_mean(ratings, variant_id, str(criterion), s)
        if m is not None:
            out[str(criterion)] = RatingEntry(value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n_items,
                                              items=item_means(ratings, variant_id, str(criterion)))
    return out
